"""Every user-visible text comes from `messages/` through this one Jinja2 environment.

Message templates (`messages/<locale>/<feature>/<name>.j2`) render to the small HTML subset
Telegram accepts, with everything users typed escaped. Platforms without markup turn that
into plain text with `to_plain`. Short strings (button labels, command descriptions, role
names) live in `messages/<locale>/labels.toml` and render as plain text.
"""

from __future__ import annotations

import html
import math
import re
import tomllib
from collections.abc import Mapping
from datetime import UTC, tzinfo
from functools import cached_property
from pathlib import Path
from typing import Any

import jinja2

MESSAGES_DIR = Path(__file__).resolve().parent.parent / "messages"
FALLBACK_LOCALE = "vi"
_MAX_SOURCES = 20_000


class Texts:
    def __init__(
        self,
        root: Path = MESSAGES_DIR,
        *,
        locale: str = FALLBACK_LOCALE,
        globals_: Mapping[str, Any] | None = None,
        timezone: tzinfo = UTC,
    ) -> None:
        self.root = root
        self.timezone = timezone
        self.default_locale = locale
        self._globals = dict(globals_ or {})
        self._html: dict[str, jinja2.Environment] = {}
        self._plain: dict[str, jinja2.Environment] = {}
        self._labels: dict[str, dict[str, str]] = {}
        self._compiled: dict[tuple[str, str], jinja2.Template] = {}
        # Templates and content strings (guide titles, answers, steps) compiled once each:
        # compiling is ~100 times the cost of rendering (bench/README.md, perf).
        self._files: dict[tuple[str, str], jinja2.Template] = {}
        self._sources: dict[tuple[str, bool, str], jinja2.Template] = {}

    def set_global(self, name: str, value: Any) -> None:
        """Add a value every template sees (before the first render)."""
        self._globals[name] = value
        for env in (*self._html.values(), *self._plain.values()):
            env.globals[name] = value

    def _loader(self, locale: str) -> jinja2.BaseLoader:
        dirs = [self.root / locale] if locale != FALLBACK_LOCALE else []
        dirs.append(self.root / FALLBACK_LOCALE)
        return jinja2.FileSystemLoader([str(d) for d in dirs])

    def _env(self, locale: str, *, escape: bool) -> jinja2.Environment:
        cache = self._html if escape else self._plain
        if locale not in cache:
            env = jinja2.Environment(
                loader=self._loader(locale),
                autoescape=escape,
                undefined=jinja2.StrictUndefined,
                trim_blocks=True,
                lstrip_blocks=True,
                keep_trailing_newline=False,
                auto_reload=False,  # messages/ ships with the code: no stat per render
            )
            env.globals["bot_name"] = self._label_table(locale).get("bot.default_name", "")
            env.globals.update(self._globals)
            env.globals["label"] = lambda key, **kw: self.label(key, locale, **kw)
            env.globals["has_label"] = lambda key: self.has_label(key, locale)
            env.filters["number"] = format_number
            env.filters["bar"] = progress_bar
            env.filters["pct"] = format_percent
            env.filters["date"] = lambda v: v.astimezone(self.timezone).strftime("%d/%m/%Y")
            env.filters["datetime"] = lambda v: v.astimezone(self.timezone).strftime(
                "%H:%M %d/%m/%Y"
            )
            cache[locale] = env
        return cache[locale]

    def render(self, name: str, locale: str | None = None, /, **context: Any) -> str:
        """Render `messages/<locale>/<name>.j2` to HTML, user input escaped."""
        locale = locale or self.default_locale
        template = self._files.get((locale, name))
        if template is None:
            template = self._env(locale, escape=True).get_template(f"{name}.j2")
            self._files[(locale, name)] = template
        return template.render(**context).strip()

    def render_string(self, source: str, locale: str | None = None, /, **context: Any) -> str:
        """Render a template held in a content file (explanations) to HTML."""
        return self._from_source(source, locale or self.default_locale, True).render(
            **context
        ).strip()

    def plain_string(self, source: str, locale: str | None = None, /, **context: Any) -> str:
        """Render a template held in a content file to plain text (a button, a title)."""
        return self._from_source(source, locale or self.default_locale, False).render(
            **context
        ).strip()

    def _from_source(self, source: str, locale: str, escape: bool) -> jinja2.Template:
        key = (locale, escape, source)
        template = self._sources.get(key)
        if template is None:
            if len(self._sources) >= _MAX_SOURCES:
                self._sources.clear()  # content is finite; this only bounds a misuse
            template = self._env(locale, escape=escape).from_string(source)
            self._sources[key] = template
        return template

    def label(self, key: str, locale: str | None = None, /, **context: Any) -> str:
        """A short plain string: a button, a command description, a role name."""
        locale = locale or self.default_locale
        template = self._compiled.get((locale, key))
        if template is None:
            source = self._label_table(locale).get(key)
            if source is None:
                raise KeyError(f"no label {key!r} in messages/{locale}/labels.toml")
            # Compiled once: a checklist reply renders a dozen button labels.
            template = self._env(locale, escape=False).from_string(source)
            self._compiled[(locale, key)] = template
        return template.render(**context).strip()

    def has_label(self, key: str, locale: str | None = None) -> bool:
        return key in self._label_table(locale or self.default_locale)

    def _label_table(self, locale: str) -> dict[str, str]:
        if locale not in self._labels:
            table = _read_label_dir(self.root / FALLBACK_LOCALE)
            if locale != FALLBACK_LOCALE:
                table.update(_read_label_dir(self.root / locale))
            self._labels[locale] = table
        return self._labels[locale]

    @cached_property
    def template_names(self) -> list[str]:
        base = self.root / FALLBACK_LOCALE
        return sorted(str(p.relative_to(base).with_suffix("")) for p in base.rglob("*.j2"))


