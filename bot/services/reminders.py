"""Personal reminders during a campaign: a household that still misses the campaign's step
gets its own nudge (at most one per `[reminders] every_days` per campaign), sent to the
residents linked to it; the nudge is dropped the moment the step is logged (by a helper,
a confirmed self-report or an import), `/tatnhac` stops them for a person, and a household can
ask the group's tech-team helpers to come by. The reminders' effect (reminded → done within
7 days) is counted per group."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.clock import Clock
from bot.config import OnboardingStepConfig
from bot.db import Database
from bot.models import (
    Campaign,
    Household,
    HouseholdResident,
    HouseholdStep,
    Member,
    PersonalReminder,
    ReminderMute,
    ResidentialGroup,
    RoleGrant,
    VisitRequest,
)
from bot.roles import Role
from bot.services import audit
from bot.services.access import Identity
from bot.services.errors import ServiceError

EFFECT_DAYS = 7  # "done within a week of the reminder" is the figure reports quote
BATCH = 500  # households planned or sent per run: a run never holds the database for long


@dataclass(frozen=True)
class Recipient:
    platform: str
    user_id: str


@dataclass(frozen=True)
class Nudge:
    """One household's reminder, ready to be worded and queued."""

    reminder_id: int
    household_id: int
    household_code: str
    ward_id: int
    group_id: int
    campaign_title: str
    step_key: str
    missing: tuple[str, ...]  # step keys still missing, the campaign's first
    recipients: tuple[Recipient, ...]
    first: bool  # the household's first personal reminder: it says how to stop them


@dataclass(frozen=True)
class Effect:
    """Per group: households reminded, and how many of them did the step within 7 days."""

    group_code: str
    reminded: int
    done_within: int


@dataclass(frozen=True)
class Visit:
    household_code: str
    requested_by: str
    requested_at: datetime


@dataclass(frozen=True)
class VisitAsked:
    created: bool
    household_code: str
    group_id: int
    helpers: tuple[Recipient, ...]


async def step_done(
    session: AsyncSession, pairs: Iterable[tuple[int, str]], now: datetime
) -> None:
    """A step was completed for these households: drop their pending reminders for it and
    record the effect of the ones already sent. Called inside the writer's transaction.
    Households are taken a few hundred at a time per step (an import completes thousands of
    steps at once: one statement per household would make it minutes long)."""
    table = PersonalReminder.__table__  # type: ignore[attr-defined]
    visits = VisitRequest.__table__  # type: ignore[attr-defined]
    by_step: dict[str, list[int]] = {}
    for household_id, step_key in pairs:
        by_step.setdefault(step_key, []).append(household_id)
    for step_key, households in sorted(by_step.items()):
        for start in range(0, len(households), _CHUNK):
            chunk = households[start : start + _CHUNK]
            mine = sa.and_(table.c.household_id.in_(chunk), table.c.step_key == step_key)
            await session.exec(
                sa.update(table).where(mine, table.c.state == "pending")
                .values(state="cancelled")
            )
            await session.exec(
                sa.update(table).where(mine, table.c.state == "sent", table.c.done_at.is_(None))
                .values(done_at=now)
            )
            await session.exec(
                sa.update(visits)
                .where(visits.c.household_id.in_(chunk), visits.c.done_at.is_(None),
                       visits.c.step_key.in_((step_key, "")))
                .values(done_at=now)
            )


_CHUNK = 500  # households per statement: well under SQLite's 32,766 bound parameters


