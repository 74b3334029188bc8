"""Every template compiles, every label it asks for exists, and texts fit the platforms."""

from __future__ import annotations

import re
from pathlib import Path

import jinja2

from bot.roles import Role
from bot.texts import MESSAGES_DIR, Texts, split_text, to_plain

texts = Texts()


def test_every_template_compiles_under_strict_undefined() -> None:
    assert len(texts.template_names) > 20
    env = texts._env("vi", escape=True)
    for name in texts.template_names:
        try:
            env.get_template(f"{name}.j2")
        except jinja2.TemplateSyntaxError as exc:  # pragma: no cover - the assertion says it
            raise AssertionError(f"{name}: {exc}") from exc


def test_labels_used_in_templates_and_code_exist() -> None:
    used: set[str] = set()
    for path in [*MESSAGES_DIR.rglob("*.j2"), *Path("handlers").rglob("*.py"), *Path("bot").rglob("*.py")]:
        used |= set(re.findall(r'label\("([a-z_.]+)"', path.read_text(encoding="utf-8")))
    used |= {f"roles.{r.value}" for r in Role}
    missing = sorted(k for k in used if not k.endswith(".") and not texts.has_label(k))
    assert missing == []


def test_user_text_is_escaped_but_our_markup_is_kept() -> None:
    html = texts.render("basics/greeting", name="<script>&", role="guest", group_code="",
                        ward_code="", private=True)
    assert "&lt;script&gt;&amp;" in html
    assert "<b>" in html


def test_plain_text_for_platforms_without_markup() -> None:
    assert to_plain('<b>Đã gắn</b> &amp; <a href="https://x.vn">trang</a>') == (
        "Đã gắn & trang (https://x.vn)"
    )


def test_long_text_is_split_at_line_ends_within_the_limit() -> None:
    text = "\n".join(f"Dòng số {i} " + "chữ " * 30 for i in range(100))
    pieces = split_text(text, 2000)
    assert all(len(p) <= 2000 for p in pieces)
    assert "\n".join(pieces) == text
    assert split_text("ngắn", 2000) == ["ngắn"]
    word_soup = "a" * 5000
    assert [len(p) for p in split_text(word_soup, 2000)] == [2000, 2000, 1000]
