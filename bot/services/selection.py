"""Groups chosen by typing, for pickers too long to press through: "TDP01-TDP40",
"TDP03 TDP07", "TDP01-40, TDP45", "tất cả" / "ca phuong".

Pure rules over a list of groups the person may pick from; no database access.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from bot.services.places import GroupInfo

ALL_WORDS = frozenset({"tatca", "caphuong", "all", "het", "toanphuong"})
_CODE = re.compile(r"^([A-Z]*)0*([0-9]+)$")
_SPLIT = re.compile(r"[\s,;]+")


@dataclass(frozen=True)
class Selection:
    ids: list[int]  # in the order of the allowed list
    unknown: list[str]  # words that named no group (nothing is chosen then)
    everything: bool = False


def _fold(text: str) -> str:
    """Lower case, no diacritics, no spaces: "Cả phường" -> "caphuong"."""
    text = unicodedata.normalize("NFD", text.lower()).replace("đ", "d")
    return "".join(c for c in text if not unicodedata.combining(c) and not c.isspace())


def _split_code(code: str) -> tuple[str, int] | None:
    match = _CODE.match(code.strip().upper())
    return (match.group(1), int(match.group(2))) if match else None


def natural_key(code: str) -> tuple[str, int, str]:
    """Sort "TDP2" before "TDP10" and "TDP99" before "TDP100", as people count."""
    parsed = _split_code(code)
    return (parsed[0], parsed[1], code) if parsed else (code.upper(), -1, code)


def looks_like_choice(text: str) -> bool:
    """Whether typed text is meant as a choice of groups (not a question or a notice)."""
    words = [w for w in _SPLIT.split(text.strip()) if w]
    if not words or len(text) > 400:
        return False
    if _fold(text) in ALL_WORDS:
        return True
    return all(_split_code(w) or ("-" in w and all(_split_code(p) for p in w.split("-", 1)))
               for w in words)


def choose(text: str, allowed: Sequence[GroupInfo]) -> Selection:
    """The groups named in `text` among `allowed`: codes, ranges "A-B" (same letters, the
    numbers between, ends included; "TDP01-40" shortens the second code), or "all"."""
    if _fold(text) in ALL_WORDS:
        return Selection([g.id for g in allowed], [], everything=True)
    by_code = {g.code.upper(): g for g in allowed}
    parsed = [(g, _split_code(g.code)) for g in allowed]
    picked: set[int] = set()
    unknown: list[str] = []
    for word in (w for w in _SPLIT.split(text.strip()) if w):
        if word.upper() in by_code:
            picked.add(by_code[word.upper()].id)
            continue
        if "-" in word:
            low_text, high_text = word.split("-", 1)
            low, high = _split_code(low_text), _split_code(high_text)
            if low is not None and high is not None:
                letters = low[0]
                if high[0] not in ("", letters):
                    unknown.append(word)
                    continue
                a, b = sorted((low[1], high[1]))
                hits = {g.id for g, code in parsed
                        if code is not None and code[0] == letters and a <= code[1] <= b}
                if hits:
                    picked |= hits
                    continue
        code = _split_code(word)
        same = [g.id for g, c in parsed if code is not None and c == code]
        if same:
            picked.add(same[0])
        else:
            unknown.append(word)
    return Selection([g.id for g in allowed if g.id in picked], unknown)