class PersonalReminders:
    def __init__(
        self, db: Database, clock: Clock, steps: Sequence[OnboardingStepConfig], *,
        every_days: int, platforms_without_quota: Sequence[str] = ("zalo_oa",),
    ) -> None:
        self._db = db
        self._clock = clock
        self._steps = list(steps)
        self._every = timedelta(days=every_days)
        # Zalo OA charges for messages outside the resident's reply window: no personal
        # reminders there unless a quota is configured (see docs).
        self._skip_platforms = tuple(platforms_without_quota)

    # --- planning and sending ----------------------------------------------------------------
    async def plan(self) -> int:
        """Plan a reminder for every household of a running campaign that misses its step,
        has a linked resident who did not mute reminders, and was not reminded for this
        campaign within `every_days`. Returns reminders planned."""
        now = self._clock.now()
        today = now.date()
        planned = 0
        async with self._db.session() as session:
            campaigns = (await session.exec(select(Campaign).where(
                Campaign.state == "active", col(Campaign.starts_on) <= today,
                col(Campaign.ends_on) >= today,
            ))).all()
            for c in campaigns:
                assert c.id is not None
                done = select(HouseholdStep.household_id).where(
                    HouseholdStep.step_key == c.step_key, col(HouseholdStep.complete))
                recent = select(PersonalReminder.household_id).where(
                    PersonalReminder.campaign_id == c.id,
                    col(PersonalReminder.created_at) > now - self._every)
                reachable = (
                    select(HouseholdResident.household_id)
                    .join(Member, col(Member.id) == col(HouseholdResident.member_id))
                    .where(col(Member.platform).not_in(self._skip_platforms),
                           col(HouseholdResident.member_id).not_in(
                               select(ReminderMute.member_id)
                               .where(ReminderMute.ward_id == c.ward_id)))
                )
                query = select(Household.id, Household.group_id).where(
                    Household.ward_id == c.ward_id,
                    col(Household.id).not_in(done), col(Household.id).not_in(recent),
                    col(Household.id).in_(reachable),
                )
                if c.group_ids:
                    query = query.where(col(Household.group_id).in_(c.group_ids))
                rows = (await session.exec(query.order_by(col(Household.id)).limit(BATCH))).all()
                for household_id, group_id in rows:
                    assert household_id is not None
                    session.add(PersonalReminder(
                        household_id=household_id, campaign_id=c.id, group_id=group_id,
                        step_key=c.step_key, due_at=now, created_at=now,
                    ))
                planned += len(rows)
        return planned

    async def take_due(self) -> list[Nudge]:
        """Due reminders, marked sent in the same transaction (so never sent twice); one
        whose step got done meanwhile is cancelled instead."""
        now = self._clock.now()
        keys = [s.key for s in self._steps]
        nudges = []
        async with self._db.session() as session:
            rows = (await session.exec(
                select(PersonalReminder).where(
                    PersonalReminder.state == "pending", col(PersonalReminder.due_at) <= now)
                .order_by(col(PersonalReminder.id)).limit(BATCH).with_for_update(skip_locked=True)
            )).all()
            for row in rows:
                assert row.id is not None
                household = await session.get(Household, row.household_id)
                campaign = await session.get(Campaign, row.campaign_id)
                complete = set((await session.exec(
                    select(HouseholdStep.step_key).where(
                        HouseholdStep.household_id == row.household_id,
                        col(HouseholdStep.complete)))).all())
                recipients = await self._recipients(session, row.household_id,
                                                    household.ward_id if household else 0)
                if (household is None or campaign is None or row.step_key in complete
                        or campaign.state != "active" or not recipients):
                    row.state = "cancelled"
                    session.add(row)
                    continue
                earlier = (await session.exec(
                    select(sa.func.count()).select_from(PersonalReminder).where(
                        PersonalReminder.household_id == row.household_id,
                        PersonalReminder.state == "sent"))).one()
                row.state, row.sent_at = "sent", now
                session.add(row)
                missing = [row.step_key] + [k for k in keys
                                            if k not in complete and k != row.step_key]
                nudges.append(Nudge(
                    reminder_id=row.id, household_id=row.household_id,
                    household_code=household.code, ward_id=household.ward_id,
                    group_id=household.group_id, campaign_title=campaign.title,
                    step_key=row.step_key, missing=tuple(missing),
                    recipients=recipients, first=int(earlier) == 0,
                ))
        return nudges

    async def _recipients(
        self, session: AsyncSession, household_id: int, ward_id: int
    ) -> tuple[Recipient, ...]:
        muted = select(ReminderMute.member_id).where(ReminderMute.ward_id == ward_id)
        rows = (await session.exec(
            select(Member.platform, Member.platform_user_id)
            .join(HouseholdResident, col(HouseholdResident.member_id) == col(Member.id))
            .where(HouseholdResident.household_id == household_id,
                   col(Member.platform).not_in(self._skip_platforms),
                   col(Member.id).not_in(muted))
        )).all()
        return tuple(Recipient(p, u) for p, u in rows)

    # --- the resident's choices ----------------------------------------------------------------
    async def mute(self, identity: Identity, *, muted: bool) -> int:
        """`/tatnhac` / `/batnhac` for the wards this person belongs to; returns wards."""
        async with self._db.session() as session:
            wards = set(identity.ward_ids())
            link = await session.get(HouseholdResident, identity.member_id)
            if link is not None:
                household = await session.get(Household, link.household_id)
                if household is not None:
                    wards.add(household.ward_id)
            for ward_id in wards:
                row = await session.get(ReminderMute, (identity.member_id, ward_id))
                if muted and row is None:
                    session.add(ReminderMute(member_id=identity.member_id, ward_id=ward_id,
                                             muted_at=self._clock.now()))
                elif not muted and row is not None:
                    await session.delete(row)
            return len(wards)

    async def ask_visit(self, identity: Identity, step_key: str) -> VisitAsked:
        """"Nhờ tổ công nghệ số đến giúp" from the person's own household; one open request
        per household (asking again only returns it)."""
        now = self._clock.now()
        async with self._db.session() as session:
            link = await session.get(HouseholdResident, identity.member_id)
            if link is None:
                raise ServiceError("not_linked")
            household = await session.get(Household, link.household_id)
            assert household is not None and household.id is not None
            existing = (await session.exec(select(VisitRequest).where(
                VisitRequest.household_id == household.id,
                col(VisitRequest.done_at).is_(None)))).first()
            if existing is None:
                session.add(VisitRequest(
                    household_id=household.id, group_id=household.group_id,
                    step_key=step_key, requested_by=identity.member_id, requested_at=now))
                audit.record(session, self._clock, action="household.visit_request",
                             actor_member_id=identity.member_id, ward_id=household.ward_id,
                             target=household.code)
            helpers = (await session.exec(
                select(Member.platform, Member.platform_user_id)
                .join(RoleGrant, col(RoleGrant.member_id) == col(Member.id))
                .where(RoleGrant.group_id == household.group_id,
                       col(RoleGrant.revoked_at).is_(None),
                       col(RoleGrant.role).in_((Role.HELPER.value, Role.LEADER.value)))
                .distinct()
            )).all()
            return VisitAsked(existing is None, household.code, household.group_id,
                              tuple(Recipient(p, u) for p, u in helpers))

    # --- figures -------------------------------------------------------------------------------
    async def visits(self, group_id: int) -> dict[str, Visit]:
        """Open visit requests of a group by household code, for the "not done yet" list."""
        async with self._db.session() as session:
            rows = (await session.exec(
                select(Household.code, Member.display_name, VisitRequest.requested_at)
                .join(Household, col(Household.id) == col(VisitRequest.household_id))
                .join(Member, col(Member.id) == col(VisitRequest.requested_by), isouter=True)
                .where(VisitRequest.group_id == group_id, col(VisitRequest.done_at).is_(None))
            )).all()
            return {code: Visit(code, name or "", at) for code, name, at in rows}

    async def effect(self, campaign_id: int) -> list[Effect]:
        """Per group of the campaign: households reminded, and done within 7 days of it."""
        async with self._db.session() as session:
            rows = (await session.exec(
                select(ResidentialGroup.code, PersonalReminder.household_id,
                       PersonalReminder.sent_at, PersonalReminder.done_at)
                .join(ResidentialGroup,
                      col(ResidentialGroup.id) == col(PersonalReminder.group_id))
                .where(PersonalReminder.campaign_id == campaign_id,
                       PersonalReminder.state == "sent")
            )).all()
        reminded: dict[str, set[int]] = {}
        done: dict[str, set[int]] = {}
        for code, household_id, sent_at, done_at in rows:
            reminded.setdefault(code, set()).add(household_id)
            if sent_at and done_at and done_at - sent_at <= timedelta(days=EFFECT_DAYS):
                done.setdefault(code, set()).add(household_id)
        return [Effect(code, len(ids), len(done.get(code, set())))
                for code, ids in sorted(reminded.items())]
