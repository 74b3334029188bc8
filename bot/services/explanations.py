"""The explanation library: topics from `messages/explanations/`, a matcher for what residents
type, and the counts of reads and 👍/👎 that tell coordinators what confuses people.

The matcher scores each guide by the keyword phrases found in the message, as word n-grams
(1 to 4 syllables): rarer n-grams count more (inverse document frequency over guides), so a
multi-syllable phrase outweighs its single syllables. Accents count when the resident typed
them: "thẻ" does not match "thế", while "the" matches both a little less. Abbreviations are
spelled out and typos corrected by `bot/services/vietnamese.py`. No model download,
deterministic (ties broken by key), under a millisecond a message.
"""

from __future__ import annotations

import math
import re
import tomllib
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from sqlmodel import col, func, select

from bot.clock import Clock
from bot.db import Database, insert_or_skip
from bot.models import TopicRead, TopicVote
from bot.services.vietnamese import Reader, Token, Words, load_words
from bot.services.vietnamese import fold as fold  # re-exported: other services fold with it

EXPLANATIONS_DIR = Path(__file__).resolve().parent.parent.parent / "messages" / "explanations"
_JINJA = re.compile(r"{[{%].*?[%}]}")
_CHECKED = re.compile(r"20\d\d-(0[1-9]|1[0-2])")
MAX_KEY_LENGTH = 40  # "faq:v:<key>:1" must fit Telegram's 64-byte button payload
MAX_GRAM = 4

# How much a typed syllable is worth against a keyword syllable (see `_agreement`).
SAME = 1.0  # exactly as written in the guide (accents included)
FOLDED = 0.8  # typed without accents, or the guide's word has none
WRONG_ACCENT = 0.25  # typed with other accents: "thế" against "thẻ"


class TopicError(ValueError):
    """A content file that is not a valid topic; the message names the file and the field."""


@dataclass(frozen=True)
class Category:
    key: str
    title: str
    emoji: str


@dataclass(frozen=True)
class Topic:
    key: str
    category: str
    title: str
    keywords: tuple[str, ...]
    answer: str
    steps: tuple[str, ...]
    related: tuple[str, ...]
    checked: str = ""


@dataclass(frozen=True)
class Match:
    topic: Topic
    score: float
    coverage: float = 1.0  # share of the message's meaningful syllables this guide matched
    # How firmly the guide's own words are there: the meaningful syllables (not stopwords) of
    # the longest keyword found whole, or of the longest piece of one less one ("xe" of "giấy
    # tờ xe" alone is 0, "cho trẻ" is 1).
    anchor: int = 0


@dataclass(frozen=True)
class MatchResult:
    """`confident` answers at once; otherwise `candidates` (up to 3) are offered. Under a
    confident answer, `also` is a close runner-up offered as one "or did you mean" button."""

    confident: Topic | None
    candidates: tuple[Topic, ...]
    also: tuple[Topic, ...] = ()


@dataclass(frozen=True)
class TopicStats:
    key: str
    title: str
    reads: int
    helpful: int
    unhelpful: int


@dataclass(frozen=True)
class Gram:
    """A keyword n-gram of one guide, as written (accents kept)."""

    words: tuple[str, ...]


@dataclass
class Library:
    categories: list[Category]
    topics: dict[str, Topic]
    words: Words
    # folded n-gram -> {topic key: the accented forms the guide uses}
    _grams: dict[str, dict[str, tuple[tuple[str, ...], ...]]] = field(default_factory=dict)
    _idf: dict[str, float] = field(default_factory=dict)
    _body: dict[str, tuple[str, ...]] = field(default_factory=dict)  # n-gram -> guides' texts
    _body_idf: dict[str, float] = field(default_factory=dict)
    _whole: dict[str, tuple[str, ...]] = field(default_factory=dict)  # folded phrase -> topics
    vocabulary: frozenset[str] = frozenset()
    pairs: frozenset[str] = frozenset()  # folded two-syllable n-grams of keywords and texts

    def in_category(self, key: str) -> list[Topic]:
        return [t for t in self.topics.values() if t.category == key]


def load_library(locale: str = "vi", root: Path = EXPLANATIONS_DIR) -> Library:
    base = root / locale
    if not base.is_dir():
        base = root / "vi"
    raw_categories = _read(base / "_categories.toml").get("category", [])
    if not isinstance(raw_categories, list):
        raise TopicError("_categories.toml: needs [[category]] tables")
    categories = [
        Category(key=str(c["key"]), title=str(c["title"]), emoji=str(c.get("emoji", "")))
        for c in raw_categories
    ]
    known_categories = {c.key for c in categories}
    topics: dict[str, Topic] = {}
    for path in sorted(base.glob("*.toml")):
        if path.name.startswith("_"):
            continue
        topic = _topic(path, _read(path))
        if topic.category not in known_categories:
            raise TopicError(f"{path.name}: category {topic.category!r} is not in _categories.toml")
        topics[topic.key] = topic
    for topic in topics.values():
        for other in topic.related:
            if other not in topics:
                raise TopicError(f"{topic.key}.toml: related topic {other!r} does not exist")
    library = Library(categories=categories, topics=topics, words=load_words(locale))
    _index(library)
    return library


