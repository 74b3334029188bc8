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

from bot.services.explanations import Match, Matcher, MatchResult
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
    smalltalk: tuple[tuple[str, Phrases], ...]
    fillers: Phrases
    person: Phrases
    not_person: Phrases
    staff: Phrases  # who the resident wants: cán bộ, nhân viên, ad, tổ trưởng...
    contact: Phrases  # ...and what with them: gặp, gọi lại, liên hệ, xin số, nói chuyện...
    calling: Phrases  # "cán bộ ơi", "ad ơi": a call with nothing else asked
    strong: Phrases
    problems: Phrases  # one-syllable words that are ambiguous unaccented count only accented
    places: Phrases
    numbered: Phrases  # places that count even unaccented when a number follows ("to 5")
    durations: Phrases  # "mấy hôm nay", "3 ngày rồi", "tối nào cũng": a problem that lasts
    not_report: Phrases
    categories: tuple[tuple[str, Phrases], ...]
    asking: Phrases  # "sao", "ở đâu", "thế nào": the message asks something, it is no chat
    plans: Phrases  # "để bác", "để mai": after an opener, a plan, not a question
    done: Phrases  # "làm được rồi", "vào được", "xong": thanks for something that worked
    not_done: Phrases  # "vẫn", "chưa", "mà", "lỗi": ...unless something is still wrong
    offtopic: Phrases  # lottery, football, recipes, prices, horoscope: no guide is about these
    offtopic_plain: Phrases  # the same typed without accents, only where that is unambiguous


# Lists under [smalltalk] that are word classes, not reply groups.
_NOT_GROUPS = ("fillers", "asking", "ambiguous", "done", "not_done", "plans")


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
    offtopic = table("offtopic")
    categories = report.get("categories", {})
    if not isinstance(categories, dict):
        raise WordsError(f"{path.name}: [report.categories] must be a table")
    ambiguous = frozenset(
        fold(w) for p in phrases(report.get("ambiguous", []), "report.ambiguous") for w in p)
    # "xin" typed without accents is "please", not "xịn"; "mua" is "buy", not "mưa"
    chatty = frozenset(
        fold(w) for p in phrases(small.get("ambiguous", []), "smalltalk.ambiguous") for w in p)
    return Intents(
        smalltalk=tuple(
            (str(k), Phrases(phrases(v, f"smalltalk.{k}"), chatty))
            for k, v in small.items() if k not in _NOT_GROUPS
        ),
        fillers=Phrases(phrases(small.get("fillers", []), "smalltalk.fillers")),
        # "a" typed without accents is mostly "ạ", not the "à" that asks
        asking=Phrases(phrases(small.get("asking", []), "smalltalk.asking"), chatty),
        plans=Phrases(phrases(small.get("plans", []), "smalltalk.plans")),
        done=Phrases(phrases(small.get("done", []), "smalltalk.done")),
        not_done=Phrases(phrases(small.get("not_done", []), "smalltalk.not_done")),
        person=Phrases(phrases(person.get("phrases", []), "person.phrases")),
        not_person=Phrases(phrases(person.get("not_if", []), "person.not_if")),
        staff=Phrases(phrases(person.get("staff", []), "person.staff")),
        contact=Phrases(phrases(person.get("contact", []), "person.contact")),
        calling=Phrases(phrases(person.get("calling", []), "person.calling")),
        strong=Phrases(phrases(report.get("strong", []), "report.strong")),
        problems=Phrases(phrases(report.get("problems", []), "report.problems"), ambiguous),
        places=Phrases(phrases(report.get("places", []), "report.places"), ambiguous),
        numbered=Phrases(phrases(report.get("numbered", []), "report.numbered")),
        durations=Phrases(phrases(report.get("durations", []), "report.durations"), ambiguous),
        # "ma" typed without accents is mostly "mà" (but), not "mã" (a code): ambiguous too.
        not_report=Phrases(phrases(report.get("not_if", []), "report.not_if"), ambiguous),
        categories=tuple((str(k), Phrases(phrases(v, f"report.categories.{k}")))
                         for k, v in categories.items()),
        offtopic=Phrases(phrases(offtopic.get("words", []), "offtopic.words"), as_written=True),
        offtopic_plain=Phrases(phrases(offtopic.get("plain", []), "offtopic.plain")),
    )


def _same(token: Token, word: str, folded: str) -> bool:
    """A typed syllable is the phrase's syllable: exactly, or folded when either lacks accents."""
    if token.text == word:
        return True
    return token.folded == folded and (not token.accented or word == folded)


