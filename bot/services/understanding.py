"""What a resident's message is, decided before any guide is matched.

- small talk (greetings, thanks, "ok", emoji, "alo có ai không", the weather): a short friendly
  reply, never a guide, a "did you mean" list or a ticket;
- "I want a person": straight to the ward's question form, the question kept;
- a problem report (a place and something broken, dirty, dangerous or late): filing it with the
  ward comes first, with a guessed category the resident confirms;
- otherwise a question for the guides (`Matcher`).

The phrases are content in `messages/understanding/<locale>/intents.toml`. Phrases match as
whole syllables; accents count when the resident typed them ("đổ" is not "đó").
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from bot.services.explanations import Matcher, MatchResult
from bot.services.vietnamese import UNDERSTANDING_DIR, Reader, Token, WordsError, fold

Phrase = tuple[str, ...]


class Kind(StrEnum):
    SMALLTALK = "smalltalk"
    PERSON = "person"
    REPORT = "report"
    QUESTION = "question"


@dataclass(frozen=True)
class Reading:
    """What the message is. `reply` names the small-talk reply; `category` is the guessed
    feedback category of a report; `has_question` says a request for a person carries a
    question worth sending as it is; `match` is the guides' answer for a question."""

    kind: Kind
    reply: str = ""
    category: str = ""
    has_question: bool = False
    match: MatchResult | None = None


@dataclass(frozen=True)
class Intents:
    smalltalk: tuple[tuple[str, tuple[Phrase, ...]], ...]
    fillers: tuple[Phrase, ...]
    person: tuple[Phrase, ...]
    strong: tuple[Phrase, ...]
    problems: tuple[Phrase, ...]
    places: tuple[Phrase, ...]
    not_report: tuple[Phrase, ...]
    ambiguous: frozenset[str]  # folded one-syllable words a report needs typed with accents
    categories: tuple[tuple[str, tuple[Phrase, ...]], ...]


def load_intents(reader: Reader, locale: str = "vi", root: Path = UNDERSTANDING_DIR) -> Intents:
    path = root / locale / "intents.toml"
    if not path.is_file():
        path = root / "vi" / "intents.toml"
    try:
        data = tomllib.loads(path.read_text("utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise WordsError(f"{path.name}: not valid TOML ({exc})") from None

    def phrases(values: object, name: str) -> tuple[Phrase, ...]:
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise WordsError(f"{path.name}: {name} must be a list of strings")
        found = [tuple(t.text for t in reader.tokens(v, correct=False)) for v in values]
        # Longest first, so "chào buổi sáng" is taken whole before "chào".
        return tuple(sorted(dict.fromkeys(p for p in found if p), key=lambda p: (-len(p), p)))

    def table(name: str) -> dict[str, object]:
        value = data.get(name)
        if not isinstance(value, dict):
            raise WordsError(f"{path.name}: needs a [{name}] table")
        return value

    small, person, report = table("smalltalk"), table("person"), table("report")
    categories = report.get("categories", {})
    if not isinstance(categories, dict):
        raise WordsError(f"{path.name}: [report.categories] must be a table")
    return Intents(
        smalltalk=tuple(
            (str(k), phrases(v, f"smalltalk.{k}")) for k, v in small.items() if k != "fillers"
        ),
        fillers=phrases(small.get("fillers", []), "smalltalk.fillers"),
        person=phrases(person.get("phrases", []), "person.phrases"),
        strong=phrases(report.get("strong", []), "report.strong"),
        problems=phrases(report.get("problems", []), "report.problems"),
        places=phrases(report.get("places", []), "report.places"),
        not_report=phrases(report.get("not_if", []), "report.not_if"),
        ambiguous=frozenset(fold(w) for p in phrases(report.get("ambiguous", []),
                                                       "report.ambiguous") for w in p),
        categories=tuple((str(k), phrases(v, f"report.categories.{k}"))
                         for k, v in categories.items()),
    )


def _same(token: Token, word: str) -> bool:
    """A typed syllable is the phrase's syllable: exactly, or folded when either lacks accents."""
    if token.text == word:
        return True
    return token.folded == fold(word) and (not token.accented or word == fold(word))


def _at(tokens: list[Token], i: int, phrase: Phrase) -> bool:
    return i + len(phrase) <= len(tokens) and all(
        _same(tokens[i + j], word) for j, word in enumerate(phrase))


def _contains(tokens: list[Token], phrases: tuple[Phrase, ...],
              ambiguous: frozenset[str] = frozenset()) -> Phrase | None:
    for phrase in phrases:
        for i in range(len(tokens) - len(phrase) + 1):
            if _at(tokens, i, phrase) and not (
                len(phrase) == 1 and not tokens[i].accented and tokens[i].folded in ambiguous
            ):
                return phrase
    return None


def _covered(tokens: list[Token], groups: tuple[tuple[str, tuple[Phrase, ...]], ...],
             fillers: tuple[Phrase, ...]) -> str | None:
    """If the message is made only of small-talk phrases and fillers, the first group found."""
    i, found = 0, ""
    while i < len(tokens):
        for name, phrases in groups:
            hit = next((p for p in phrases if _at(tokens, i, p)), None)
            if hit is not None:
                found = found or name
                i += len(hit)
                break
        else:
            filler = next((p for p in fillers if _at(tokens, i, p)), None)
            if filler is None:
                return None
            i += len(filler)
    return found or None


class Understanding:
    """Reads a message: small talk, a request for a person, a problem report, or a question."""

    def __init__(self, matcher: Matcher, intents: Intents | None = None) -> None:
        self.matcher = matcher
        self.intents = intents or load_intents(Reader(matcher.library.words))

    def read(self, text: str) -> Reading:
        tokens = self.matcher.tokens(text)
        intents = self.intents
        if not tokens:
            return Reading(Kind.SMALLTALK, reply="emoji")  # a sticker, an emoji, "..."
        chat = _covered(tokens, intents.smalltalk, intents.fillers)
        if chat is not None:
            return Reading(Kind.SMALLTALK, reply=chat)
        if _contains(tokens, intents.person):
            return Reading(Kind.PERSON, has_question=self._has_question(tokens))
        if self._is_report(tokens):
            return Reading(Kind.REPORT, category=self._category(tokens),
                           match=self.matcher.decide(self.matcher.scores_of(tokens)))
        return Reading(Kind.QUESTION, match=self.matcher.decide(self.matcher.scores_of(tokens)))

    def _is_report(self, tokens: list[Token]) -> bool:
        intents = self.intents
        if _contains(tokens, intents.strong):
            return not _contains(tokens, intents.not_report)
        return bool(
            _contains(tokens, intents.problems, intents.ambiguous)
            and _contains(tokens, intents.places, intents.ambiguous)
            and not _contains(tokens, intents.not_report)
        )

    def _category(self, tokens: list[Token]) -> str:
        for name, phrases in self.intents.categories:
            if _contains(tokens, phrases):
                return name
        return "other"

    def _has_question(self, tokens: list[Token]) -> bool:
        """Beyond "let me talk to someone", does the message say what about?"""
        intents = self.intents
        covered = [False] * len(tokens)
        for phrases in (intents.person, intents.fillers):
            for phrase in phrases:
                for i in range(len(tokens) - len(phrase) + 1):
                    if _at(tokens, i, phrase):
                        covered[i : i + len(phrase)] = [True] * len(phrase)
        words = self.matcher.library.words
        rest = [t for t, c in zip(tokens, covered, strict=True)
                if not c and not words.is_stopword(t)]
        return len(rest) >= 2
