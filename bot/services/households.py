"""Households and their checklists: look up, tick steps, undo, self-reports, residents' links.

Scope is checked here, not only in handlers: helpers and leaders change households of their
own groups, coordinators anywhere in their ward, residents only report their own household.
Every change writes a `ProgressEvent` and moves the group's totals in the same transaction.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

import sqlalchemy as sa
from rapidfuzz import process
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.clock import Clock
from bot.config import OnboardingStepConfig
from bot.db import Database, memo
from bot.models import (
    AuditLog,
    Household,
    HouseholdResident,
    HouseholdStep,
    Member,
    PersonalReminder,
    ProgressEvent,
    ResidentialGroup,
    VisitRequest,
)
from bot.roles import Role
from bot.services import audit, reminders
from bot.services.access import Identity, holders
from bot.services.errors import ServiceError
from bot.services.explanations import fold
from bot.services.places import normalize_code
from bot.services.progress import bump, lock_groups

SEARCH_LIMIT = 8
LINK_TRIES = 5  # failed /cuaho links per person per hour
LINK_WINDOW = timedelta(hours=1)


@dataclass(frozen=True)
class HouseholdInfo:
    id: int
    ward_id: int
    group_id: int
    group_code: str
    code: str
    head_name: str
    address: str
    members: int
    adults: int
    phone: str


@dataclass(frozen=True)
class StepState:
    step: OnboardingStepConfig
    units: int
    total: int
    reported: bool
    updated_at: datetime | None
    updated_by: str

    @property
    def complete(self) -> bool:
        return self.total > 0 and self.units >= self.total


@dataclass(frozen=True)
class Checklist:
    household: HouseholdInfo
    steps: list[StepState]

    @property
    def done(self) -> int:
        return sum(1 for s in self.steps if s.complete)

    def state(self, key: str) -> StepState | None:
        return next((s for s in self.steps if s.step.key == key), None)


@dataclass(frozen=True)
class StepChange:
    key: str
    title: str
    before: int
    after: int
    total: int


@dataclass(frozen=True)
class Marked:
    checklist: Checklist
    changes: list[StepChange]
    batch: str


@dataclass(frozen=True)
class Staff:
    platform: str
    user_id: str


def search_text(code: str, head_name: str, address: str) -> str:
    return fold(f"{code} {head_name} {address}")[:600]


def step_total(step: OnboardingStepConfig, adults: int) -> int:
    return max(adults, 1) if step.per == "adult" else 1


def may_log(identity: Identity, ward_id: int, group_id: int) -> bool:
    """Helpers and leaders in their groups, coordinators in their ward."""
    return identity.role_in_group(ward_id, group_id) >= Role.HELPER


def _info_query() -> Any:
    """A household as plain columns, in `HouseholdInfo`'s order (no ORM object: read on
    every `/ghi`, perf #16)."""
    return sa.select(
        col(Household.id), col(Household.ward_id), col(Household.group_id),
        col(ResidentialGroup.code), col(Household.code), col(Household.head_name),
        col(Household.address), col(Household.members), col(Household.adults),
        col(Household.phone),
    ).join(ResidentialGroup, col(ResidentialGroup.id) == col(Household.group_id))


def _step_rows_query() -> Any:
    household_id: Any = sa.bindparam("household_id")
    open_reminder = sa.exists().where(
        col(PersonalReminder.household_id) == household_id,
        sa.or_(col(PersonalReminder.state) == "pending",
               sa.and_(col(PersonalReminder.state) == "sent",
                       col(PersonalReminder.done_at).is_(None))),
    )
    open_visit = sa.exists().where(
        col(VisitRequest.household_id) == household_id, col(VisitRequest.done_at).is_(None)
    )
    return (
        sa.select(HouseholdStep, col(Member.display_name), open_reminder, open_visit)
        .select_from(Household)
        .outerjoin(HouseholdStep, col(HouseholdStep.household_id) == col(Household.id))
        .outerjoin(Member, col(Member.id) == col(HouseholdStep.updated_by))
        .where(col(Household.id) == household_id)
    )


# Read on every `/ghi`, built once with bound parameters (perf #16): a household by code,
# and its step rows (with its group's lock on PostgreSQL: `lock_groups`).
_BY_CODE: Any = _info_query().where(col(Household.ward_id) == sa.bindparam("ward_id"),
                                     col(Household.code) == sa.bindparam("code"))