class Phrases:
    """Phrases indexed by their first folded syllable, longest first."""

    def __init__(self, phrases: tuple[Phrase, ...], ambiguous: frozenset[str] = frozenset(),
                 *, as_written: bool = False):
        # as_written: an accented word matches only when typed with its accents ("vàng" is not
        # "vang" of "tạm vắng", "ô tô" is not "ở tổ").
        self._as_written = as_written
        self._by_first: dict[str, list[tuple[tuple[str, str], ...]]] = {}
        for phrase in phrases:  # already longest first
            words = tuple((w, fold(w).replace(" ", "")) for w in phrase)
            self._by_first.setdefault(words[0][1], []).append(words)
        self._ambiguous = ambiguous

    def at(self, tokens: list[Token], i: int) -> int:
        """The length of the longest phrase starting at token i (0 for none)."""
        first = tokens[i]
        for words in self._by_first.get(first.folded, ()):
            if len(words) == 1 and not first.accented and first.folded in self._ambiguous:
                continue  # "dong" alone is not taken for "đọng"
            if i + len(words) <= len(tokens) and all(
                (tokens[i + j].text == word) if self._as_written
                else _same(tokens[i + j], word, folded)
                for j, (word, folded) in enumerate(words)
            ):
                return len(words)
        return 0

    def found(self, tokens: list[Token]) -> bool:
        return any(self.at(tokens, i) for i in range(len(tokens)))


def _covered(tokens: list[Token], groups: tuple[tuple[str, Phrases], ...],
             fillers: Phrases) -> str | None:
    """If the message is made only of small-talk phrases and fillers, the first group found."""
    i, found = 0, ""
    while i < len(tokens):
        # The longest phrase of any group: "ngủ ngon" is a goodnight, not "ngu" (a cross word).
        size, first = max(((phrases.at(tokens, i), -k) for k, (_, phrases) in enumerate(groups)),
                         default=(0, 0))
        if size:
            found = found or groups[-first][0]
            i += size
        else:
            size = fillers.at(tokens, i) or int(tokens[i].folded.isdigit())  # "chúc mừng 20/11"
            if not size:
                return None
            i += size
    return found or None


def _spans(phrases: Phrases, tokens: list[Token]) -> set[int]:
    """The positions of the tokens inside any of the phrases."""
    inside: set[int] = set()
    for i in range(len(tokens)):
        inside.update(range(i, i + phrases.at(tokens, i)))
    return inside


