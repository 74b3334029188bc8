"""Read-only queries the dashboard and the operations endpoints need and no chat feature
does: the outbox backlog, open feedback across wards, the weekly progress trend, past
notices, and a group's current resident invite; and how a ward of 300 groups is shown
(the groups table searched, sorted and paged; the chart's lowest and highest groups).
All return plain data."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import col, func, select

from bot.db import Database
from bot.models import Delivery, Feedback, Invite, Notice, ProgressEvent, ResidentialGroup
from bot.roles import Role
from bot.services.explanations import fold
from bot.services.feedback import OPEN_STATES
from bot.services.progress import GroupProgress, StepCount

TABLE_PAGE = 25  # groups per page of the table
CHART_EACH_END = 10  # past twice this many groups, the chart shows the 10 lowest and highest
ORDERS = ("thap", "cao", "ma")  # lowest share first (the default), highest first, by code


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
    sums = [func.coalesce(func.sum(sa.case((col(ProgressEvent.at) <= end, delta), else_=0)), 0)
            for end in ends]  # one pass over the events for every moment
    async with db.session() as session:
        totals = (
            await session.exec(
                select(*sums).where(
                    col(ProgressEvent.group_id).in_(group_ids),
                    col(ProgressEvent.step_key).in_(step_keys),
                    col(ProgressEvent.at) <= max(ends),
                )
            )
        ).one()
    return [max(0, int(total)) for total in totals]


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


async def delivery_counts(
    db: Database, kind: str, ref_ids: Sequence[int]
) -> dict[int, dict[str, int]]:
    """Per notice (or poll…): its delivery rows by state, in one query for the whole list."""
    found: dict[int, dict[str, int]] = {ref: {} for ref in ref_ids}
    if not ref_ids:
        return found
    async with db.session() as session:
        rows = (
            await session.exec(
                select(Delivery.ref_id, Delivery.state, func.count())
                .where(Delivery.kind == kind, col(Delivery.ref_id).in_(list(ref_ids)))
                .group_by(col(Delivery.ref_id), col(Delivery.state))
            )
        ).all()
    for ref, state, n in rows:
        if ref is not None:
            found[ref][state] = int(n)
    return found


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


# --- a ward of 300 groups on one page ----------------------------------------------------------
@dataclass(frozen=True)
class GroupRow:
    group_id: int
    code: str
    name: str
    count: StepCount
    chats: int


@dataclass(frozen=True)
class GroupTable:
    """One page of the groups table, and how it was asked for."""

    rows: tuple[GroupRow, ...]
    page: int
    pages: int
    matched: int  # groups the search found (all of them without a search)
    total: int  # groups the viewer may see
    search: str
    order: str


def group_table(
    groups: Sequence[GroupProgress], step_key: str, chats: Mapping[int, Sequence[object]],
    *, search: str = "", order: str = "thap", page: int = 1, per_page: int = TABLE_PAGE,
) -> GroupTable:
    """Groups matching `search` (code or name, with or without diacritics), sorted by the
    step's share — lowest first by default, since those need help — or highest first, or
    by code; then one page of them (a page past the end shows the last one)."""
    order = order if order in ORDERS else ORDERS[0]
    wanted = fold(search)
    found = [g for g in groups if not wanted or wanted in fold(f"{g.code} {g.name}")]

    def share(g: GroupProgress) -> float:
        count = g.steps.get(step_key)
        return count.ratio if count else 0.0

    if order == "ma":
        found.sort(key=lambda g: g.code)
    else:
        sign = 1 if order == "thap" else -1
        found.sort(key=lambda g: (sign * share(g), g.code))
    pages = max(1, -(-len(found) // per_page))
    page = min(max(1, page), pages)
    rows = tuple(
        GroupRow(g.group_id, g.code, g.name, g.steps.get(step_key, StepCount(step_key, 0, 0, 0)),
                 len(chats.get(g.group_id, ())))
        for g in found[(page - 1) * per_page : page * per_page]
    )
    return GroupTable(rows, page, pages, len(found), len(groups), search.strip(), order)


@dataclass(frozen=True)
class ChartEnds:
    """What the bar chart shows: every group (best first) when they fit, else the highest
    and the lowest ones, each list starting from its end."""

    highest: tuple[tuple[GroupProgress, StepCount], ...]
    lowest: tuple[tuple[GroupProgress, StepCount], ...]
    total: int

    @property
    def all_shown(self) -> bool:
        return not self.lowest


def chart_ends(
    ranked: Sequence[tuple[GroupProgress, StepCount]], each: int = CHART_EACH_END
) -> ChartEnds:
    """`ranked` is best first (`WardProgress.ranked`); the lowest are ordered as the
    table's default order (lowest share first, then by code)."""
    if len(ranked) <= 2 * each:
        return ChartEnds(tuple(ranked), (), len(ranked))
    lowest = sorted(ranked, key=lambda p: (p[1].ratio, p[1].done, p[0].code))[:each]
    return ChartEnds(tuple(ranked[:each]), tuple(lowest), len(ranked))