def _read_label_dir(base: Path) -> dict[str, str]:
    """`labels.toml` plus one `labels/<feature>.toml` per feature; a key defined twice is a bug."""
    table: dict[str, str] = {}
    for path in [base / "labels.toml", *sorted((base / "labels").glob("*.toml"))]:
        for key, value in _read_labels(path).items():
            if key in table:
                raise ValueError(f"label {key!r} defined twice ({path})")
            table[key] = value
    return table


def _read_labels(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    flat: dict[str, str] = {}

    def walk(prefix: str, node: Mapping[str, Any]) -> None:
        for key, value in node.items():
            name = f"{prefix}.{key}" if prefix else key
            if isinstance(value, Mapping):
                walk(name, value)
            else:
                flat[name] = str(value)

    walk("", data)
    return flat


def format_number(value: int | float) -> str:
    """Vietnamese numbers: thousands with a dot, decimals with a comma (4.250 hộ, 0,4%)."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return f"{value:,}".replace(",", "\0").replace(".", ",").replace("\0", ".")


def format_percent(ratio: float) -> str:
    """A share as people read it: whole percents, one decimal (with a comma) where a whole
    number would hide real progress: 40 of 10.000 is "0,4%", not "0%"; 9.996 is "99,96%"
    → "99,9%", never a "100%" that is not done."""
    value = ratio * 100
    if value <= 0 or value >= 100 or 10 <= value < 99.5:
        return f"{round(value)}%"
    shown = math.floor(value * 10) / 10 if value > 99 else round(value, 1)
    return f"{format_number(shown)}%"


def progress_bar(ratio: float, width: int = 10) -> str:
    """`▓▓▓▓▓▓░░░░`: a share drawn in characters every phone font has."""
    filled = max(0, min(width, round(ratio * width)))
    return "\u2593" * filled + "\u2591" * (width - filled)


_TAG_RE = re.compile(r"<(/?)([a-zA-Z-]+)([^>]*)>")
_HREF_RE = re.compile(r'href="([^"]*)"')


def to_plain(text: str) -> str:
    """Turn our HTML subset into plain text for platforms without markup."""

    out: list[str] = []
    pos = 0
    pending_href: list[str] = []
    for match in _TAG_RE.finditer(text):
        out.append(text[pos : match.start()])
        pos = match.end()
        closing, tag = match.group(1), match.group(2).lower()
        if tag == "a" and not closing:
            href = _HREF_RE.search(match.group(3))
            pending_href.append(href.group(1) if href else "")
        elif tag == "a" and closing and pending_href:
            target = pending_href.pop()
            if target and target not in out[-1]:
                out.append(f" ({target})")
        elif tag == "br":
            out.append("\n")
    out.append(text[pos:])
    return html.unescape("".join(out))


def to_terminal(text: str, *, color: bool) -> str:
    """Plain text, with bold shown as bold where the terminal can."""
    if color:
        text = re.sub(r"<(b|strong)>", "\033[1m", text)
        text = re.sub(r"</(b|strong)>", "\033[0m", text)
    return to_plain(text)


def split_text(text: str, limit: int) -> list[str]:
    """Cut a long text into pieces of at most `limit` characters, in order: at line ends
    where that fills a piece at least half, else between words, never inside a word (unless
    one "word" is longer than a piece)."""
    if len(text) <= limit:
        return [text]
    pieces: list[str] = []
    current = ""
    for line in text.split("\n"):
        candidate = f"{current}\n{line}" if current else line
        if len(candidate) <= limit:
            current = candidate
            continue
        if len(current) >= limit // 2:
            pieces.append(current)
            candidate = line
        while len(candidate) > limit:
            cut = candidate.rfind(" ", 0, limit + 1)
            cut = cut if cut > 0 else limit
            pieces.append(candidate[:cut].rstrip())
            candidate = candidate[cut:].lstrip(" ")
        current = candidate
    if current:
        pieces.append(current)
    return pieces
