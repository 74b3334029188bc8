"""Progress counts: per group and step, from the running totals in `group_step_count`.

Every write to `household_step` goes through `bump` (one household) or `recount` (after an
import) in the writer's transaction, so the totals never drift from the states they sum.
Step key `*` holds the group's household and adult counts, the denominators.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.clock import Clock
from bot.config import OnboardingStepConfig
from bot.db import Database, insert_or_skip
from bot.models import (
    GroupStepCount,
    Household,
    HouseholdStep,
    ProgressEvent,
    ResidentialGroup,
)

TOTALS = "*"


@dataclass(frozen=True)
class StepCount:
    key: str
    done: int
    total: int
    households_done: int

    @property
    def percent(self) -> int:
        return round(100 * self.done / self.total) if self.total else 0

    @property
    def ratio(self) -> float:
        return self.done / self.total if self.total else 0.0


@dataclass(frozen=True)
class GroupProgress:
    group_id: int
    code: str
    name: str
    households: int
    adults: int
    steps: dict[str, StepCount] = field(default_factory=dict)

    @property
    def overall(self) -> StepCount:
        """All steps together, as the share of all units done."""
        done = sum(s.done for s in self.steps.values())
        total = sum(s.total for s in self.steps.values())
        return StepCount("", done, total, 0)


@dataclass(frozen=True)
class WardProgress:
    groups: list[GroupProgress]
    steps: list[OnboardingStepConfig]

    def step_total(self, key: str) -> StepCount:
        counts = [g.steps[key] for g in self.groups if key in g.steps]
        return StepCount(
            key, sum(c.done for c in counts), sum(c.total for c in counts),
            sum(c.households_done for c in counts),
        )

    @property
    def overall(self) -> StepCount:
        parts = [self.step_total(s.key) for s in self.steps]
        return StepCount("", sum(p.done for p in parts), sum(p.total for p in parts), 0)

    def ranked(self, key: str | None = None) -> list[tuple[GroupProgress, StepCount]]:
        """Groups best first, by one step or all steps; ties by code for a stable order."""
        pairs = [(g, g.steps[key] if key else g.overall) for g in self.groups]
        return sorted(pairs, key=lambda p: (-p[1].ratio, -p[1].done, p[0].code))


async def lock_groups(
    session: AsyncSession, *, group_id: int | None = None, ward_id: int | None = None
) -> None:
    """Serialise writers of one group's (or a ward's) states and totals: a mark waits for
    another mark of the same group, or for an import, instead of both inserting the same
    row. PostgreSQL row locks on the groups; SQLite has one writer at a time anyway."""
    if session.bind is None or session.bind.dialect.name != "postgresql":
        return
    query = select(ResidentialGroup.id)
    query = query.where(ResidentialGroup.id == group_id) if group_id is not None else \
        query.where(ResidentialGroup.ward_id == ward_id)
    await session.exec(query.order_by(col(ResidentialGroup.id)).with_for_update())


async def bump(
    session: AsyncSession, group_id: int, step_key: str, units: int, households: int
) -> None:
    """Add a household's change to its group's totals (inside the change's transaction)."""
    if not units and not households:
        return
    name = session.bind.dialect.name if session.bind else "sqlite"
    statement = insert_or_skip(name, GroupStepCount).values(
        group_id=group_id, step_key=step_key, units=units, households=households,
    )
    await session.exec(statement.on_conflict_do_update(
        index_elements=["group_id", "step_key"],
        set_={"units": GroupStepCount.units + units,
              "households": GroupStepCount.households + households},
    ))


async def recount(session: AsyncSession, ward_id: int) -> None:
    """Rebuild a ward's totals from the states (after an import moved or changed many)."""
    await lock_groups(session, ward_id=ward_id)
    group_ids = select(ResidentialGroup.id).where(ResidentialGroup.ward_id == ward_id)
    await session.exec(
        sa.delete(GroupStepCount).where(col(GroupStepCount.group_id).in_(group_ids))
    )
    totals = await session.exec(
        select(Household.group_id, sa.func.count(), sa.func.sum(Household.adults))
        .where(Household.ward_id == ward_id)
        .group_by(col(Household.group_id))
    )
    rows: list[dict[str, object]] = [
        {"group_id": g, "step_key": TOTALS, "units": int(adults or 0), "households": int(n)}
        for g, n, adults in totals.all()
    ]
    steps = await session.exec(
        select(
            HouseholdStep.group_id, HouseholdStep.step_key,
            sa.func.sum(HouseholdStep.units),
            sa.func.sum(sa.case((col(HouseholdStep.complete), 1), else_=0)),
        )
        .where(col(HouseholdStep.group_id).in_(group_ids))
        .group_by(col(HouseholdStep.group_id), col(HouseholdStep.step_key))
    )
    rows += [
        {"group_id": g, "step_key": k, "units": int(u or 0), "households": int(h or 0)}
        for g, k, u, h in steps.all()
    ]
    if rows:
        await session.exec(sa.insert(GroupStepCount), params=rows)


class Progress:
    def __init__(self, db: Database, clock: Clock, steps: Sequence[OnboardingStepConfig]) -> None:
        self._db = db
        self._clock = clock
        self.steps = list(steps)

    def step(self, key: str) -> OnboardingStepConfig | None:
        return next((s for s in self.steps if s.key == key), None)

    async def ward(self, ward_id: int, group_ids: Iterable[int] | None = None) -> WardProgress:
        # Plain columns, not ORM objects: this runs on every /tiendo over up to
        # thousands of rows, and building objects cost most of the time.
        async with self._db.session() as session:
            query = select(ResidentialGroup.id, ResidentialGroup.code, ResidentialGroup.name
                           ).where(ResidentialGroup.ward_id == ward_id)
            if group_ids is not None:
                query = query.where(col(ResidentialGroup.id).in_(list(group_ids)))
            groups = (await session.exec(query.order_by(col(ResidentialGroup.code)))).all()
            counts = (
                await session.exec(
                    select(GroupStepCount.group_id, GroupStepCount.step_key,
                           GroupStepCount.units, GroupStepCount.households)
                    .join(ResidentialGroup,
                          col(ResidentialGroup.id) == col(GroupStepCount.group_id))
                    .where(ResidentialGroup.ward_id == ward_id)
                )
            ).all()
        by_group: dict[int, dict[str, tuple[int, int]]] = {}
        for group_id, key, units, households_done in counts:
            by_group.setdefault(group_id, {})[key] = (units, households_done)
        result = []
        for gid, code, name in groups:
            assert gid is not None
            mine = by_group.get(gid, {})
            adults, households = mine.get(TOTALS, (0, 0))
            steps = {}
            for s in self.steps:
                done, whole = mine.get(s.key, (0, 0))
                total = adults if s.per == "adult" else households
                steps[s.key] = StepCount(s.key, done, total, whole)
            result.append(GroupProgress(gid, code, name, households, adults, steps))
        return WardProgress(result, self.steps)

    async def change_by_group(self, ward_id: int, since: datetime) -> dict[int, int]:
        """Units gained per group since a moment (today's line in the daily digest)."""
        async with self._db.session() as session:
            rows = await session.exec(
                select(
                    ProgressEvent.group_id,
                    sa.func.sum(ProgressEvent.after_units - ProgressEvent.before_units),
                )
                .join(ResidentialGroup, col(ResidentialGroup.id) == ProgressEvent.group_id)
                .where(ResidentialGroup.ward_id == ward_id, ProgressEvent.at >= since)
                .group_by(col(ProgressEvent.group_id))
            )
            return {gid: int(delta or 0) for gid, delta in rows.all()}

    async def change_since(self, group_id: int, since: datetime) -> dict[str, int]:
        """Units gained (or lost) per step since a moment: "this week: +12"."""
        async with self._db.session() as session:
            rows = await session.exec(
                select(
                    ProgressEvent.step_key,
                    sa.func.sum(ProgressEvent.after_units - ProgressEvent.before_units),
                )
                .where(ProgressEvent.group_id == group_id, ProgressEvent.at >= since)
                .group_by(col(ProgressEvent.step_key))
            )
            return {key: int(delta or 0) for key, delta in rows.all()}
