"""The explanation library: topics from `messages/explanations/`, a matcher for what residents
type, and the counts of reads and 👍/👎 that tell coordinators what confuses people.

Residents type without diacritics, with typos, in long sentences. The matcher therefore folds
text to lowercase ASCII, corrects each word to the nearest word the library knows (edit
distance 1-2, by `rapidfuzz`), and scores topics by the keyword phrases found, rarer words
counting more (inverse document frequency). No model download, deterministic, fast.
"""

from __future__ import annotations

import math
import re
import tomllib
import unicodedata
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import sqlalchemy as sa
from rapidfuzz.distance import OSA  # edit distance where swapping two letters costs one
from sqlmodel import col, func, select

from bot.clock import Clock
from bot.db import Database
from bot.models import TopicRead, TopicVote

EXPLANATIONS_DIR = Path(__file__).resolve().parent.parent.parent / "messages" / "explanations"
_JINJA = re.compile(r"{[{%].*?[%}]}")
MAX_KEY_LENGTH = 40
EXACT_BONUS = 2.0  # "faq:v:<key>:1" must fit Telegram's 64-byte button payload

# Words that carry no meaning for matching (greetings, particles, pronouns). Folded words
# that are also content words (dang ky, the, cai dat, bo nho, co chu) must stay out.
STOPWORDS = frozenset(
    (
        "a", "ah", "oi", "ba", "bac", "chau", "chi", "co", "cho", "con", "cua", "da",
        "de", "di", "do", "duoc", "em", "giup", "gi", "hay", "hoi", "hom", "khong", "la",
        "lam", "len", "minh", "mot", "nay", "nao", "nhe", "nhi", "nhung", "o", "oi", "ong",
        "qua", "ra", "roi", "sao", "thi", "toi", "tu", "va", "vay", "vao", "voi", "xin",
        "ve", "nua", "nha", "may", "ay", "kia",
    )
)


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


@dataclass(frozen=True)
class Match:
    topic: Topic
    score: float


@dataclass(frozen=True)
class MatchResult:
    """`confident` answers at once; otherwise `candidates` (up to 3) are offered."""

    confident: Topic | None
    candidates: tuple[Topic, ...]


@dataclass(frozen=True)
class TopicStats:
    key: str
    title: str
    reads: int
    helpful: int
    unhelpful: int


@dataclass
class Library:
    categories: list[Category]
    topics: dict[str, Topic]
    _phrases: dict[str, list[tuple[tuple[str, ...], float]]] = field(default_factory=dict)
    _vocab: set[str] = field(default_factory=set)
    _idf: dict[str, float] = field(default_factory=dict)
    _vocab_of: dict[str, frozenset[str]] = field(default_factory=dict)

    def in_category(self, key: str) -> list[Topic]:
        return [t for t in self.topics.values() if t.category == key]


def fold(text: str) -> str:
    """Lowercase ASCII without diacritics or punctuation, so "dang ky" meets its accented form."""
    text = text.lower().replace("\u0111", "d")  # d with stroke has no NFD decomposition
    text = unicodedata.normalize("NFD", text)
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return " ".join(re.findall(r"[a-z0-9]+", text))


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
    library = Library(categories=categories, topics=topics)
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
    return Topic(
        key=key, category=text("category"), title=text("title"), keywords=keywords,
        answer=text("answer"), steps=strings("steps"), related=strings("related"),
    )


def _index(library: Library) -> None:
    document_tokens: dict[str, set[str]] = {}
    for topic in library.topics.values():
        phrases: list[tuple[str, ...]] = []
        for keyword in (*topic.keywords, _JINJA.sub(" ", topic.title)):
            tokens = tuple(t for t in fold(keyword).split() if t not in STOPWORDS)
            if tokens:
                phrases.append(tokens)
        document_tokens[topic.key] = {t for phrase in phrases for t in phrase}
        library._vocab_of[topic.key] = frozenset(document_tokens[topic.key])
        library._phrases[topic.key] = [(phrase, 1.0) for phrase in dict.fromkeys(phrases)]
    n = len(library.topics)
    df: dict[str, int] = defaultdict(int)
    for words in document_tokens.values():
        for token in words:
            df[token] += 1
    library._idf = {t: math.log(1 + n / c) for t, c in df.items()}
    library._vocab = set(df)


