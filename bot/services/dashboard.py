"""Read-only queries the dashboard and the operations endpoints need and no chat feature
does: the outbox backlog, open feedback across wards, the weekly progress trend, past
notices, and a group's current resident invite. All return plain data."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import col, func, select

from bot.db import Database
from bot.models import Delivery, Feedback, Invite, Notice, ProgressEvent, ResidentialGroup
from bot.roles import Role
from bot.services.feedback import OPEN_STATES


@dataclass(frozen=True)
class Backlog:
    """Deliveries waiting to go now, and how long the oldest of them has waited."""

    depth: int
    oldest_seconds: float


@dataclass(frozen=True)
class FeedbackLoad:
    open: int
    overdue: int


@dataclass(frozen=True)
class PastNotice:
    id: int
    text: str
    send_at: datetime
    state: str
    group_codes: list[str]


@dataclass(frozen=True)
class PosterInvite:
    code: str
    expires_at: datetime
    uses: int
    max_uses: int | None


def _aware(value: datetime, like: datetime) -> datetime:
    """SQLite hands back naive datetimes (stored as UTC); compare them as aware ones."""
    return value if value.tzinfo is not None else value.replace(tzinfo=like.tzinfo)


async def outbox_backlog(db: Database, now: datetime) -> Backlog:
    async with db.session() as session:
        depth, oldest = (
            await session.exec(
                select(func.count(), func.min(Delivery.not_before)).where(
                    Delivery.state == "pending", col(Delivery.not_before) <= now
                )
            )
        ).one()
    age = (now - _aware(oldest, now)).total_seconds() if oldest is not None else 0.0
    return Backlog(int(depth), max(0.0, age))


async def feedback_load(db: Database, now: datetime) -> FeedbackLoad:
    async with db.session() as session:
        base = select(func.count()).select_from(Feedback).where(
            col(Feedback.state).in_(OPEN_STATES)
        )
        open_ = (await session.exec(base)).one()
        overdue = (await session.exec(base.where(col(Feedback.due_at) < now))).one()
    return FeedbackLoad(int(open_), int(overdue))


async def cumulative_units(
    db: Database, group_ids: Sequence[int], step_keys: Sequence[str], ends: Sequence[datetime]
) -> list[int]:
    """Units done at each moment in `ends`, summed from the append-only progress events."""
    if not group_ids or not step_keys:
        return [0 for _ in ends]
    delta = col(ProgressEvent.after_units) - col(ProgressEvent.before_units)
    result = []
    async with db.session() as session:
        for end in ends:
            total = (
                await session.exec(
                    select(func.coalesce(func.sum(delta), 0)).where(
                        col(ProgressEvent.group_id).in_(group_ids),
                        col(ProgressEvent.step_key).in_(step_keys),
                        col(ProgressEvent.at) <= end,
                    )
                )
            ).one()
            result.append(max(0, int(total)))
    return result


async def past_notices(
    db: Database, ward_id: int, now: datetime, *, group_ids: set[int] | None, limit: int = 30
) -> list[PastNotice]:
    """Notices already due (sent, sending or cancelled), newest first; `group_ids` keeps a
    leader to notices that reached at least one of his groups."""
    async with db.session() as session:
        rows = (
            await session.exec(
                select(Notice)
                .where(Notice.ward_id == ward_id,
                       sa.or_(col(Notice.send_at) <= now, col(Notice.state) != "scheduled"))
                .order_by(col(Notice.send_at).desc())
                .limit(limit * 4 if group_ids is not None else limit)
            )
        ).all()
        codes = dict(
            (await session.exec(
                select(ResidentialGroup.id, ResidentialGroup.code)
                .where(ResidentialGroup.ward_id == ward_id)
            )).all()
        )
    result = []
    for row in rows:
        targets = {int(g) for g in row.group_ids}
        if group_ids is not None and not targets & group_ids:
            continue
        assert row.id is not None
        result.append(PastNotice(
            row.id, row.text, row.send_at, row.state,
            sorted(codes.get(g, "?") for g in targets),
        ))
    return result[:limit]


async def resident_invite(db: Database, group_id: int, now: datetime) -> PosterInvite | None:
    """The newest resident invite of a group that still works (for its poster)."""
    async with db.session() as session:
        rows = (
            await session.exec(
                select(Invite)
                .where(Invite.group_id == group_id, Invite.role == Role.RESIDENT.value,
                       col(Invite.revoked).is_(False), col(Invite.expires_at) > now)
                .order_by(col(Invite.id).desc())
                .limit(5)
            )
        ).all()
    for row in rows:
        if row.max_uses is None or row.uses < row.max_uses:
            return PosterInvite(row.code, row.expires_at, row.uses, row.max_uses)
    return None
