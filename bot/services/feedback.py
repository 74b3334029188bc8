"""Residents' feedback tickets: filing (masked, rate-limited, merged), the life cycle staff
drive (new → acknowledged → in progress → resolved / rejected), nudges for overdue tickets,
and the monthly figures. Anonymous reporters stay unknown to staff but still get replies."""

from __future__ import annotations

import hashlib
import statistics
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.clock import Clock
from bot.config import FEEDBACK_CATEGORIES, FeedbackSection
from bot.core import GROUP_ROLES, Role, is_number
from bot.db import Database
from bot.models import (
    AuditLog,
    ConversationState,
    Feedback,
    FeedbackEvent,
    HouseholdResident,
    Member,
    ResidentialGroup,
    RoleGrant,
    TopicVote,
    Ward,
)
from bot.services import audit
from bot.services.access import Identity
from bot.services.conversations import MENU_SUFFIX
from bot.services.explanations import fold
from bot.services.privacy import mask_contacts, mask_national_ids

# "reopened": the reporter said a resolved problem is not fixed; staff handle it as new.
OPEN_STATES = ("new", "acknowledged", "in_progress", "reopened")
FINAL_STATES = ("resolved", "rejected")
MAX_TEXT = 2000
PAGE_SIZE = 8

# Staff action → (allowed from-states, resulting state; None keeps the state).
TRANSITIONS: dict[str, tuple[tuple[str, ...], str | None]] = {
    "acknowledge": (("new", "reopened"), "acknowledged"),
    "start": (("new", "acknowledged", "reopened"), "in_progress"),
    "reply": (OPEN_STATES, None),
    "resolve": (OPEN_STATES, "resolved"),
    "reject": (OPEN_STATES, "rejected"),
}
NEEDS_MESSAGE = ("reply", "resolve", "reject")


class FeedbackError(Exception):
    def __init__(self, reason: str, **details: Any) -> None:
        super().__init__(reason)
        self.reason = reason
        self.details = details


@dataclass(frozen=True)
class Reporter:
    platform: str
    user_id: str


@dataclass(frozen=True)
class EventView:
    at: datetime
    action: str
    to_state: str
    message: str


@dataclass(frozen=True)
class TicketView:
    number: int
    kind: str
    category: str
    text: str
    location: str
    photos: int
    state: str
    anonymous: bool
    reporter_name: str
    group_code: str
    created_at: datetime
    due_at: datetime
    overdue: bool
    assignee_name: str = ""
    events: tuple[EventView, ...] = ()
    resolved_at: datetime | None = None
    fixed_answer: str = ""  # "", "fixed" or "not_fixed": the reporter's own verdict
    satisfaction: int | None = None
    may_reopen: bool = False  # resolved recently enough for the reporter to say "not fixed"

    @property
    def ticket(self) -> str:
        return f"PA-{self.number}"


@dataclass(frozen=True)
class Filed:
    ticket: TicketView
    merged: bool


@dataclass(frozen=True)
class Changed:
    ticket: TicketView
    reporter: Reporter | None
    action: str
    message: str
    also_tell: Reporter | None = None


@dataclass(frozen=True)
class Nudge:
    ticket: TicketView
    recipients: tuple[Reporter, ...]


@dataclass(frozen=True)
class Filters:
    group: str = ""
    category: str = ""
    state: str = ""
    overdue: bool = False


@dataclass(frozen=True)
class Page:
    items: tuple[TicketView, ...]
    page: int
    pages: int
    total: int


@dataclass(frozen=True)
class Summary:
    received: int
    resolved: int
    median_hours: float | None
    by_category: dict[str, tuple[int, int]] = field(default_factory=dict)
    by_group: dict[str, tuple[int, int]] = field(default_factory=dict)
    # Closing the loop: of the tickets resolved, how many reporters confirmed the fix,
    # how many reopened, and the median 1-5 satisfaction; per category and group
    # (confirmed, reopened).
    confirmed: int = 0
    reopened: int = 0
    satisfaction: float | None = None
    loop_by_category: dict[str, tuple[int, int]] = field(default_factory=dict)
    loop_by_group: dict[str, tuple[int, int]] = field(default_factory=dict)


