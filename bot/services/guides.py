"""Guides in the group chats: the posts (by the share button and by series), the reads
they bring per group, and short numbers for platforms without links.

A group post carries a way to open the guide's steps in the person's private chat: a
Telegram deep link `g_<key>_<group id>` or, on Zalo, "hd <number>". Opening it counts one
read per person, guide and group — the "lượt xem" ward reports use. Series, which post
guides on a schedule, are in `bot.services.series`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import col, func, select

from bot.clock import Clock
from bot.core import is_number
from bot.db import Database
from bot.models import Delivery, GuideNumber, GuidePost, GuideRead, ResidentialGroup, TopicVote
from bot.services.access import Identity

LINK_PREFIX = "g_"


class GuideError(Exception):
    def __init__(self, reason: str, **details: Any) -> None:
        super().__init__(reason)
        self.reason = reason
        self.details = details


@dataclass(frozen=True)
class PostTarget:
    group_id: int
    platform: str
    chat_id: str
    dedupe: str


@dataclass(frozen=True)
class GroupReads:
    group_id: int
    code: str
    reads: int


@dataclass(frozen=True)
class GuideStats:
    """One guide in one ward: posts delivered to group chats, people who opened its steps
    from them, 👍/👎, and the reads of each group it was posted to (0: nobody yet)."""

    key: str
    posts: int
    reads: int
    helpful: int
    unhelpful: int
    groups: list[GroupReads]

    @property
    def silent(self) -> list[str]:
        return [g.code for g in self.groups if not g.reads]


def link_payload(key: str, group_id: int | None = None) -> str:
    """The deep-link start payload; within Telegram's 64 characters of [A-Za-z0-9_-]
    (keys are a-z0-9_ and at most 40 long)."""
    return f"{LINK_PREFIX}{key}" + (f"_{group_id}" if group_id is not None else "")


def parse_link(payload: str, known: set[str]) -> tuple[str, int | None] | None:
    """`g_<key>[_<group id>]` → (key, group id); None if not a guide link or unknown."""
    if not payload.startswith(LINK_PREFIX):
        return None
    rest = payload[len(LINK_PREFIX):]
    key, _, group = rest.rpartition("_")
    if key in known and is_number(group):
        return key, int(group)
    if rest in known:
        return rest, None
    return None


def parse_code(text: str) -> int | str | None:
    """"hd 3" (or "HD3", "/hd 3") → 3; "hd vneid_what" → "vneid_what"; else None."""
    match = re.fullmatch(r"/?hd\s*([a-z0-9_]{1,40})", text.strip().lower())
    if match is None:
        return None
    value = match.group(1)
    return int(value) if is_number(value) else value


class Guides:
    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    # --- numbers for "hd 3" ---------------------------------------------------------------
    async def number_of(self, key: str) -> int:
        """The guide's short number, given on first use and never changed."""
        for _ in range(3):
            async with self._db.session() as session:
                found = (await session.exec(
                    select(GuideNumber.number).where(GuideNumber.topic_key == key))).first()
                if found is not None:
                    return int(found)
            try:
                async with self._db.session() as session:
                    row = GuideNumber(topic_key=key)
                    session.add(row)
                    await session.flush()
                    assert row.number is not None
                    return row.number
            except IntegrityError:
                continue  # someone numbered it at the same moment: read theirs
        raise RuntimeError(f"could not number guide {key}")

    async def key_of(self, number: int) -> str | None:
        async with self._db.session() as session:
            row = await session.get(GuideNumber, number)
            return row.topic_key if row else None

    # --- posts and reads ------------------------------------------------------------------
    async def record_posts(self, ward_id: int, key: str, source: str, source_id: int,
                           targets: Sequence[PostTarget]) -> None:
        now = self._clock.now()
        async with self._db.session() as session:
            known = set((await session.exec(select(GuidePost.dedupe).where(
                col(GuidePost.dedupe).in_([t.dedupe for t in targets])))).all())
            for t in targets:
                if t.dedupe not in known:
                    session.add(GuidePost(
                        ward_id=ward_id, topic_key=key, group_id=t.group_id,
                        platform=t.platform, chat_id=t.chat_id, source=source,
                        source_id=source_id, dedupe=t.dedupe[:160], created_at=now))

    async def record_read(self, identity: Identity, key: str, group_id: int | None,
                          via: str) -> GroupReads | None:
        """Count one read of `key` for the group of the post it came from — a group the
        guide was really posted to — or else for the reader's own group. Returns the group
        it counted for (None: not counted for a group)."""
        own = [g.group_id for g in identity.grants if g.group_id is not None]
        candidates = ([group_id] if group_id is not None else []) + own
        async with self._db.session() as session:
            posted = set((await session.exec(
                select(GuidePost.group_id).where(
                    GuidePost.topic_key == key, col(GuidePost.group_id).in_(candidates))
                .distinct())).all()) if candidates else set()
            chosen = group_id if group_id in posted else None
            if chosen is None:
                chosen = next((g for g in own if g in posted), own[0] if own else None)
            ward_id: int | None = None
            code = ""
            if chosen is not None:
                group = await session.get(ResidentialGroup, chosen)
                if group is None:
                    chosen = None
                else:
                    ward_id, code = group.ward_id, group.code
            query = select(GuideRead.id).where(
                GuideRead.topic_key == key, GuideRead.member_id == identity.member_id,
                GuideRead.group_id == chosen if chosen is not None
                else col(GuideRead.group_id).is_(None))
            if (await session.exec(query)).first() is None:
                try:
                    async with session.begin_nested():
                        session.add(GuideRead(
                            ward_id=ward_id, group_id=chosen, topic_key=key,
                            member_id=identity.member_id, via=via, at=self._clock.now()))
                except IntegrityError:
                    pass  # the same person opened it twice at once: one read
        return GroupReads(chosen, code, 1) if chosen is not None else None

    async def stats(self, ward_id: int) -> list[GuideStats]:
        """Per guide posted in the ward: posts sent, reads, 👍/👎, reads per group."""
        async with self._db.session() as session:
            sent = dict((await session.exec(
                select(GuidePost.topic_key, func.count())
                .join(Delivery, col(Delivery.dedupe) == col(GuidePost.dedupe))
                .where(GuidePost.ward_id == ward_id, Delivery.state == "sent")
                .group_by(col(GuidePost.topic_key)))).all())
            posted = (await session.exec(
                select(GuidePost.topic_key, GuidePost.group_id, ResidentialGroup.code)
                .join(ResidentialGroup, col(ResidentialGroup.id) == col(GuidePost.group_id))
                .where(GuidePost.ward_id == ward_id).distinct())).all()
            reads = {(k, g): int(n) for k, g, n in (await session.exec(
                select(GuideRead.topic_key, GuideRead.group_id, func.count())
                .where(GuideRead.ward_id == ward_id)
                .group_by(col(GuideRead.topic_key), col(GuideRead.group_id)))).all()}
            keys = {k for k, _g, _c in posted}
            votes: dict[tuple[str, bool], int] = {
                (k, bool(h)): int(n) for k, h, n in (await session.exec(
                    select(TopicVote.topic_key, TopicVote.helpful, func.count())
                    .where(col(TopicVote.topic_key).in_(keys))
                    .group_by(col(TopicVote.topic_key), col(TopicVote.helpful)))).all()}
        totals: dict[str, int] = {}
        for (key, _group), n in reads.items():
            totals[key] = totals.get(key, 0) + n
        groups: dict[str, dict[int, str]] = {}
        for key, group_id, code in posted:
            groups.setdefault(key, {})[int(group_id)] = code
        result = []
        for key, codes in groups.items():
            per_group = sorted(
                (GroupReads(g, c, reads.get((key, g), 0)) for g, c in codes.items()),
                key=lambda r: (-r.reads, r.code))
            result.append(GuideStats(
                key=key, posts=int(sent.get(key, 0)),
                reads=totals.get(key, 0),
                helpful=votes.get((key, True), 0), unhelpful=votes.get((key, False), 0),
                groups=per_group))
        result.sort(key=lambda s: (-s.reads, -s.posts, s.key))
        return result
