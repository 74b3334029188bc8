"""Vietnamese as residents type it: tokens that keep the accents they typed, abbreviations and
teencode spelled out, and typos fixed only where a token cannot be a Vietnamese syllable.

Everything here is deterministic: no sets are iterated where order could change a result, so
the same message gives the same tokens under any PYTHONHASHSEED. The word lists are content in
`messages/understanding/<locale>/words.toml`.
"""

from __future__ import annotations

import re
import tomllib
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from rapidfuzz.distance import OSA  # edit distance where swapping two letters costs one

UNDERSTANDING_DIR = Path(__file__).resolve().parent.parent.parent / "messages" / "understanding"
_WORD = re.compile(r"[^\W_]+")
# "ký"/"kí", "lý"/"lí", "kỹ"/"kĩ", "quý"/"quí": both spellings are in use; after a consonant a
# final y is written i here, so "đăng kí" meets "đăng ký" (a lone "y", as in "y tế", stays).
_Y_AS_I = re.compile(r"^(qu|[bdđhklmnstv])([yýỳỷỹỵ])$")
_Y_TO_I = str.maketrans("yýỳỷỹỵ", "iíìỉĩị")


class WordsError(ValueError):
    """A word list that is not valid; the message names the file and the field."""


def fold(text: str) -> str:
    """Lowercase ASCII without diacritics or punctuation, so "dang ky" meets its accented form."""
    text = text.lower().replace("\u0111", "d")  # d with stroke has no NFD decomposition
    text = unicodedata.normalize("NFD", text)
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return " ".join(re.findall(r"[a-z0-9]+", text))


def words_of(text: str) -> list[str]:
    """Lowercase words in NFC (composed accents), punctuation dropped."""
    return _WORD.findall(unicodedata.normalize("NFC", text.lower()))


@dataclass(frozen=True)
class Token:
    """One syllable as it will be matched: `text` keeps the accents typed (or spelled out)."""

    text: str
    folded: str
    trust: float = 1.0  # below 1 when the token is a guessed typo correction

    @property
    def accented(self) -> bool:
        return self.text != self.folded


@dataclass(frozen=True)
class Words:
    abbreviations: dict[tuple[str, ...], tuple[str, ...]]
    brands: frozenset[str]
    stopwords: frozenset[str]  # folded
    stopwords_written: frozenset[str]  # as listed, accents kept
    onsets: tuple[str, ...]
    rhymes: frozenset[str]

    def is_syllable(self, folded: str) -> bool:
        """Could this folded token be a Vietnamese syllable (whatever its accents)?"""
        for onset in self.onsets:  # longest onsets first: "ngh" before "ng" before "n"
            if folded.startswith(onset) and folded[len(onset):] in self.rhymes:
                return True
        return False

    def is_stopword(self, token: Token) -> bool:
        """Accents count when typed: "cái" is a stopword, "cài" (install) is not; typed without
        accents, "cai" may be either and counts as one."""
        if token.accented:
            return token.text in self.stopwords_written
        return token.folded in self.stopwords