# A message of at most this many syllables, with a small-talk phrase and at most this many
# syllables the small-talk lists do not know, may be small talk (on the fit split 1, 2 and 3
# tie; 2 because unknown words are what fresh small talk failed on).
LIGHT_LONGEST = 8
LIGHT_UNKNOWN = 2
# Thanks for something that worked may name it at some length ("cảm ơn em, chị vào được VNeID
# rồi nhé"); beyond this many syllables a message usually goes on to ask or tell something else.
WORKED_LONGEST = 14
# A message that opens with small talk ("ừ", "dạ cháu cảm ơn", "chào bot"), asks nothing and fits
# no guide at all is small talk up to this many syllables.
OPENER_LONGEST = 12
OPENER_ANYWHERE = False
UNANCHORED_IS_NOTHING = True


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
        # "ad ơi" calls someone: not a greeting even though "ad" and "ơi" are small-talk words;
        # with the call taken out, "chào buổi sáng phường ơi" still greets.
        calls = _spans(intents.calling, tokens)
        rest = [t for i, t in enumerate(tokens) if i not in calls]
        chat = _covered(rest, intents.smalltalk, intents.fillers) if rest else None
        if chat is not None:
            return Reading(Kind.SMALLTALK, reply=chat)
        if self._is_person(tokens):
            return Reading(Kind.PERSON, has_question=self._has_question(tokens))
        if self._is_report(tokens):
            return Reading(Kind.REPORT, category=self._category(tokens),
                           match=self.matcher.decide(self.matcher.scores_of(tokens)))
        found = self.matcher.scores_of(tokens)
        chat = self._mostly_chat(text, tokens, found)
        if chat is not None:
            return Reading(Kind.SMALLTALK, reply=chat)
        offtopic = intents.offtopic.found(tokens) or intents.offtopic_plain.found(tokens)
        if offtopic and not (found and found[0].anchor >= 2):
            # Lottery, football, a recipe: unless a guide's own phrase is there too ("giá vàng"
            # is not, "mã QR" would be), say plainly that no guide fits.
            return Reading(Kind.QUESTION, match=MatchResult(confident=None, candidates=()))
        return Reading(Kind.QUESTION, match=self.matcher.decide(found))

    def _mostly_chat(self, text: str, tokens: list[Token], found: list[Match]) -> str | None:
        """A short message with a small-talk phrase and a word or two the lists do not know
        ("sáng nay trời đẹp ghê", "haha bot vui tính ghê") is small talk too, unless it asks
        something ("?", "sao", "ở đâu"...) or a guide is clearly meant. Thanks for something that
        worked ("cảm ơn, giờ bà đọc được chữ to rồi") is small talk even when a guide is named."""
        intents = self.intents
        if intents.offtopic.found(tokens) or intents.offtopic_plain.found(tokens):
            return None
        limits = self.matcher.thresholds
        # No guide is firmly meant: nothing scores, or none of its own phrases is there.
        nothing_fits = (not found or found[0].score < limits.weak
                        or (UNANCHORED_IS_NOTHING and found[0].anchor < limits.anchor))
        if "?" in text:
            return None
        if nothing_fits and len(tokens) <= OPENER_LONGEST:
            opener = self._opener(tokens)
            if opener and (not intents.asking.found(tokens) or intents.plans.found(tokens)):
                # "ừ, để bác bảo con trai làm cho", "dạ, để bác nhờ thằng cháu làm giúp":
                # nothing asked (or only within a plan), no guide fits
                return opener
        if intents.asking.found(tokens):
            return None
        if self._worked(tokens):
            return "thanks"
        if len(tokens) > LIGHT_LONGEST:
            return None
        chat, inside = "", set()
        for name, phrases in intents.smalltalk:
            spans = _spans(phrases, tokens)
            if spans and not chat:
                chat = name
            inside |= spans
        if not chat:
            return None
        inside |= _spans(intents.fillers, tokens)
        unknown = [i for i in range(len(tokens)) if i not in inside]
        if len(unknown) > LIGHT_UNKNOWN:
            return None
        if found and found[0].score >= limits.direct and found[0].anchor >= limits.anchor:
            return None  # "chào phường, cho hỏi làm việc mấy giờ": a guide is meant
        return chat

    def _opener(self, tokens: list[Token]) -> str:
        """The small-talk group of the phrase the message opens with ("" for none); with
        OPENER_ANYWHERE, of any small-talk phrase in it."""
        for i in range(len(tokens) if OPENER_ANYWHERE else 1):
            for name, phrases in self.intents.smalltalk:
                if phrases.at(tokens, i):
                    return name
        return ""

    def _worked(self, tokens: list[Token]) -> bool:
        """Thanks or ok for something that worked ("cảm ơn bot, giờ bà đọc được chữ to rồi",
        "tks, mình cài xong rồi"), with nothing still wrong or asked: small talk, even though the
        words name a guide's subject."""
        intents = self.intents
        if len(tokens) > WORKED_LONGEST or not intents.done.found(tokens):
            return False
        thanked = any(phrases.found(tokens) for name, phrases in intents.smalltalk
                      if name in ("thanks", "ok"))
        return thanked and not intents.not_done.found(tokens)

    def _is_person(self, tokens: list[Token]) -> bool:
        """A "person please" phrase; or someone of the ward's staff together with a way to reach
        them ("cho em xin sđt cán bộ", "nhờ cán bộ gọi lại"); or only a call to them ("ad ơi",
        "cán bộ ơi giúp tôi với"): never when the message is about a caller or a scam."""
        intents = self.intents
        if intents.not_person.found(tokens):
            return False
        if intents.person.found(tokens):
            return True
        if intents.staff.found(tokens) and intents.contact.found(tokens):
            return True
        return intents.calling.found(tokens) and not self._has_question(tokens)

    def _is_report(self, tokens: list[Token]) -> bool:
        intents = self.intents
        if intents.strong.found(tokens):
            return not intents.not_report.found(tokens)
        if intents.not_report.found(tokens) or not intents.problems.found(tokens):
            return False
        if intents.places.found(tokens) or self._numbered_place(tokens):
            return True
        # A problem that lasts: the problem word must be more than the duration itself
        # ("cả tuần" alone is no problem).
        lasting = _spans(intents.durations, tokens) | self._counted_days(tokens)
        return bool(lasting) and bool(_spans(intents.problems, tokens) - lasting)

    def _counted_days(self, tokens: list[Token]) -> set[int]:
        """A number of days, nights or weeks ("3 hôm rồi", "2 tuan nay"): the problem lasts."""
        units = {"hom", "ngay", "dem", "tuan", "thang", "bua"}
        return {
            j for i in range(len(tokens) - 1)
            if tokens[i].folded.isdigit() and tokens[i + 1].folded in units for j in (i, i + 1)
        }

    def _numbered_place(self, tokens: list[Token]) -> bool:
        for i in range(len(tokens)):
            size = self.intents.numbered.at(tokens, i)
            if size and i + size < len(tokens) and tokens[i + size].folded[:1].isdigit():
                return True
        return False

    def _category(self, tokens: list[Token]) -> str:
        for name, phrases in self.intents.categories:
            if phrases.found(tokens):
                return name
        return "other"

    def _has_question(self, tokens: list[Token]) -> bool:
        """Beyond "let me talk to someone", does the message say what about?"""
        intents = self.intents
        covered = [False] * len(tokens)
        for phrases in (intents.person, intents.staff, intents.contact, intents.calling,
                        intents.fillers):
            for i in range(len(tokens)):
                size = phrases.at(tokens, i)
                covered[i : i + size] = [True] * size
        words = self.matcher.library.words
        rest = [t for t, c in zip(tokens, covered, strict=True)
                if not c and not words.is_stopword(t)]
        return len(rest) >= 2