def _read(path: Path) -> dict[str, object]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise TopicError(f"{path.name}: not valid TOML ({exc})") from None


def _topic(path: Path, data: dict[str, object]) -> Topic:
    def text(name: str) -> str:
        value = data.get(name)
        if not isinstance(value, str) or not value.strip():
            raise TopicError(f"{path.name}: {name} must be a non-empty string")
        return value.strip()

    def strings(name: str) -> tuple[str, ...]:
        value = data.get(name, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise TopicError(f"{path.name}: {name} must be a list of strings")
        return tuple(v.strip() for v in value if v.strip())

    key = text("key")
    if key != path.stem or len(key) > MAX_KEY_LENGTH or not re.fullmatch(r"[a-z0-9_]+", key):
        raise TopicError(f"{path.name}: key must equal the file name, a-z0-9_, ≤ 40 characters")
    keywords = strings("keywords")
    if not keywords:
        raise TopicError(f"{path.name}: keywords must not be empty")
    checked = text("checked")
    if not _CHECKED.fullmatch(checked):
        raise TopicError(f"{path.name}: checked must be the month the facts were checked, YYYY-MM")
    return Topic(
        key=key, category=text("category"), title=text("title"), keywords=keywords,
        answer=text("answer"), steps=strings("steps"), related=strings("related"),
        checked=checked,
    )


def _grams(tokens: list[Token], stop: Words) -> list[tuple[str, tuple[str, ...]]]:
    """The n-grams worth matching: (folded key, words as written); never stopwords alone."""
    texts = [t.text for t in tokens]
    return [(key, tuple(texts[i:j])) for key, i, j in _gram_spans(tokens, stop)]


def _gram_spans(tokens: list[Token], stop: Words) -> list[tuple[str, int, int]]:
    """(folded key, start, end) of each n-gram worth matching: none that starts and ends
    with a stopword (so none of stopwords alone). Each token's fold and stopword test is
    looked at once, not once per window: indexing the guides is part of every start."""
    folded = [t.folded for t in tokens]
    stops = [stop.is_stopword(t) for t in tokens]
    count = len(tokens)
    found: list[tuple[str, int, int]] = []
    for n in range(1, MAX_GRAM + 1):
        for i in range(count - n + 1):
            j = i + n
            if stops[i] and stops[j - 1]:
                continue
            found.append((" ".join(folded[i:j]), i, j))
    return found


def _index(library: Library) -> None:
    reader = Reader(library.words)
    grams: dict[str, dict[str, list[tuple[str, ...]]]] = {}
    whole: dict[str, list[str]] = {}
    vocabulary: set[str] = set()
    for topic in library.topics.values():
        for phrase in (*topic.keywords, _JINJA.sub(" ", topic.title)):
            tokens = reader.tokens(phrase, correct=False)
            if not tokens:
                continue
            vocabulary.update(t.folded for t in tokens)
            key = " ".join(t.folded for t in tokens)
            if topic.key not in whole.setdefault(key, []):
                whole[key].append(topic.key)
            found = _grams(tokens, library.words)
            if 1 < len(tokens) <= MAX_GRAM and key not in {g for g, _ in found}:
                # a keyword of stopwords only ("ở nhờ", "cỡ chữ" typed "co chu") was written
                # on purpose
                found.append((key, tuple(t.text for t in tokens)))
            for folded, written in found:
                forms = grams.setdefault(folded, {}).setdefault(topic.key, [])
                if written not in forms:
                    forms.append(written)
    # The guides' own texts (title, answer, steps) tell how common an n-gram is across guides:
    # "định danh điện tử" is in many answers, so it says little about which guide is meant.
    body: dict[str, list[str]] = {}
    for topic in library.topics.values():
        text = _JINJA.sub(" ", "\n".join((topic.title, topic.answer, *topic.steps)))
        for line in text.split("\n"):
            for sentence in re.split(r"[.,:;!?()•“”]", line):
                tokens = reader.tokens(sentence, correct=False)
                for folded, _i, _j in _gram_spans(tokens, library.words):
                    topics = body.setdefault(folded, [])
                    if topic.key not in topics:
                        topics.append(topic.key)
    n = len(library.topics)
    library._grams = {
        g: {k: tuple(v) for k, v in by_topic.items()} for g, by_topic in grams.items()
    }
    library._idf = {
        g: math.log(1 + n / len(set(by_topic) | set(body.get(g, ()))))
        for g, by_topic in grams.items()
    }
    library._body = {g: tuple(v) for g, v in body.items()}
    library._body_idf = {
        g: math.log(1 + n / len(set(v) | set(grams.get(g, {})))) for g, v in body.items()
    }
    library._whole = {k: tuple(v) for k, v in whole.items()}
    library.vocabulary = frozenset(vocabulary)
    library.pairs = frozenset(g for g in (*grams, *body) if g.count(" ") == 1)


def _agreement(typed: tuple[Token, ...], written: tuple[str, ...]) -> float:
    """How well typed syllables agree with a guide's n-gram, accents included."""
    worst = SAME
    for token, word in zip(typed, written, strict=True):
        if token.text == word:
            value = SAME
        elif token.accented and word != fold(word):
            value = WRONG_ACCENT  # both carry accents, and they differ
        else:
            value = FOLDED
        worst = min(worst, value * token.trust)
    return worst


@dataclass(frozen=True)
class Thresholds:
    """Chosen on the tuning set only (`python bench/bench_matcher.py --tune`)."""

    direct: float = 2.0  # the best guide's score needed to answer at once
    margin: float = 0.95  # ...and the runner-up must score at most this share of it
    weak: float = 1.0  # below this nothing fits: say so and offer the ward
    close: float = 0.5  # choices list only guides scoring at least this share of the best
    coverage: float = 0.0  # a direct answer must match this share of the meaningful words
    # A direct answer needs a keyword (or a piece of 2+ syllables) this firm (Match.anchor), unless
    # it scores `loose` or more: a few scattered pieces of keywords ("xe" of "giấy tờ xe", "cũ")
    # are not enough to answer "mua xe máy cũ ở đâu rẻ".
    anchor: int = 1
    loose: float = 2.5
    also: float = 0.5  # under a direct answer, offer the runner-up scoring this share of it


class Matcher:
    """Finds the guide a resident's words are about."""

    def __init__(
        self, library: Library, thresholds: Thresholds | None = None, *, length_weight: float = 0.0,
        exact_bonus: float = 2.0, body_weight: float = 0.2, fragment_weight: float = 0.5,
    ) -> None:
        self.library = library
        self.thresholds = thresholds or Thresholds()
        self.reader = Reader(library.words, library.vocabulary, library.pairs)
        self._length_weight = length_weight
        self._exact_bonus = exact_bonus
        self._body_weight = body_weight
        self._fragment_weight = fragment_weight

    def tokens(self, text: str) -> list[Token]:
        return self.reader.tokens(text)

    def scores(self, text: str) -> list[Match]:
        return self.scores_of(self.tokens(text))

    def scores_of(self, tokens: list[Token]) -> list[Match]:
        """Per guide: every keyword n-gram found in the message adds its weight, so a phrase
        found whole adds its syllables, its pairs, its triples: it outweighs the same syllables
        scattered. (Counting each syllable once, at its best n-gram, did worse on the tuning
        set: docs/understanding.md.)"""
        library = self.library
        totals: dict[str, float] = {}
        covered: dict[str, set[int]] = {}
        anchors: dict[str, int] = {}
        seen: set[str] = set()
        for n in range(1, MAX_GRAM + 1):
            for i in range(len(tokens) - n + 1):
                window = tuple(tokens[i : i + n])
                # A stopword alone says nothing; several may be a keyword typed without
                # accents: "mo het chu" is "mờ hết chữ" though "mo", "het", "chu" may be
                # "mợ", "hết", "chú".
                if n == 1 and library.words.is_stopword(window[0]):
                    continue
                key = " ".join(t.folded for t in window)
                if key in seen or (key not in library._grams and key not in library._body):
                    continue  # a repeated word counts once
                seen.add(key)
                idf = library._idf.get(key) or library._body_idf.get(key, 0.0)
                weight = idf * (1 + self._length_weight * (n - 1))
                in_keywords = library._grams.get(key, {})
                whole_of = library._whole.get(key, ())
                for topic_key, forms in in_keywords.items():
                    value = weight * max(_agreement(window, form) for form in forms)
                    firm = sum(not library.words.is_stopword(t) for t in window)
                    if topic_key not in whole_of:
                        # A piece of a keyword says less than a whole one: "sách" found
                        # only inside "chính sách" may be "sạch" in "rau sạch".
                        value *= self._fragment_weight
                        firm -= 1
                    anchors[topic_key] = max(anchors.get(topic_key, 0), firm)
                    totals[topic_key] = totals.get(topic_key, 0.0) + value
                    covered.setdefault(topic_key, set()).update(range(i, i + n))
                if self._body_weight and n > 1:
                    # Words of the guide's own answer count a little: residents often
                    # ask in the words the guide uses.
                    for topic_key in library._body.get(key, ()):
                        if topic_key not in in_keywords:
                            value = weight * FOLDED * self._body_weight
                            totals[topic_key] = totals.get(topic_key, 0.0) + value
        meaningful = {i for i, t in enumerate(tokens) if not library.words.is_stopword(t)}
        whole = " ".join(t.folded for t in tokens)
        for topic_key in library._whole.get(whole, ()):
            totals[topic_key] = totals.get(topic_key, 0.0) + self._exact_bonus
            anchors[topic_key] = max(anchors.get(topic_key, 0), len(meaningful))
        results = [
            Match(library.topics[k], round(v, 9),
                  len(covered.get(k, set()) & meaningful) / len(meaningful) if meaningful else 1.0,
                  anchors.get(k, 0))
            for k, v in totals.items() if v > 0
        ]
        results.sort(key=lambda m: (-m.score, m.topic.key))
        return results

    def best(self, text: str) -> Topic | None:
        found = self.scores(text)
        return found[0].topic if found else None

    def match(self, text: str) -> MatchResult:
        return self.decide(self.scores(text))

    def decide(self, found: list[Match]) -> MatchResult:
        """Answer when one guide is clearly meant, offer the close ones, or admit none fits."""
        limits = self.thresholds
        if not found or found[0].score < limits.weak:
            return MatchResult(confident=None, candidates=())
        top = found[0]
        second = found[1].score if len(found) > 1 else 0.0
        if (top.score >= limits.direct and second <= top.score * limits.margin
                and top.coverage >= limits.coverage
                and (top.anchor >= limits.anchor or top.score >= limits.loose)):
            also = tuple(m.topic for m in found[1:2] if m.score >= top.score * limits.also)
            return MatchResult(confident=top.topic, candidates=(), also=also)
        close = [m.topic for m in found[:3] if m.score >= top.score * limits.close]
        return MatchResult(confident=None, candidates=tuple(close))


class Explanations:
    """The library, the matcher, and the reading and voting counts in the database."""

    def __init__(self, db: Database, clock: Clock, library: Library) -> None:
        self._db = db
        self._clock = clock
        self.library = library
        self.matcher = Matcher(library)

    def topic(self, key: str) -> Topic | None:
        return self.library.topics.get(key)

    async def record_read(self, key: str) -> None:
        today: date = self._clock.now().date()
        # One upsert: "update, else insert" let two first reads of a topic on the same day
        # both insert on PostgreSQL, and the second update failed (bench_inbound).
        statement = insert_or_skip(self._db.engine.dialect.name, TopicRead).values(
            topic_key=key, day=today, count=1,
        ).on_conflict_do_update(
            index_elements=["topic_key", "day"], set_={"count": TopicRead.count + 1},
        )
        async with self._db.session() as session:
            await session.exec(statement)

    async def vote(self, key: str, member_id: int, *, helpful: bool) -> None:
        async with self._db.session() as session:
            row = (
                await session.exec(
                    select(TopicVote).where(
                        TopicVote.topic_key == key, TopicVote.member_id == member_id
                    )
                )
            ).first()
            if row is None:
                row = TopicVote(topic_key=key, member_id=member_id, helpful=helpful,
                                at=self._clock.now())
            else:
                row.helpful, row.at = helpful, self._clock.now()
            session.add(row)

    async def stats(self) -> list[TopicStats]:
        """Per topic: reads, 👍 and 👎, most read first."""
        async with self._db.session() as session:
            reads = dict(
                (
                    await session.exec(
                        select(TopicRead.topic_key, func.sum(TopicRead.count)).group_by(
                            col(TopicRead.topic_key)
                        )
                    )
                ).all()
            )
            votes: dict[tuple[str, bool], int] = {
                (key, helpful): count
                for key, helpful, count in (
                    await session.exec(
                        select(TopicVote.topic_key, TopicVote.helpful, func.count()).group_by(
                            col(TopicVote.topic_key), col(TopicVote.helpful)
                        )
                    )
                ).all()
            }
        result = [
            TopicStats(
                key=t.key, title=t.title, reads=int(reads.get(t.key) or 0),
                helpful=votes.get((t.key, True), 0), unhelpful=votes.get((t.key, False), 0),
            )
            for t in self.library.topics.values()
        ]
        result.sort(key=lambda s: (-s.reads, -s.unhelpful, s.key))
        return result