_STEP_ROWS: Any = _step_rows_query()
_STEP_ROWS_LOCKING: Any = _step_rows_query().join(
    ResidentialGroup, col(ResidentialGroup.id) == sa.bindparam("group_id")
).with_for_update(of=ResidentialGroup)


def _info(row: Household, group_code: str) -> HouseholdInfo:
    assert row.id is not None
    return HouseholdInfo(
        id=row.id, ward_id=row.ward_id, group_id=row.group_id, group_code=group_code,
        code=row.code, head_name=row.head_name, address=row.address, members=row.members,
        adults=row.adults, phone=row.phone,
    )


class Households:
    def __init__(self, db: Database, clock: Clock, steps: Sequence[OnboardingStepConfig]) -> None:
        self._db = db
        self._clock = clock
        self.steps = list(steps)
        self._by_key = {s.key: s for s in self.steps}

    def step(self, key: str) -> OnboardingStepConfig | None:
        return self._by_key.get(key.lower())

    # --- finding ------------------------------------------------------------------------
    async def by_code(self, ward_id: int, code: str) -> HouseholdInfo | None:
        async with self._db.session() as session:
            row = (
                await session.exec(_BY_CODE, params={
                    "ward_id": ward_id, "code": normalize_code(code),
                })
            ).first()
            if row is None:
                return None
            info = HouseholdInfo(*row)
            memo(session, "household")[info.id] = info  # read once per update (perf)
            return info

    async def by_id(self, household_id: int) -> HouseholdInfo | None:
        async with self._db.session() as session:
            return await self._by_id(session, household_id)

    async def _by_id(self, session: AsyncSession, household_id: int) -> HouseholdInfo | None:
        known = memo(session, "household")
        if household_id in known:
            return cast(HouseholdInfo, known[household_id])
        row = (
            await session.exec(_info_query().where(col(Household.id) == household_id))
        ).first()
        if row is None:
            return None
        info = HouseholdInfo(*row)
        known[household_id] = info
        return info

    async def close_codes(
        self, ward_id: int, code: str, group_ids: set[int] | None, limit: int = 3
    ) -> list[str]:
        """Codes that look like a mistyped one ("TDP1-12" → "TDP01-012"), within scope."""
        async with self._db.session() as session:
            query = select(Household.code).where(Household.ward_id == ward_id)
            if group_ids is not None:
                query = query.where(col(Household.group_id).in_(group_ids))
            codes = list((await session.exec(query)).all())
        found = process.extract(normalize_code(code), codes, limit=limit, score_cutoff=60)
        return [c for c, _score, _i in found]

    async def search(
        self, ward_id: int, text: str, group_ids: set[int] | None, limit: int = SEARCH_LIMIT
    ) -> list[HouseholdInfo]:
        """By code, or a few letters of the head's name or address; diacritics ignored."""
        words = fold(text).split()
        if not words:
            return []
        async with self._db.session() as session:
            query = _info_query().where(col(Household.ward_id) == ward_id)
            if group_ids is not None:
                query = query.where(col(Household.group_id).in_(group_ids))
            for word in words[:6]:
                query = query.where(col(Household.search).contains(word, autoescape=True))
            rows = (await session.exec(query.order_by(col(Household.code)).limit(limit))).all()
            return [HouseholdInfo(*r) for r in rows]

    # --- checklists -----------------------------------------------------------------------
    async def checklist(self, household_id: int) -> Checklist:
        async with self._db.session() as session:
            return await self._checklist(session, household_id)

    async def _writable(
        self, session: AsyncSession, identity: Identity, household_id: int, *, lock: bool = True
    ) -> HouseholdInfo:
        """A household this person may change, its group locked for the change (scope is
        checked here, on every write, whatever button or command asked for it)."""
        info = await self._by_id(session, household_id)
        if info is None:
            raise ServiceError("unknown_household")
        if not may_log(identity, info.ward_id, info.group_id):
            raise ServiceError("not_your_group", code=info.code, group=info.group_code)
        if lock:
            await lock_groups(session, group_id=info.group_id)
        return info

    async def _step_rows(
        self, session: AsyncSession, household_id: int, *, lock_group: int | None = None
    ) -> dict[str, tuple[HouseholdStep, str]]:
        """The household's step rows, in one statement with what `/ghi` must know besides:
        whether personal reminders or visit requests are open for it (remembered in the
        session's memo, so a completed step skips `reminders.step_done` when none are), and
        with `lock_group` on PostgreSQL, `lock_groups` for its group."""
        params: dict[str, Any] = {"household_id": household_id}
        query = _STEP_ROWS
        if lock_group is not None and _is_postgres(session):
            query, params["group_id"] = _STEP_ROWS_LOCKING, lock_group
        rows = (await session.exec(query, params=params)).all()
        if rows:
            memo(session, "personal_reminder")[household_id] = bool(rows[0][2])
            memo(session, "visit_request")[household_id] = bool(rows[0][3])
        return {r.step_key: (r, name or "") for r, name, _, _ in rows if r is not None}

    @staticmethod
    def _nothing_to_cancel(session: AsyncSession, household_id: int) -> bool:
        """Known from this update's own read: no open reminder or visit for the household."""
        return (memo(session, "personal_reminder").get(household_id) is False
                and memo(session, "visit_request").get(household_id) is False)

    async def _checklist(
        self, session: AsyncSession, household_id: int,
        by_key: dict[str, tuple[HouseholdStep, str]] | None = None,
    ) -> Checklist:
        """`by_key`: the household's step rows as already loaded and changed (no re-read)."""
        info = await self._by_id(session, household_id)
        if info is None:
            raise ServiceError("unknown_household")
        if by_key is None:
            by_key = await self._step_rows(session, household_id)
        states = []
        for step in self.steps:
            row, name = by_key.get(step.key, (None, ""))
            states.append(StepState(
                step=step, units=row.units if row else 0,
                total=step_total(step, info.adults),
                reported=bool(row and row.reported_at is not None),
                updated_at=row.updated_at if row else None, updated_by=name,
            ))
        return Checklist(info, states)

    async def mark(
        self,
        identity: Identity,
        household_id: int,
        targets: Mapping[str, int | None],
        *,
        source: str = "chat",
        note: str = "",
    ) -> Marked:
        """Set steps to a number of units (None: all of them). Unknown keys are refused
        before anything is written, so a typo never half-applies a command."""
        unknown = [k for k in targets if k not in self._by_key]
        if unknown:
            raise ServiceError("unknown_step", step=unknown[0])
        batch = secrets.token_hex(6)
        async with self._db.session() as session:
            info = await self._writable(session, identity, household_id, lock=False)
            # The household's steps read once (its group locked meanwhile): the changes and
            # the reply both use them.
            loaded = await self._step_rows(session, household_id, lock_group=info.group_id)
            changes = []
            for key, wanted in targets.items():
                step = self._by_key[key]
                total = step_total(step, info.adults)
                after = total if wanted is None else wanted
                if after < 0 or after > total:
                    raise ServiceError("too_many", step=step.title, total=total)
                change = await self._set(
                    session, info, step, after, actor=identity.member_id, source=source,
                    note=note, batch=batch, action="set", loaded=loaded,
                )
                if change is not None:
                    changes.append(change)
                    loaded[key] = (loaded[key][0], identity.name)
            checklist = await self._checklist(session, household_id, loaded)
        return Marked(checklist, changes, batch)

    async def _set(
        self, session: AsyncSession, info: HouseholdInfo, step: OnboardingStepConfig,
        after: int, *, actor: int | None, source: str, note: str, batch: str, action: str,
        loaded: dict[str, tuple[HouseholdStep, str]] | None = None,
    ) -> StepChange | None:
        now = self._clock.now()
        total = step_total(step, info.adults)
        if loaded is not None:
            row: HouseholdStep | None = loaded.get(step.key, (None, ""))[0]
        else:
            row = await session.get(HouseholdStep, (info.id, step.key))
        before = row.units if row else 0
        was_complete = bool(row and row.complete)
        had_report = bool(row and row.reported_at is not None)
        if before == after and not (had_report and after >= total):
            return None
        if row is None:
            row = HouseholdStep(household_id=info.id, step_key=step.key, group_id=info.group_id)
            if loaded is not None:
                loaded[step.key] = (row, "")
        row.units = after
        row.complete = after >= total
        row.updated_at = now
        row.updated_by = actor
        if row.complete:
            row.reported_at = None  # a helper's tick confirms the resident's report
            row.reported_by = None
        session.add(row)
        session.add(ProgressEvent(
            household_id=info.id, group_id=info.group_id, step_key=step.key, action=action,
            before_units=before, after_units=after, actor_member_id=actor, source=source,
            batch=batch, note=note[:300], at=now,
        ))
        await bump(
            session, info.group_id, step.key, after - before,
            int(row.complete) - int(was_complete),
        )
        if row.complete and not was_complete and not self._nothing_to_cancel(session, info.id):
            await reminders.step_done(session, [(info.id, step.key)], now)  # they cancel
        return StepChange(step.key, step.title, before, after, total)

    async def undo(self, identity: Identity, batch: str) -> Marked:
        """Put back what one command changed, step by step, unless someone changed the
        step since (then that step is left alone rather than overwriting their work)."""
        async with self._db.session() as session:
            events = (
                await session.exec(
                    select(ProgressEvent).where(ProgressEvent.batch == batch)
                    .order_by(col(ProgressEvent.id))
                )
            ).all()
            if not events:
                raise ServiceError("nothing_to_undo")
            undone = (
                await session.exec(
                    select(ProgressEvent.id).where(ProgressEvent.batch == f"u{batch}"[:32])
                )
            ).first()
            if undone is not None:
                raise ServiceError("already_undone")
            first = events[0]
            if first.actor_member_id != identity.member_id and identity.role < Role.COORDINATOR:
                raise ServiceError("not_your_change")
            info = await self._writable(session, identity, first.household_id)
            changes = []
            for event in events:
                step = self._by_key.get(event.step_key)
                row = await session.get(HouseholdStep, (info.id, event.step_key))
                if step is None or row is None or row.units != event.after_units:
                    continue
                change = await self._set(
                    session, info, step, event.before_units, actor=identity.member_id,
                    source="undo", note="", batch=f"u{batch}"[:32], action="undo",
                )
                if change is not None:
                    changes.append(change)
            checklist = await self._checklist(session, info.id)
        return Marked(checklist, changes, f"u{batch}"[:32])

    # --- residents -----------------------------------------------------------------------
    async def link(self, identity: Identity, ward_id: int, code: str, head_name: str) -> Checklist:
        """Link a resident to his household. The proof is the head's full name, a household
        of his own group, and few tries: codes run in sequence, so without these anyone could
        walk the ward's list and read names and addresses."""
        since = self._clock.now() - LINK_WINDOW
        async with self._db.session() as session:
            tries = (await session.exec(
                select(sa.func.count()).select_from(AuditLog).where(
                    AuditLog.action == "household.link_failed",
                    AuditLog.actor_member_id == identity.member_id, AuditLog.at >= since,
                )
            )).one()
        if int(tries) >= LINK_TRIES:
            raise ServiceError("too_many_tries")
        info = await self.by_code(ward_id, code)
        failure = None
        if info is None:
            failure = "unknown_household"
        elif identity.role_in_group(ward_id, info.group_id) < Role.RESIDENT:
            failure = "other_group"
        elif fold(head_name) != fold(info.head_name) or not fold(head_name):
            failure = "name_mismatch"
        if failure is not None or info is None:
            async with self._db.session() as session:
                audit.record(session, self._clock, action="household.link_failed",
                             actor_member_id=identity.member_id, ward_id=ward_id,
                             target=normalize_code(code)[:32], reason=failure)
            raise ServiceError(failure or "unknown_household")
        async with self._db.session() as session:
            audit.record(session, self._clock, action="household.link",
                         actor_member_id=identity.member_id, ward_id=ward_id, target=info.code)
            row = await session.get(HouseholdResident, identity.member_id)
            if row is None:
                row = HouseholdResident(member_id=identity.member_id, household_id=info.id)
            row.household_id = info.id
            row.linked_at = self._clock.now()
            session.add(row)
            return await self._checklist(session, info.id)

    async def household_of(self, identity: Identity) -> Checklist | None:
        async with self._db.session() as session:
            row = await session.get(HouseholdResident, identity.member_id)
            if row is None:
                return None
            return await self._checklist(session, row.household_id)

    async def self_report(self, identity: Identity, step_key: str) -> tuple[Checklist, bool]:
        """Record "I did it" for my household; returns whether it is new (not yet reported)."""
        step = self._by_key.get(step_key)
        if step is None:
            raise ServiceError("unknown_step", step=step_key)
        now = self._clock.now()
        async with self._db.session() as session:
            link = await session.get(HouseholdResident, identity.member_id)
            if link is None:
                raise ServiceError("not_linked")
            info = await self._by_id(session, link.household_id)
            assert info is not None
            row = await session.get(HouseholdStep, (info.id, step.key))
            if row is not None and (row.complete or row.reported_at is not None):
                return await self._checklist(session, info.id), False
            if row is None:
                row = HouseholdStep(
                    household_id=info.id, step_key=step.key, group_id=info.group_id,
                    updated_at=now,
                )
            row.reported_at = now
            row.reported_by = identity.member_id
            session.add(row)
            session.add(ProgressEvent(
                household_id=info.id, group_id=info.group_id, step_key=step.key,
                action="reported", before_units=row.units, after_units=row.units,
                actor_member_id=identity.member_id, source="self_report", at=now,
            ))
            return await self._checklist(session, info.id), True

    async def staff_of_group(self, group_id: int) -> list[Staff]:
        """Helpers and leaders of one group, to be told of a resident's self-report."""
        async with self._db.session() as session:
            group = await session.get(ResidentialGroup, group_id)
            if group is None:
                return []
            staff = await holders(session, group.ward_id, {Role.HELPER, Role.LEADER}, group_id)
            return [Staff(h.platform, h.user_id) for h in staff]

    async def reject_report(self, identity: Identity, household_id: int, step_key: str) -> bool:
        """A helper says the self-report is not right (yet): the mark goes, the state stays."""
        async with self._db.session() as session:
            info = await self._writable(session, identity, household_id)
            row = await session.get(HouseholdStep, (household_id, step_key))
            if row is None or row.reported_at is None:
                return False
            row.reported_at = None
            row.reported_by = None
            session.add(row)
            session.add(ProgressEvent(
                household_id=info.id, group_id=info.group_id, step_key=step_key,
                action="report_rejected", before_units=row.units, after_units=row.units,
                actor_member_id=identity.member_id, source="chat", at=self._clock.now(),
            ))
            return True

    async def residents_of(self, household_id: int) -> list[Staff]:
        async with self._db.session() as session:
            rows = (
                await session.exec(
                    select(Member.platform, Member.platform_user_id)
                    .join(HouseholdResident, col(HouseholdResident.member_id) == Member.id)
                    .where(HouseholdResident.household_id == household_id)
                )
            ).all()
            return [Staff(p, u) for p, u in rows]

    async def missing(
        self, group_id: int, step_key: str | None, *, offset: int, limit: int
    ) -> tuple[list[tuple[HouseholdInfo, list[str]]], int]:
        """Households of a group still missing a step (or any step), for the next visits."""
        keys = [step_key] if step_key else [s.key for s in self.steps]
        async with self._db.session() as session:
            done = (
                await session.exec(
                    select(HouseholdStep.household_id, HouseholdStep.step_key).where(
                        HouseholdStep.group_id == group_id, col(HouseholdStep.complete),
                        col(HouseholdStep.step_key).in_(keys),
                    )
                )
            ).all()
            complete: dict[int, set[str]] = {}
            for hid, key in done:
                complete.setdefault(hid, set()).add(key)
            group = await session.get(ResidentialGroup, group_id)
            rows = (
                await session.exec(
                    select(Household).where(Household.group_id == group_id)
                    .order_by(col(Household.code))
                )
            ).all()
        code = group.code if group else ""
        left = []
        for row in rows:
            assert row.id is not None
            missing = [k for k in keys if k not in complete.get(row.id, set())]
            if missing:
                left.append((_info(row, code), missing))
        return left[offset: offset + limit], len(left)

    async def count_in_ward(self, ward_id: int) -> int:
        async with self._db.session() as session:
            result = await session.exec(
                select(sa.func.count()).select_from(Household).where(Household.ward_id == ward_id)
            )
            return int(result.one())


def _is_postgres(session: AsyncSession) -> bool:
    return session.bind is not None and session.bind.dialect.name == "postgresql"