def load_words(locale: str = "vi", root: Path = UNDERSTANDING_DIR) -> Words:
    path = root / locale / "words.toml"
    if not path.is_file():
        path = root / "vi" / "words.toml"
    try:
        data = tomllib.loads(path.read_text("utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise WordsError(f"{path.name}: not valid TOML ({exc})") from None
    raw_abbr = data.get("abbreviations", {})
    syllables = data.get("syllables", {})
    if not isinstance(raw_abbr, dict) or not isinstance(syllables, dict):
        raise WordsError(f"{path.name}: needs [abbreviations] and [syllables] tables")
    abbreviations = {
        tuple(words_of(str(k))): tuple(words_of(str(v))) for k, v in sorted(raw_abbr.items())
    }
    onsets = sorted((str(o) for o in _strings(path, syllables, "onsets")), key=lambda o: -len(o))
    return Words(
        abbreviations=abbreviations,
        brands=frozenset(fold(b) for b in _strings(path, data, "brands")),
        stopwords=frozenset(fold(s) for s in _strings(path, data, "stopwords")),
        stopwords_written=frozenset(
            " ".join(words_of(s)) for s in _strings(path, data, "stopwords")),
        onsets=tuple(onsets),
        rhymes=frozenset(_strings(path, syllables, "rhymes")),
    )


def _strings(path: Path, data: dict[str, object], name: str) -> list[str]:
    value = data.get(name)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise WordsError(f"{path.name}: {name} must be a list of strings")
    return list(value)


class Reader:
    """Turns a message into tokens: abbreviations spelled out, typos corrected against a
    vocabulary (the words of the guides), accents kept as typed."""

    def __init__(self, words: Words, vocabulary: Iterable[str] = (),
                 pairs: Iterable[str] = ()) -> None:
        self.words = words
        self._pairs = frozenset(pairs)
        self._longest = max((len(k) for k in words.abbreviations), default=1)
        self._vocabulary = frozenset(vocabulary)
        by_length: dict[int, list[str]] = {}
        for word in sorted(self._vocabulary):
            by_length.setdefault(len(word), []).append(word)
        self._by_length = by_length

    def tokens(self, text: str, *, correct: bool = True) -> list[Token]:
        raw = words_of(text)
        spelled: list[str] = []
        i = 0
        while i < len(raw):
            for size in range(min(self._longest, len(raw) - i), 0, -1):
                expansion = self.words.abbreviations.get(tuple(raw[i : i + size]))
                if expansion is not None:
                    spelled.extend(expansion)
                    i += size
                    break
            else:
                spelled.append(raw[i])
                i += 1
        result: list[Token] = []
        for word in spelled:
            token = _token(word)
            if not token.folded:
                continue
            if not correct or not self._suspect(token):
                result.append(token)
                continue
            glued = self._unglued(token)
            result.extend(glued if glued else [self._corrected(token)])
        return result

    def _suspect(self, token: Token) -> bool:
        """Not a word we know, not a brand, and not a possible Vietnamese syllable."""
        folded = token.folded
        return not (
            folded in self._vocabulary
            or folded in self.words.brands
            or len(folded) < 4
            or folded.isdigit()
            or self.words.is_syllable(folded)
        )

    def _unglued(self, token: Token) -> list[Token]:
        """Two syllables typed without the space ("dangky", "matkhau"): split where the halves
        are two syllables the guides write side by side (the first such split from the left),
        so "hehe" or "like" stay whole."""
        folded, text = token.folded, token.text
        if len(text) != len(folded):
            return []
        for cut in range(1, len(folded)):
            left, right = _token(text[:cut]), _token(text[cut:])
            if f"{left.folded} {right.folded}" in self._pairs and all(
                    self.words.is_syllable(half.folded) for half in (left, right)):
                return [left, right]
        return []

    def _corrected(self, token: Token) -> Token:
        """A typo is corrected only when the token cannot be a Vietnamese syllable, is no brand
        or loanword (`_suspect`), and one vocabulary word is nearest (ties broken
        alphabetically)."""
        folded = token.folded
        limit = 1 if len(folded) < 8 else 2
        best, best_distance = "", limit + 1
        for length in range(len(folded) - limit, len(folded) + limit + 1):
            for word in self._by_length.get(length, ()):
                distance = OSA.distance(folded, word, score_cutoff=limit)
                if distance < best_distance:  # sorted lists: the first of equals wins
                    best, best_distance = word, distance
        if not best:
            return token
        return Token(best, best, trust=0.8 if best_distance == 1 else 0.6)


def _token(word: str) -> Token:
    y = _Y_AS_I.match(word)
    if y:
        word = y.group(1) + y.group(2).translate(_Y_TO_I)
    return Token(word, fold(word).replace(" ", ""))


def load_glossary(locale: str = "vi", root: Path = UNDERSTANDING_DIR.parent) -> dict[str, str]:
    """The one glossary all texts use (`{{ term.cds_team }}`): messages/<locale>/glossary.toml."""
    path = root / locale / "glossary.toml"
    if not path.is_file():
        path = root / "vi" / "glossary.toml"
    data = tomllib.loads(path.read_text("utf-8")).get("term", {})
    if not isinstance(data, dict):
        raise WordsError(f"{path.name}: needs a [term] table")
    return {str(k): str(v["short"]) for k, v in data.items() if isinstance(v, dict)}