@dataclass(frozen=True)
class FixedQuestion:
    """A resolved ticket whose reporter is now asked whether the problem is really fixed."""

    ticket: TicketView
    reporter: Reporter
    ward_id: int


@dataclass(frozen=True)
class Reopened:
    ticket: TicketView
    tell: tuple[Reporter, ...]


@dataclass(frozen=True)
class Counts:
    open: int
    overdue: int
    new_today: int


@dataclass(frozen=True)
class StaffMember:
    member_id: int
    name: str


def parse_ticket(text: str) -> int | None:
    """"PA-12", "pa12", "12" → 12."""
    cleaned = text.strip().upper().removeprefix("PA").lstrip("-# ")
    return int(cleaned) if is_number(cleaned) else None


def _hash(text: str) -> str:
    return hashlib.sha256(fold(text).encode()).hexdigest()


class Feedbacks:
    def __init__(self, db: Database, clock: Clock, config: FeedbackSection) -> None:
        self._db = db
        self._clock = clock
        self._config = config

    # --- filing ----------------------------------------------------------------------------
    async def submit(
        self,
        identity: Identity,
        *,
        text: str,
        category: str = "other",
        kind: str = "report",
        location: str = "",
        photos: list[dict[str, str]] | None = None,
        anonymous: bool = False,
        topic_key: str = "",
    ) -> Filed:
        text = mask_national_ids(text.strip())
        if not text:
            raise FeedbackError("empty")
        if len(text) > MAX_TEXT:
            raise FeedbackError("too_long", limit=MAX_TEXT)
        if category not in FEEDBACK_CATEGORIES:
            raise FeedbackError("bad_category")
        now = self._clock.now()
        async with self._db.session() as session:
            ward_id, group_id = await self._place_of(session, identity)
            digest = _hash(text)
            same = (
                await session.exec(
                    select(Feedback).where(
                        Feedback.reporter_member_id == identity.member_id,
                        Feedback.text_hash == digest,
                        col(Feedback.state).in_(OPEN_STATES),
                    )
                )
            ).first()
            if same is not None:
                return Filed(await self._view(session, same, staff=False), merged=True)
            # Counted from the audit log, which /xoadulieu does not clear (de-identified
            # tickets would otherwise reset the count); the member row is locked so that
            # tickets sent at the same moment are counted one after another.
            me = (await session.exec(
                select(Member).where(Member.id == identity.member_id).with_for_update()
            )).one()
            accounts = [identity.member_id]  # a person's Telegram and Zalo share one limit
            if me.person_id is not None:
                accounts = [int(i) for i in (await session.exec(
                    select(Member.id).where(Member.person_id == me.person_id))).all()
                    if i is not None]
            recent = (
                await session.exec(
                    select(AuditLog.at)
                    .where(
                        AuditLog.action == "feedback.submit",
                        col(AuditLog.actor_member_id).in_(accounts),
                        col(AuditLog.at) > now - timedelta(hours=1),
                    )
                    .order_by(col(AuditLog.at))
                )
            ).all()
            if len(recent) >= self._config.max_per_hour:
                raise FeedbackError("rate_limited", retry_at=recent[0] + timedelta(hours=1))
            row = Feedback(
                kind=kind, category=category, text=text, text_hash=digest,
                location=mask_national_ids(location.strip())[:300],
                photos=list(photos or [])[:3], topic_key=topic_key, anonymous=anonymous,
                reporter_member_id=identity.member_id, ward_id=ward_id, group_id=group_id,
                state="new", created_at=now,
                due_at=now + timedelta(hours=self._config.due_hours.get(category, 120)),
            )
            session.add(row)
            await session.flush()
            assert row.id is not None
            session.add(FeedbackEvent(feedback_id=row.id, at=now, action="created",
                                      to_state="new"))
            audit.record(session, self._clock, action="feedback.submit",
                         actor_member_id=identity.member_id, ward_id=ward_id,
                         target=f"PA-{row.id}")
            return Filed(await self._view(session, row, staff=False), merged=False)

    async def _place_of(self, session: AsyncSession, identity: Identity) -> tuple[int, int | None]:
        grant = next((g for g in identity.grants if g.role in GROUP_ROLES and g.group_id), None)
        if grant is not None and grant.ward_id is not None:
            return grant.ward_id, grant.group_id
        if identity.ward_id is not None:
            return identity.ward_id, None
        wards = (await session.exec(select(Ward.id))).all()
        if len(wards) == 1 and wards[0] is not None:
            return wards[0], None  # a one-ward deployment: guests' feedback goes there
        raise FeedbackError("no_ward")

    # --- reading ---------------------------------------------------------------------------
    async def mine(self, identity: Identity) -> list[TicketView]:
        async with self._db.session() as session:
            rows = (
                await session.exec(
                    select(Feedback)
                    .where(Feedback.reporter_member_id == identity.member_id)
                    .order_by(col(Feedback.id).desc())
                    .limit(20)
                )
            ).all()
            return [await self._view(session, r, staff=False) for r in rows]

    async def for_reporter(self, identity: Identity, number: int) -> TicketView:
        async with self._db.session() as session:
            row = await session.get(Feedback, number)
            if row is None or row.reporter_member_id != identity.member_id:
                raise FeedbackError("not_found", number=number)
            return await self._view(session, row, staff=False, history=True)

    async def for_staff(self, identity: Identity, number: int) -> TicketView:
        async with self._db.session() as session:
            row = await self._staff_row(session, identity, number)
            return await self._view(session, row, staff=True, history=True)

    async def _staff_row(self, session: AsyncSession, identity: Identity, number: int) -> Feedback:
        row = await session.get(Feedback, number)
        if row is None:
            raise FeedbackError("not_found", number=number)
        if not _may_handle(identity, row):
            raise FeedbackError("not_yours", number=number)
        return row

    async def list_for_staff(
        self, identity: Identity, filters: Filters, page: int = 1
    ) -> Page:
        now = self._clock.now()
        async with self._db.session() as session:
            query = select(Feedback).where(col(Feedback.ward_id).in_(identity.ward_ids() or {0}))
            if filters.state:
                query = query.where(Feedback.state == filters.state)
            else:
                query = query.where(col(Feedback.state).in_(OPEN_STATES))
            if filters.category:
                query = query.where(Feedback.category == filters.category)
            if filters.overdue:
                query = query.where(col(Feedback.due_at) < now)
            if filters.group:
                group_ids = (
                    await session.exec(
                        select(ResidentialGroup.id).where(
                            ResidentialGroup.code == filters.group.upper()
                        )
                    )
                ).all()
                query = query.where(col(Feedback.group_id).in_(group_ids or [0]))
            rows = [
                r for r in (await session.exec(query.order_by(col(Feedback.due_at)))).all()
                if _may_handle(identity, r)
            ]
            pages = max(1, -(-len(rows) // PAGE_SIZE))
            page = min(max(1, page), pages)
            chunk = rows[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
            items = tuple([await self._view(session, r, staff=True) for r in chunk])
            return Page(items=items, page=page, pages=pages, total=len(rows))

    async def staff_of(self, identity: Identity, number: int) -> list[StaffMember]:
        """People a ticket can be given to: those who can then handle it (leaders of its
        group, coordinators of the ward); a helper could not act on a ticket given to him."""
        async with self._db.session() as session:
            row = await self._staff_row(session, identity, number)
            grants = (
                await session.exec(
                    select(RoleGrant, Member)
                    .join(Member, col(Member.id) == col(RoleGrant.member_id))
                    .where(
                        RoleGrant.ward_id == row.ward_id, col(RoleGrant.revoked_at).is_(None),
                        col(RoleGrant.role).in_(("leader", "coordinator")),
                    )
                )
            ).all()
            people: dict[int, StaffMember] = {}
            for grant, member in grants:
                in_scope = grant.group_id is None or grant.group_id == row.group_id
                if in_scope and member.id is not None:
                    people[member.id] = StaffMember(member.id, member.display_name or "?")
            return sorted(people.values(), key=lambda p: p.name)

    # --- handling ---------------------------------------------------------------------------
    async def act(
        self, identity: Identity, number: int, action: str, message: str = ""
    ) -> Changed:
        if action not in TRANSITIONS:
            raise FeedbackError("bad_action")
        message = message.strip()[:MAX_TEXT]
        if action in NEEDS_MESSAGE and not message:
            raise FeedbackError("needs_message", action=action)
        now = self._clock.now()
        async with self._db.session() as session:
            row = await self._staff_row(session, identity, number)
            allowed, target = TRANSITIONS[action]
            if row.state not in allowed:
                raise FeedbackError("bad_transition", state=row.state, action=action)
            before = row.state
            if target is not None:
                row.state = target
            if target in ("acknowledged", "in_progress") and row.acknowledged_at is None:
                row.acknowledged_at = now
            if target in FINAL_STATES:
                row.resolved_at = now
            session.add(row)
            assert row.id is not None
            session.add(FeedbackEvent(
                feedback_id=row.id, at=now, actor_member_id=identity.member_id, action=action,
                from_state=before, to_state=row.state, message=message,
            ))
            audit.record(
                session, self._clock, action=f"feedback.{action}",
                actor_member_id=identity.member_id, ward_id=row.ward_id, target=f"PA-{row.id}",
                from_state=before, to_state=row.state,
            )
            reporter = await self._reporter(session, row)
            view = await self._view(session, row, staff=True)
            return Changed(ticket=view, reporter=reporter, action=action, message=message)

    async def assign(self, identity: Identity, number: int, member_id: int) -> Changed:
        allowed = {p.member_id for p in await self.staff_of(identity, number)}
        if member_id not in allowed:
            raise FeedbackError("bad_assignee")
        now = self._clock.now()
        async with self._db.session() as session:
            row = await self._staff_row(session, identity, number)
            if row.state in FINAL_STATES:
                raise FeedbackError("bad_transition", state=row.state, action="assign")
            before = row.state
            row.assignee_member_id = member_id
            if row.state == "new":
                row.state, row.acknowledged_at = "acknowledged", now
            session.add(row)
            assert row.id is not None
            session.add(FeedbackEvent(
                feedback_id=row.id, at=now, actor_member_id=identity.member_id,
                action="assigned", from_state=before, to_state=row.state,
            ))
            audit.record(
                session, self._clock, action="feedback.assign",
                actor_member_id=identity.member_id, ward_id=row.ward_id, target=f"PA-{row.id}",
                assignee=member_id,
            )
            assignee = await session.get(Member, member_id)
            view = await self._view(session, row, staff=True)
            target = Reporter(assignee.platform, assignee.platform_user_id) if assignee else None
            reporter = await self._reporter(session, row) if before == "new" else None
            return Changed(ticket=view, reporter=target, action="assigned", message="",
                           also_tell=reporter)

    # --- nudges, counts, summaries ----------------------------------------------------------
    async def overdue_nudges(self) -> list[Nudge]:
        """Overdue open tickets not nudged within `nudge_every_hours`, with who to tell."""
        now = self._clock.now()
        since = now - timedelta(hours=self._config.nudge_every_hours)
        async with self._db.session() as session:
            rows = (
                await session.exec(
                    select(Feedback).where(
                        col(Feedback.state).in_(OPEN_STATES), col(Feedback.due_at) < now,
                        sa.or_(col(Feedback.last_nudged_at).is_(None),
                               col(Feedback.last_nudged_at) < since),
                    )
                )
            ).all()
            nudges = []
            for row in rows:
                recipients = await self._responsible(session, row)
                row.last_nudged_at = now
                session.add(row)
                assert row.id is not None
                session.add(FeedbackEvent(feedback_id=row.id, at=now, action="nudged",
                                          from_state=row.state, to_state=row.state))
                nudges.append(Nudge(await self._view(session, row, staff=True), recipients))
            return nudges

    async def _responsible(self, session: AsyncSession, row: Feedback) -> tuple[Reporter, ...]:
        if row.assignee_member_id is not None:
            member = await session.get(Member, row.assignee_member_id)
            return (Reporter(member.platform, member.platform_user_id),) if member else ()
        members = (
            await session.exec(
                select(Member)
                .join(RoleGrant, col(RoleGrant.member_id) == col(Member.id))
                .where(
                    RoleGrant.ward_id == row.ward_id, col(RoleGrant.revoked_at).is_(None),
                    sa.or_(
                        col(RoleGrant.role) == Role.COORDINATOR.value,
                        sa.and_(col(RoleGrant.role) == Role.LEADER.value,
                                col(RoleGrant.group_id) == row.group_id),
                    ),
                )
            )
        ).all()
        return tuple(dict.fromkeys(Reporter(m.platform, m.platform_user_id) for m in members))

    async def counts(self, ward_id: int) -> Counts:
        now = self._clock.now()
        async with self._db.session() as session:
            base = select(func.count()).select_from(Feedback).where(
                Feedback.ward_id == ward_id, col(Feedback.state).in_(OPEN_STATES)
            )
            open_ = (await session.exec(base)).one()
            overdue = (await session.exec(base.where(col(Feedback.due_at) < now))).one()
            today = (
                await session.exec(
                    select(func.count()).select_from(Feedback).where(
                        Feedback.ward_id == ward_id,
                        col(Feedback.created_at) > now - timedelta(days=1),
                    )
                )
            ).one()
            return Counts(open=int(open_), overdue=int(overdue), new_today=int(today))

    async def summary(self, identity: Identity, start: datetime, end: datetime) -> Summary:
        async with self._db.session() as session:
            rows = [
                r for r in (
                    await session.exec(
                        select(Feedback).where(
                            col(Feedback.ward_id).in_(identity.ward_ids() or {0}),
                            col(Feedback.created_at) >= start, col(Feedback.created_at) < end,
                        )
                    )
                ).all()
                if _may_handle(identity, r)
            ]
            codes = {
                g.id: g.code
                for g in (await session.exec(select(ResidentialGroup))).all()
            }
        resolved = [r for r in rows if r.state == "resolved" and r.resolved_at is not None]
        hours = [
            (r.resolved_at - r.created_at).total_seconds() / 3600
            for r in resolved if r.resolved_at is not None
        ]
        by_category: Counter[str] = Counter(r.category for r in rows)
        done_category: Counter[str] = Counter(r.category for r in resolved)
        by_group: Counter[str] = Counter(codes.get(r.group_id or 0, "") for r in rows)
        done_group: Counter[str] = Counter(codes.get(r.group_id or 0, "") for r in resolved)
        confirmed = [r for r in rows if r.fixed_answer == "fixed"]
        reopened = [r for r in rows if r.reopen_count > 0]
        scores = [r.satisfaction for r in rows if r.satisfaction is not None]
        loop_category = {
            k: (sum(r.category == k for r in confirmed), sum(r.category == k for r in reopened))
            for k in sorted({r.category for r in confirmed + reopened})
        }
        group_of = {id(r): codes.get(r.group_id or 0, "") for r in rows}
        loop_group = {
            k: (sum(group_of[id(r)] == k for r in confirmed),
                sum(group_of[id(r)] == k for r in reopened))
            for k in sorted({group_of[id(r)] for r in confirmed + reopened})
        }
        return Summary(
            received=len(rows), resolved=len(resolved),
            median_hours=round(statistics.median(hours), 1) if hours else None,
            by_category={k: (v, done_category[k]) for k, v in sorted(by_category.items())},
            by_group={k: (v, done_group[k]) for k, v in sorted(by_group.items())},
            confirmed=len(confirmed), reopened=len(reopened),
            satisfaction=round(float(statistics.median(scores)), 1) if scores else None,
            loop_by_category=loop_category, loop_by_group=loop_group,
        )

    # --- the reporter's own data ---------------------------------------------------------------
    async def forget(self, identity: Identity) -> int:
        """Delete a person's own data, on every linked account (Telegram and Zalo): tickets
        stay, de-identified. Returns tickets kept."""
        now = self._clock.now()
        async with self._db.session() as session:
            member = await session.get(Member, identity.member_id)
            assert member is not None
            accounts = [member]
            if member.person_id is not None:
                accounts = list((await session.exec(
                    select(Member).where(Member.person_id == member.person_id))).all())
            ids = [m.id for m in accounts if m.id is not None]
            kept = await session.exec(
                sa.update(Feedback)
                .where(col(Feedback.reporter_member_id).in_(ids))
                .values(reporter_member_id=None, anonymous=True)
            )
            await session.exec(
                sa.update(RoleGrant)
                .where(col(RoleGrant.member_id).in_(ids), col(RoleGrant.revoked_at).is_(None))
                .values(revoked_at=now)
            )
            for account in accounts:
                await session.exec(
                    sa.delete(ConversationState).where(
                        col(ConversationState.platform) == account.platform,
                        col(ConversationState.user_id).in_(
                            (account.platform_user_id, account.platform_user_id + MENU_SUFFIX)
                        ),
                    )
                )
            await session.exec(sa.delete(TopicVote).where(col(TopicVote.member_id).in_(ids)))
            await session.exec(
                sa.delete(HouseholdResident).where(col(HouseholdResident.member_id).in_(ids))
            )
            for account in accounts:
                account.display_name, account.username, account.person_id = "", "", None
                session.add(account)
            audit.record(
                session, self._clock, action="member.forget", actor_member_id=identity.member_id,
                ward_id=None, target=f"member:{identity.member_id}",
            )
            return int(kept.rowcount)

    # --- closing the loop: "is it fixed?" ----------------------------------------------------
    async def fixed_questions_due(self) -> list[FixedQuestion]:
        """Tickets resolved `ask_fixed_after_days` ago whose reporter was not asked yet; each
        is marked asked in the same transaction, so a question is never sent twice."""
        now = self._clock.now()
        before = now - timedelta(days=self._config.ask_fixed_after_days)
        # Too old to reopen: never asked (the question would offer what it cannot do).
        oldest = now - timedelta(days=self._config.reopen_days)
        async with self._db.session() as session:
            rows = (
                await session.exec(
                    select(Feedback).where(
                        Feedback.state == "resolved", col(Feedback.fixed_asked_at).is_(None),
                        col(Feedback.reporter_member_id).is_not(None),
                        col(Feedback.resolved_at) <= before, col(Feedback.resolved_at) > oldest,
                    ).order_by(col(Feedback.id)).limit(500)
                )
            ).all()
            due = []
            for row in rows:
                row.fixed_asked_at = now
                session.add(row)
                reporter = await self._reporter(session, row)
                if reporter is None:
                    continue
                assert row.id is not None
                session.add(FeedbackEvent(feedback_id=row.id, at=now, action="asked_fixed",
                                          from_state=row.state, to_state=row.state))
                due.append(FixedQuestion(await self._view(session, row, staff=False),
                                         reporter, row.ward_id))
            return due

    async def confirm_fixed(self, identity: Identity, number: int) -> TicketView:
        """The reporter says the problem is fixed: recorded, the ticket stays resolved."""
        now = self._clock.now()
        async with self._db.session() as session:
            row = await self._reporter_row(session, identity, number)
            if row.state != "resolved":
                raise FeedbackError("not_resolved", number=number)
            if row.fixed_answer != "fixed":
                row.fixed_answer = "fixed"
                session.add(row)
                assert row.id is not None
                session.add(FeedbackEvent(feedback_id=row.id, at=now, action="confirmed_fixed",
                                          from_state=row.state, to_state=row.state))
            return await self._view(session, row, staff=False)

    async def reopen(self, identity: Identity, number: int, message: str = "") -> Reopened:
        """The reporter says a resolved problem is not fixed: the ticket is reopened, due
        again by its category, and whoever handles it (or the group's staff) is told."""
        now = self._clock.now()
        message = mask_national_ids(message.strip())[:MAX_TEXT]
        async with self._db.session() as session:
            row = await self._reporter_row(session, identity, number)
            if row.state != "resolved":
                raise FeedbackError("not_resolved", number=number)
            if not self._may_reopen(row):
                raise FeedbackError("too_late_to_reopen", number=number,
                                    days=self._config.reopen_days)
            row.state, row.fixed_answer = "reopened", "not_fixed"
            row.reopen_count += 1
            row.due_at = now + timedelta(hours=self._config.due_hours.get(row.category, 120))
            row.last_nudged_at = None
            session.add(row)
            assert row.id is not None
            session.add(FeedbackEvent(
                feedback_id=row.id, at=now, actor_member_id=identity.member_id,
                action="reopened", from_state="resolved", to_state="reopened", message=message,
            ))
            audit.record(session, self._clock, action="feedback.reopen",
                         actor_member_id=identity.member_id, ward_id=row.ward_id,
                         target=f"PA-{row.id}")
            tell = await self._responsible(session, row)
            return Reopened(await self._view(session, row, staff=True, history=True), tell)

    async def add_reporter_note(self, identity: Identity, number: int, text: str) -> Reopened:
        """The reporter's words on what is still wrong, kept on a reopened ticket."""
        now = self._clock.now()
        text = mask_national_ids(text.strip())[:MAX_TEXT]
        async with self._db.session() as session:
            row = await self._reporter_row(session, identity, number)
            if row.state in FINAL_STATES:
                raise FeedbackError("not_open", number=number)
            assert row.id is not None
            session.add(FeedbackEvent(
                feedback_id=row.id, at=now, actor_member_id=identity.member_id,
                action="reporter_note", from_state=row.state, to_state=row.state, message=text,
            ))
            tell = await self._responsible(session, row)
            return Reopened(await self._view(session, row, staff=True), tell)

    async def rate(self, identity: Identity, number: int, score: int) -> TicketView:
        """A 1-5 satisfaction tap after "fixed"; a second tap replaces the first."""
        if not 1 <= score <= 5:
            raise FeedbackError("bad_score")
        async with self._db.session() as session:
            row = await self._reporter_row(session, identity, number)
            if row.state != "resolved":
                raise FeedbackError("not_resolved", number=number)
            row.satisfaction = score
            session.add(row)
            return await self._view(session, row, staff=False)

    async def _reporter_row(
        self, session: AsyncSession, identity: Identity, number: int
    ) -> Feedback:
        row = await session.get(Feedback, number)
        if row is None or row.reporter_member_id != identity.member_id:
            raise FeedbackError("not_found", number=number)
        return row

    def _may_reopen(self, row: Feedback) -> bool:
        return (row.state == "resolved" and row.resolved_at is not None
                and row.resolved_at > self._clock.now() - timedelta(days=self._config.reopen_days))

    # --- views ------------------------------------------------------------------------------
    async def _reporter(self, session: AsyncSession, row: Feedback) -> Reporter | None:
        if row.reporter_member_id is None:
            return None
        member = await session.get(Member, row.reporter_member_id)
        return Reporter(member.platform, member.platform_user_id) if member else None

    async def _view(
        self, session: AsyncSession, row: Feedback, *, staff: bool, history: bool = False
    ) -> TicketView:
        assert row.id is not None
        reporter_name = ""
        if not (staff and row.anonymous) and row.reporter_member_id is not None:
            member = await session.get(Member, row.reporter_member_id)
            reporter_name = member.display_name if member else ""
            if staff:  # names like "Lan 0912 345 678" carry a phone number
                reporter_name = mask_contacts(reporter_name)
        group = await session.get(ResidentialGroup, row.group_id) if row.group_id else None
        assignee = (
            await session.get(Member, row.assignee_member_id) if row.assignee_member_id else None
        )
        events: tuple[EventView, ...] = ()
        if history:
            rows = (
                await session.exec(
                    select(FeedbackEvent)
                    .where(FeedbackEvent.feedback_id == row.id)
                    .order_by(col(FeedbackEvent.id))
                )
            ).all()
            events = tuple(
                EventView(e.at, e.action, e.to_state, mask_contacts(e.message) if staff
                          else e.message)
                for e in rows if staff or e.action not in ("nudged", "asked_fixed")
            )
        text = mask_contacts(row.text) if staff else row.text
        location = mask_contacts(row.location) if staff else row.location
        return TicketView(
            number=row.id, kind=row.kind, category=row.category, text=text, location=location,
            photos=len(row.photos), state=row.state, anonymous=row.anonymous,
            reporter_name=reporter_name, group_code=group.code if group else "",
            created_at=row.created_at, due_at=row.due_at,
            overdue=row.state in OPEN_STATES and row.due_at < self._clock.now(),
            assignee_name=assignee.display_name if assignee else "", events=events,
            resolved_at=row.resolved_at, fixed_answer=row.fixed_answer,
            satisfaction=row.satisfaction, may_reopen=self._may_reopen(row),
        )


def _may_handle(identity: Identity, row: Feedback) -> bool:
    """Coordinators: their ward's tickets; leaders: their groups'; admins: all."""
    if identity.is_admin:
        return True
    if row.group_id is None:
        return identity.role_in_ward(row.ward_id) >= Role.COORDINATOR
    return identity.role_in_group(row.ward_id, row.group_id) >= Role.LEADER
