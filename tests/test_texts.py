"""Every template compiles, every label it asks for exists, and texts fit the platforms."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2
import markupsafe

from bot.roles import Role
from bot.texts import MESSAGES_DIR, Texts, split_text, to_plain
from tests.fake_telegram import parse_html

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


# --- every template at three times its usual size, cut where the platforms need it ----------
WORDS = "Nguyễn Thị <Hoa> & «Tổ» 5 "


class Sample(jinja2.Undefined):
    """Whatever a template asks for: a text of `WORDS` (characters that must be escaped),
    `size` times; a list of 4 × `size` such values (rows that unpack into `unpack` fields
    when a template writes `for a, b in rows`); a number; a date."""

    size = 1
    unpack: int | None = None

    def __str__(self) -> str:
        return WORDS * self.size

    def __html__(self) -> str:
        return str(markupsafe.escape(str(self)))

    def __iter__(self) -> Iterator[Sample]:
        if self.unpack and (self._undefined_name or "").startswith(("_row", "_field")):
            return iter([Sample(name=f"_field{i}") for i in range(self.unpack)])
        return iter([Sample(name=f"_row{i}") for i in range(4 * self.size)])

    def __len__(self) -> int:
        return 4 * self.size

    def __bool__(self) -> bool:
        return True

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return Sample(name=name)

    def __getitem__(self, key: object) -> Any:
        return Sample(name=str(key))

    def __call__(self, *args: object, **kwargs: object) -> Any:
        return Sample(name="called")

    def __int__(self) -> int:
        return 1234

    def __float__(self) -> float:
        return 0.5

    def __index__(self) -> int:
        return 3

    def __round__(self, digits: int = 0) -> int:
        return 5

    def __format__(self, spec: str) -> str:
        return format(1234, spec) if spec else str(self)

    def __add__(self, other: object) -> Any:
        return other if isinstance(other, int | float) else Sample(name="sum")

    __radd__ = __add__

    def __sub__(self, other: object) -> Any:
        return 3

    __rsub__ = __sub__

    def __mul__(self, other: object) -> Any:
        return 0.5

    __rmul__ = __truediv__ = __rtruediv__ = __mul__

    def __floordiv__(self, other: object) -> Any:
        return 1

    def __mod__(self, other: object) -> Any:
        return 1

    def __neg__(self) -> Any:
        return -1

    def __lt__(self, other: object) -> bool:
        return False

    __le__ = __gt__ = __ge__ = __lt__

    def __eq__(self, other: object) -> bool:
        return False

    def __ne__(self, other: object) -> bool:
        return True

    def __hash__(self) -> int:
        return 1

    def __contains__(self, other: object) -> bool:
        return True

    def astimezone(self, tz: object) -> datetime:
        return datetime(2026, 11, 26, 9, tzinfo=UTC)


# Templates whose loops unpack rows of two different widths get those rows given.
GIVEN: dict[str, dict[str, Any]] = {
    "polls/results": {"rows": [(WORDS * 3, 12, 0.4)] * 30},  # 10 options at most, × 3
}


def _sampling_env() -> jinja2.Environment:
    """The real HTML environment, with every missing value a `Sample` (one per test: building
    it reads the label tables, and it caches the templates it compiles)."""
    env = Texts()._env("vi", escape=True)
    env.undefined = Sample
    real_label = env.globals["label"]

    def label(key: object, **kw: object) -> str:
        try:
            return str(real_label(str(key), **kw))
        except KeyError:  # a key made from a sample value
            return str(Sample())

    env.globals["label"] = label
    return env


def _render_big(env: jinja2.Environment, name: str, size: int) -> str:
    Sample.size = size
    failure: Exception | None = None
    for unpack in (None, 2, 3, 4):
        Sample.unpack = unpack
        try:
            return env.get_template(f"{name}.j2").render(**GIVEN.get(name, {})).strip()
        except ValueError as exc:  # "too many values to unpack": rows of another width
            failure = exc
    raise AssertionError(f"{name}: {failure}")


def test_every_chat_template_at_three_times_its_size_splits_into_valid_pieces() -> None:
    pages = ("web/", "downloads/")  # web pages of the dashboard, not chat messages
    chat_templates = [n for n in texts.template_names if not n.startswith(pages)]
    assert len(chat_templates) > 150
    split_somewhere = 0
    env = _sampling_env()
    for name in chat_templates:
        html = _render_big(env, name, 3)
        if not html.strip():
            continue  # a part of other messages that shows nothing here
        assert "&lt;Hoa&gt;" in html or "<Hoa>" not in html, name  # user text escaped
        for limit, text, markup in ((4096, html, True), (2000, to_plain(html), False)):
            pieces = split_text(text, limit, markup=markup)
            split_somewhere += len(pieces) > 1
            for piece in pieces:
                assert 0 < len(piece) <= limit, (name, limit, len(piece))
                if markup:
                    parse_html(piece)  # raises where Telegram would refuse the piece
            whole = parse_html(text) if markup else text
            shown = "".join(parse_html(p) if markup else p for p in pieces)
            assert "".join(shown.split()) == "".join(whole.split()), name  # nothing lost
    assert split_somewhere > 5  # the sizes did reach the limits


def test_a_cut_never_falls_inside_a_tag_or_an_entity() -> None:
    text = ("<b>Đậm &amp; rõ</b> " * 300 + "\n" + '<a href="https://x.vn/a">liên kết</a> ' * 200
            + "<i>" + "nghiêng " * 900 + "</i>")
    pieces = split_text(text, 1000)
    assert len(pieces) > 5
    for piece in pieces:
        assert len(piece) <= 1000
        parse_html(piece)  # every tag closed in its own piece
        assert not re.search(r"&[a-z]*$", piece) and not re.search(r"<[^>]*$", piece)
    assert pieces[-1].startswith("<i>") and pieces[-2].endswith("</i>")  # reopened
    shown = "".join(parse_html(p) for p in pieces)
    assert "".join(shown.split()) == "".join(parse_html(text).split())