class Matcher:
    """Finds the topic a resident's words are about."""

    def __init__(self, library: Library, *, confident: float = 2.2, weak: float = 1.6) -> None:
        self.library = library
        self._confident = confident
        self._weak = weak
        self._by_length: dict[int, list[str]] = defaultdict(list)
        for word in library._vocab:
            self._by_length[len(word)].append(word)

    def correct(self, token: str) -> tuple[str, float]:
        """The library's word nearest to a typed word, and how much to trust the guess."""
        if token in self.library._vocab or token.isdigit() or len(token) < 5:
            # Vietnamese syllables are short: "troi" is one letter from "tro" but a different
            # word, so only longer words (mostly brand names and loanwords) are corrected.
            return token, 1.0
        limit = 1 if len(token) < 8 else 2
        best, best_distance = token, limit + 1
        for length in range(len(token) - limit, len(token) + limit + 1):
            for word in self._by_length.get(length, ()):
                distance = OSA.distance(token, word, score_cutoff=limit)
                if distance < best_distance:
                    best, best_distance = word, distance
        if best_distance > limit:
            return token, 0.0
        return best, 0.75 if best_distance == 1 else 0.6

    def scores(self, text: str) -> list[Match]:
        raw = [t for t in fold(text).split() if t not in STOPWORDS]
        corrected = [self.correct(t) for t in raw]
        tokens = [t for t, _ in corrected]
        trust = {t: w for t, w in corrected}
        joined = f" {' '.join(tokens)} "
        token_set = set(tokens)
        results: list[Match] = []
        whole = tuple(tokens)
        for key, phrases in self.library._phrases.items():
            # Each typed word counts once per topic: fully when it sits in a keyword phrase
            # found whole in the text, less when it only appears somewhere in the topic.
            in_phrase: set[str] = set()
            exact = False
            for phrase, _weight in phrases:
                if phrase == whole:
                    exact = True
                if len(phrase) > 1 and f" {' '.join(phrase)} " in joined:
                    in_phrase.update(phrase)
            vocabulary = self.library._vocab_of[key]
            score = 0.0
            for token in token_set:
                factor = 1.3 if token in in_phrase else 0.6 if token in vocabulary else 0.0
                score += self.library._idf.get(token, 0.0) * trust.get(token, 1.0) * factor
            if exact:
                score += EXACT_BONUS  # the whole question is one of this topic's own phrases
            if score > 0:
                results.append(Match(self.library.topics[key], score))
        results.sort(key=lambda m: (-m.score, m.topic.key))
        return results

    def best(self, text: str) -> Topic | None:
        found = self.scores(text)
        return found[0].topic if found else None

    def match(self, text: str) -> MatchResult:
        found = self.scores(text)
        if not found or found[0].score < self._weak:
            return MatchResult(confident=None, candidates=())
        top = found[0]
        second = found[1].score if len(found) > 1 else 0.0
        if top.score >= self._confident and top.score >= second * 1.35:
            return MatchResult(confident=top.topic, candidates=())
        return MatchResult(confident=None, candidates=tuple(m.topic for m in found[:3]))


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
        async with self._db.session() as session:
            updated = await session.exec(
                sa.update(TopicRead)
                .where(col(TopicRead.topic_key) == key, col(TopicRead.day) == today)
                .values(count=col(TopicRead.count) + 1)
            )
            if not updated.rowcount:
                session.add(TopicRead(topic_key=key, day=today, count=1))

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
