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


def _flat(template: jinja2.Template) -> jinja2.Template:
    """The template's globals as one plain dict instead of Jinja's ChainMap over the
    environment's: every render copies them into its context, and copying a ChainMap
    (a lookup per name through each map) was ~8% of a question's CPU (bench/README.md).
    Same names and values; `Texts.set_global` drops compiled templates to keep it so."""
    template.globals = dict(template.globals)
    return template


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
            if env.cache is not None:
                env.cache.clear()
        # Compiled templates hold a flat copy of the globals (_flat): compile them again.
        self._compiled.clear()
        self._files.clear()
        self._sources.clear()

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
            template = _flat(self._env(locale, escape=True).get_template(f"{name}.j2"))
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
            template = _flat(self._env(locale, escape=escape).from_string(source))
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
            template = _flat(self._env(locale, escape=False).from_string(source))
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


# Markup-safe splitting: a tag, an entity, a newline, a run of spaces or a word is one token.
_TOKEN_RE = re.compile(r"<[^<>]*>|&#?[a-zA-Z0-9]+;|\n| +|[^<&\n ]+|[<&]")
_PLAIN_TOKEN_RE = re.compile(r"\n| +|[^\n ]+")
_OPEN_RE = re.compile(r"<([a-zA-Z][a-zA-Z0-9-]*)[^>]*>")
_CLOSE_RE = re.compile(r"</([a-zA-Z][a-zA-Z0-9-]*)\s*>")


def split_text(text: str, limit: int, *, markup: bool = True) -> list[str]:
    """Cut a long text into pieces of at most `limit` characters, in order: at line ends
    where that fills a piece at least half, else between words, never inside a word (unless
    one "word" is longer than a piece), a tag or an entity (`&amp;`). Tags open at a cut are
    closed at the end of the piece and opened again at the start of the next, so every
    piece is valid markup on its own (Telegram refuses a message with an unclosed tag).
    `markup=False` for plain text (Zalo), where "<" and "&" are only characters."""
    if len(text) <= limit:
        return [text]
    pieces: list[str] = []
    queue = (_TOKEN_RE if markup else _PLAIN_TOKEN_RE).findall(text)
    queue.reverse()  # a stack: pop() takes the next token, append() puts one back
    stack: list[tuple[str, str]] = []  # (name, opening tag) of the tags open so far
    body: list[tuple[str, list[tuple[str, str]]]] = []  # (token, tags open after it)
    prefix = ""
    size = 0  # characters of the tokens in `body`, kept as they come (summing is quadratic)

    def closing(tags: list[tuple[str, str]]) -> str:
        return "".join(f"</{name}>" for name, _tag in reversed(tags))

    while queue:
        token = queue.pop()
        after = _after(stack, token) if markup else stack
        if len(prefix) + size + len(token) + len(closing(after)) <= limit:
            body.append((token, after))
            size += len(token)
            stack = after
            continue
        cut = _best_cut(body, limit)
        if cut is None:  # nothing to cut at: this token starts the next piece
            if not any(t.strip() and not t.startswith("<") for t, _ in body):
                # Not even one token fits in an empty piece: a word longer than a piece.
                room = limit - len(prefix) - size - len(closing(stack))
                if (markup and token.startswith(("<", "&"))) or room <= 0:
                    body.append((token, after))  # cannot shrink a tag: let it overflow
                    size += len(token)
                    stack = after
                    continue
                queue.append(token[room:])
                body.append((token[:room], stack))
                size += len(token[:room])
                token = ""
            else:
                queue.append(token)
                token = ""
            cut = len(body)
        else:
            queue.append(token)
        # Tokens after the cut go back to the queue; the cut token itself (a newline or
        # spaces) is dropped. Opening tags just before the cut move to the next piece.
        rest = body[cut:]
        kept = body[:cut]
        if rest and rest[0][0].isspace():
            rest = rest[1:]
        while markup and kept and _OPEN_RE.fullmatch(kept[-1][0]):
            rest.insert(0, kept.pop())
        for t, _ in reversed(rest):
            queue.append(t)
        open_at_cut = kept[-1][1] if kept else _tags_of(prefix)
        piece = prefix + "".join(t for t, _ in kept) + closing(open_at_cut)
        if piece.strip() and _visible(piece):
            pieces.append(piece)
        stack = list(open_at_cut)
        prefix = "".join(tag for _name, tag in stack)
        body, size = [], 0
        while queue and queue[-1].strip(" ") == "" and queue[-1] != "\n":
            queue.pop()  # a new piece does not start with spaces
    last = prefix + "".join(t for t, _ in body)
    if last.strip() and _visible(last):
        pieces.append(last + closing(stack))
    return pieces


def _after(stack: list[tuple[str, str]], token: str) -> list[tuple[str, str]]:
    """The open tags after `token`."""
    opened = _OPEN_RE.fullmatch(token)
    if opened:
        return [*stack, (opened.group(1).lower(), token)]
    closed = _CLOSE_RE.fullmatch(token)
    if closed:
        name = closed.group(1).lower()
        for i in range(len(stack) - 1, -1, -1):
            if stack[i][0] == name:
                return stack[:i] + stack[i + 1:]
    return stack


def _tags_of(prefix: str) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    for token in _TOKEN_RE.findall(prefix):
        found = _after(found, token)
    return found


def _best_cut(body: list[tuple[str, list[tuple[str, str]]]], limit: int) -> int | None:
    """Index of the token to cut at: the last line end that leaves the piece at least half
    full, else the last run of spaces, else the last line end; None when there is none."""
    length = 0
    lines: list[tuple[int, int]] = []
    spaces: list[int] = []
    for i, (token, _tags) in enumerate(body):
        if token == "\n":
            lines.append((i, length))
        elif token.strip(" ") == "" and i > 0:
            spaces.append(i)
        length += len(token)
    half = [i for i, at in lines if at >= limit // 2]
    if half:
        return half[-1]
    if spaces:
        return spaces[-1]
    if lines and lines[-1][0] > 0:
        return lines[-1][0]
    return None


def _visible(piece: str) -> bool:
    """Whether a piece shows anything once its tags are taken away."""
    return bool(_TAG_RE.sub("", piece).strip())
