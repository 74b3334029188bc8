"""Polls with buttons (so they work on every platform, not only Telegram's native polls):
one vote per person, changeable until the poll closes; results per group and for the ward."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from bot.clock import Clock
from bot.db import Database
from bot.models import Poll, PollVote, ResidentialGroup
from bot.services import audit
from bot.services.access import Identity
from bot.services.errors import ServiceError

MIN_OPTIONS, MAX_OPTIONS = 2, 10
MAX_OPTION_LENGTH = 60


@dataclass(frozen=True)
class PollInfo:
    id: int
    ward_id: int
    author_member_id: int
    question: str
    options: list[str]
    group_ids: list[int]
    closes_at: datetime | None
    closed_at: datetime | None
    post_results: bool

    @property
    def closed(self) -> bool:
        return self.closed_at is not None


@dataclass(frozen=True)
class Results:
    poll: PollInfo
    ward: list[int]
    by_group: dict[str, list[int]] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.ward)

    def shares(self) -> list[tuple[str, int, float]]:
        """(option, votes, share of all votes) for each option, in the poll's order."""
        total = self.total
        return [(option, n, n / total if total else 0.0)
                for option, n in zip(self.poll.options, self.ward, strict=True)]


def _info(row: Poll) -> PollInfo:
    assert row.id is not None
    return PollInfo(row.id, row.ward_id, row.author_member_id, row.question,
                    [str(o) for o in row.options], [int(g) for g in row.group_ids],
                    row.closes_at, row.closed_at, row.post_results)


def clean_options(lines: Sequence[str]) -> list[str]:
    options = []
    for line in lines:
        text = " ".join(line.strip().lstrip("-•*").split())
        if text and text not in options:
            options.append(text)
    if not MIN_OPTIONS <= len(options) <= MAX_OPTIONS:
        raise ServiceError("option_count", count=len(options))
    if any(len(o) > MAX_OPTION_LENGTH for o in options):
        raise ServiceError("option_too_long", limit=MAX_OPTION_LENGTH)
    return options


class Polls:
    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    async def create(
        self, identity: Identity, ward_id: int, *, question: str, options: Sequence[str],
        group_ids: Sequence[int], closes_at: datetime | None, post_results: bool,
    ) -> PollInfo:
        question = " ".join(question.split())
        if not question or len(question) > 300:
            raise ServiceError("bad_question")
        if closes_at is not None and closes_at <= self._clock.now():
            raise ServiceError("past")
        async with self._db.session() as session:
            row = Poll(ward_id=ward_id, author_member_id=identity.member_id, question=question,
                       options=list(options), group_ids=list(group_ids), closes_at=closes_at,
                       post_results=post_results, created_at=self._clock.now())
            session.add(row)
            await session.flush()
            audit.record(session, self._clock, action="poll.create",
                         actor_member_id=identity.member_id, ward_id=ward_id,
                         target=f"poll:{row.id}", question=question)
            return _info(row)

    async def get(self, poll_id: int) -> PollInfo | None:
        async with self._db.session() as session:
            row = await session.get(Poll, poll_id)
            return _info(row) if row else None

    async def vote(
        self, member_id: int, poll_id: int, option: int, group_id: int | None
    ) -> tuple[PollInfo, str]:
        """Returns the poll and what happened: "new", "changed" or "same"."""
        now = self._clock.now()
        async with self._db.session() as session:
            row = await session.get(Poll, poll_id)
            if row is None:
                raise ServiceError("unknown")
            info = _info(row)
            if info.closed or (info.closes_at is not None and info.closes_at <= now):
                raise ServiceError("closed")
            if not 0 <= option < len(info.options):
                raise ServiceError("unknown")
            vote = (await session.exec(select(PollVote).where(
                PollVote.poll_id == poll_id, PollVote.member_id == member_id))).first()
            if vote is None:
                session.add(PollVote(poll_id=poll_id, member_id=member_id, option=option,
                                     group_id=group_id, at=now))
                try:
                    await session.flush()
                except IntegrityError:  # a double press raced itself: the first one counts
                    raise ServiceError("try_again") from None
                return info, "new"
            if vote.option == option:
                return info, "same"
            vote.option, vote.at = option, now
            session.add(vote)
            return info, "changed"

    async def close(self, poll_id: int) -> PollInfo | None:
        """Close once; returns the poll for the caller that closed it (None otherwise)."""
        async with self._db.session() as session:
            result = await session.exec(
                sa.update(Poll).where(col(Poll.id) == poll_id, col(Poll.closed_at).is_(None))
                .values(closed_at=self._clock.now())
            )
            if result.rowcount != 1:
                return None
            row = await session.get(Poll, poll_id)
            return _info(row) if row else None

    async def due_to_close(self) -> list[int]:
        now = self._clock.now()
        async with self._db.session() as session:
            rows = (await session.exec(select(Poll.id).where(
                col(Poll.closed_at).is_(None), col(Poll.closes_at).is_not(None),
                col(Poll.closes_at) <= now))).all()
            return [int(r) for r in rows if r is not None]

    async def mine(self, identity: Identity, ward_id: int) -> list[PollInfo]:
        async with self._db.session() as session:
            rows = (await session.exec(select(Poll).where(
                Poll.ward_id == ward_id, Poll.author_member_id == identity.member_id)
                .order_by(col(Poll.id).desc()).limit(10))).all()
            return [_info(r) for r in rows]

    async def results(self, poll_id: int) -> Results:
        async with self._db.session() as session:
            row = await session.get(Poll, poll_id)
            if row is None:
                raise ServiceError("unknown")
            info = _info(row)
            counts = (await session.exec(
                select(PollVote.group_id, PollVote.option, sa.func.count())
                .where(PollVote.poll_id == poll_id)
                .group_by(col(PollVote.group_id), col(PollVote.option))
            )).all()
            ids = {g for g, _o, _n in counts if g is not None}
            codes = dict((await session.exec(
                select(ResidentialGroup.id, ResidentialGroup.code)
                .where(col(ResidentialGroup.id).in_(ids))
            )).all()) if ids else {}
        ward = [0] * len(info.options)
        by_group: dict[str, list[int]] = {}
        for group_id, option, n in counts:
            if 0 <= option < len(ward):
                ward[option] += int(n)
                code = codes.get(group_id, "") if group_id is not None else ""
                by_group.setdefault(code, [0] * len(ward))[option] += int(n)
        return Results(info, ward, dict(sorted(by_group.items())))
