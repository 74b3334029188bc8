"""Typed button payloads: a declared prefix and typed fields, packed into Telegram's 64 bytes.

A feature declares what its buttons carry once::

    @dataclass(frozen=True)
    class NoticePress(Payload, prefix="nt"):
        action: Literal["g", "all", "page", "now", "stop"]
        value: int = 0

`NoticePress("g", 12).pack()` is `"nt:g:12"`; the router unpacks every press with the class
its route declares, so a handler receives a validated `NoticePress` (`ctx.press(NoticePress)`)
and never splits a string. Packing: the prefix, then each field in declaration order, joined
by ":"; ints in decimal (0 to 2**31 - 1: ids are PostgreSQL integers), bools as 1/0,
strings with "%" and ":" escaped as %25 and %3A; trailing fields left at an empty default
("", 0, False, None) are left out ("nt:now"). A packed payload longer than 64 bytes (UTF-8),
or an int out of range, is a programming error (`ValueError` at pack time: the keyboard test
renders every keyboard, so it cannot reach a user); a payload that does not unpack (old,
garbled or forged) raises `PayloadError`, which the router answers with one polite line.
"""

from __future__ import annotations

import dataclasses
import re
import types
from enum import Enum
from typing import Any, ClassVar, Literal, Self, Union, get_args, get_origin, get_type_hints

MAX_BYTES = 64
SEP = ":"
PREFIX_RE = re.compile(r"^[a-z][a-z0-9]{0,7}$")
_INT_RE = re.compile(r"^[0-9]{1,10}$")  # ids, pages, counts: never negative
# Ids are PostgreSQL `integer`s: a larger number would make the query fail (an apology
# instead of the polite line), so it is refused here with the other forgeries.
INT_MAX = 2**31 - 1


class PayloadError(ValueError):
    """A pressed payload that is not what its route declares."""


def prefix_of(payload: str) -> str:
    return payload.split(SEP, 1)[0]


def _escape(text: str) -> str:
    return text.replace("%", "%25").replace(SEP, "%3A")


def _unescape(text: str) -> str:
    return text.replace("%3A", SEP).replace("%25", "%")


class Payload:
    """Base of every button payload; subclasses are frozen dataclasses with a `prefix`."""

    prefix: ClassVar[str]
    _spec: ClassVar[tuple[tuple[str, Any, Any], ...] | None] = None

    def __init_subclass__(cls, *, prefix: str, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not PREFIX_RE.match(prefix):
            raise ValueError(f"payload prefix {prefix!r}: 1-8 lowercase letters or digits")
        cls.prefix = prefix
        cls._spec = None

    # --- the declared fields, read once --------------------------------------------------
    @classmethod
    def _fields(cls) -> tuple[tuple[str, Any, Any], ...]:
        """(name, type, default or MISSING) per field, in declaration order."""
        if cls._spec is None:
            if not dataclasses.is_dataclass(cls):
                raise TypeError(f"{cls.__name__} must be a @dataclass(frozen=True)")
            hints = get_type_hints(cls)
            spec = []
            for f in dataclasses.fields(cls):
                kind = hints[f.name]
                _check_kind(cls, f.name, kind)
                spec.append((f.name, kind, f.default))
            cls._spec = tuple(spec)
        return cls._spec

    # --- packing -------------------------------------------------------------------------
    def pack(self) -> str:
        parts = [self.prefix]
        for name, kind, _default in self._fields():
            parts.append(_encode(kind, getattr(self, name), f"{type(self).__name__}.{name}"))
        # Trailing fields left at an empty default ("", 0, False, None) are implied.
        fields = self._fields()
        while len(parts) > 1:
            name, _kind, default = fields[len(parts) - 2]
            if default is dataclasses.MISSING or default or getattr(self, name) != default:
                break
            parts.pop()
        packed = SEP.join(parts)
        if len(packed.encode()) > MAX_BYTES:
            raise ValueError(f"payload {packed!r} is over {MAX_BYTES} bytes")
        return packed

    def __str__(self) -> str:
        return self.pack()

    @classmethod
    def unpack(cls, payload: str) -> Self:
        """The payload as declared, or `PayloadError` (never any other exception)."""
        if len(payload.encode()) > MAX_BYTES:
            raise PayloadError("too long")
        prefix, *raw = payload.split(SEP)
        if prefix != cls.prefix:
            raise PayloadError(f"prefix {prefix!r} is not {cls.prefix!r}")
        fields = cls._fields()
        if len(raw) > len(fields):
            raise PayloadError("too many fields")
        values: dict[str, Any] = {}
        for i, (name, kind, default) in enumerate(fields):
            if i < len(raw):
                values[name] = _decode(kind, raw[i])
            elif default is dataclasses.MISSING:
                raise PayloadError(f"field {name!r} missing")
        try:
            return cls(**values)
        except (TypeError, ValueError) as exc:  # a __post_init__ check
            raise PayloadError(str(exc)) from None


def _options(kind: Any) -> tuple[Any, ...]:
    return get_args(kind)


def _is_optional(kind: Any) -> tuple[bool, Any]:
    if get_origin(kind) in (Union, types.UnionType):
        args = [a for a in get_args(kind) if a is not type(None)]
        if len(args) == 1 and len(get_args(kind)) == 2:
            return True, args[0]
    return False, kind


def _check_kind(cls: type, name: str, kind: Any) -> None:
    optional, inner = _is_optional(kind)
    if inner in (int, str, bool):
        return
    if get_origin(inner) is Literal and all(isinstance(o, str) for o in _options(inner)):
        return
    if isinstance(inner, type) and issubclass(inner, Enum):
        return
    raise TypeError(f"{cls.__name__}.{name}: a payload field is int, str, bool, a Literal of "
                    f"strings, an Enum, or one of those | None (got {kind!r})")


def _encode(kind: Any, value: Any, where: str) -> str:
    optional, inner = _is_optional(kind)
    if value is None:
        if not optional:
            raise ValueError(f"{where} is None")
        return ""
    if inner is bool:
        return "1" if value else "0"
    if inner is int:
        if not 0 <= int(value) <= INT_MAX:
            raise ValueError(f"{where}={value!r} is not between 0 and {INT_MAX}")
        return str(int(value))
    if isinstance(inner, type) and issubclass(inner, Enum):
        return _escape(str(inner(value).value))
    if get_origin(inner) is Literal and value not in _options(inner):
        raise ValueError(f"{where}={value!r} is not one of {_options(inner)}")
    return _escape(str(value))


def _decode(kind: Any, raw: str) -> Any:
    optional, inner = _is_optional(kind)
    if optional and raw == "":
        return None
    if inner is bool:
        if raw not in ("0", "1"):
            raise PayloadError(f"bad bool {raw!r}")
        return raw == "1"
    if inner is int:
        if not _INT_RE.match(raw) or int(raw) > INT_MAX:
            raise PayloadError(f"bad int {raw!r}")
        return int(raw)
    text = _unescape(raw)
    if isinstance(inner, type) and issubclass(inner, Enum):
        try:
            return inner(text)
        except ValueError:
            raise PayloadError(f"bad {inner.__name__} {text!r}") from None
    if get_origin(inner) is Literal and text not in _options(inner):
        raise PayloadError(f"{text!r} is not one of {_options(inner)}")
    return text
