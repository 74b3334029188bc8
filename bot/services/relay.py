"""Relay through the group leaders: how each residential group is reached, who forwards
for it, and the state of every message someone must forward.

A group is reached `direct` (the bot posts into its bound chat), by `relay` (a person — the
group's leader unless someone is named — gets the text in his private chat, forwards it and
confirms), or `both`. Without a choice: direct when a chat the bot can post to is bound,
else relay. Most residents' Zalo groups can only be reached by relay (PLATFORMS.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.clock import Clock
from bot.db import Database
from bot.models import (
    ChatBinding,
    Delivery,
    GroupReach,
    Member,
    RelayTask,
    ResidentialGroup,
    RoleGrant,
)
from bot.roles import Role
from bot.services import audit
from bot.services.access import Identity
from bot.services.errors import ServiceError

MODES = ("direct", "relay", "both")


@dataclass(frozen=True)
class RelayPerson:
    member_id: int
    platform: str
    user_id: str
    name: str


@dataclass(frozen=True)
class Reach:
    """How one group is reached now."""

    group_id: int
    group_code: str
    group_name: str
    chosen: str  # "auto" or one of MODES
    direct: bool  # the bot posts into a bound chat
    relay: bool  # a person forwards
    chats: int  # active bound chats the bot can post to
    person: RelayPerson | None
    named: bool  # the person was named (not the group's leader by default)

    @property
    def mode(self) -> str:
        """direct, relay, both, or none (nothing reaches this group)."""
        if self.direct and self.relay:
            return "both"
        if self.direct:
            return "direct"
        return "relay" if self.relay else "none"


@dataclass(frozen=True)
class TaskView:
    id: int
    kind: str
    ref_id: int
    ward_id: int
    group_id: int
    group_code: str
    state: str
    platform: str
    user_id: str
    text: str
    author_member_id: int | None
    delivered_at: datetime | None


@dataclass
class Summary:
    """Per group, one outcome: reached directly, relayed (confirmed), waiting, failed."""

    direct: int = 0
    relayed: int = 0
    waiting: int = 0
    failed: int = 0
    waiting_groups: list[str] = field(default_factory=list)
    failed_groups: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return self.direct + self.relayed + self.waiting + self.failed


@dataclass(frozen=True)
class Confirmed:
    task: TaskView
    already: bool


class Relays:
    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    # --- how groups are reached ---------------------------------------------------------
    async def reach(self, ward_id: int, group_ids: Sequence[int] | None = None
                    ) -> dict[int, Reach]:
        async with self._db.session() as session:
            query = select(ResidentialGroup).where(ResidentialGroup.ward_id == ward_id)
            if group_ids is not None:
                query = query.where(col(ResidentialGroup.id).in_(list(group_ids)))
            groups = list((await session.exec(query.order_by(col(ResidentialGroup.code)))).all())
            ids = [g.id for g in groups if g.id is not None]
            chats: dict[int, int] = {}
            for gid, n in (await session.exec(
                select(ChatBinding.group_id, sa.func.count()).where(
                    col(ChatBinding.group_id).in_(ids), col(ChatBinding.active).is_(True),
                    col(ChatBinding.can_post).is_(True),
                ).group_by(col(ChatBinding.group_id))
            )).all():
                if gid is not None:
                    chats[int(gid)] = int(n)
            choices = {r.group_id: r for r in (await session.exec(
                select(GroupReach).where(col(GroupReach.group_id).in_(ids)))).all()}
            people = await self._people(session, ids, choices)
        result: dict[int, Reach] = {}
        for g in groups:
            assert g.id is not None
            choice = choices.get(g.id)
            chosen = choice.mode if choice else "auto"
            bound = chats.get(g.id, 0)
            if chosen == "auto":
                direct, relay = bound > 0, bound == 0
            else:
                direct, relay = chosen in ("direct", "both"), chosen in ("relay", "both")
            person = people.get(g.id)
            result[g.id] = Reach(
                g.id, g.code, g.name, chosen, direct and bound > 0, relay, bound, person,
                bool(choice and choice.relay_member_id),
            )
        return result

    async def _people(self, session: AsyncSession, group_ids: list[int],
                      choices: dict[int, GroupReach]) -> dict[int, RelayPerson]:
        """Each group's relay person: the one named, else its longest-serving leader."""
        found: dict[int, RelayPerson] = {}
        named = {gid: c.relay_member_id for gid, c in choices.items() if c.relay_member_id}
        if named:
            members = {m.id: m for m in (await session.exec(
                select(Member).where(col(Member.id).in_(list(named.values()))))).all()}
            for gid, mid in named.items():
                m = members.get(mid)
                if m is not None and m.id is not None:
                    found[gid] = RelayPerson(m.id, m.platform, m.platform_user_id,
                                             m.display_name)
        rows = (await session.exec(
            select(RoleGrant.group_id, Member)
            .join(Member, col(Member.id) == col(RoleGrant.member_id))
            .where(col(RoleGrant.group_id).in_(group_ids), col(RoleGrant.revoked_at).is_(None),
                   RoleGrant.role == Role.LEADER.value)
            .order_by(col(RoleGrant.id))
        )).all()
        for group_id, leader in rows:
            if group_id is not None and group_id not in found and leader.id is not None:
                found[int(group_id)] = RelayPerson(leader.id, leader.platform,
                                                   leader.platform_user_id, leader.display_name)
        return found

    async def set_mode(self, identity: Identity, ward_id: int, group_id: int, mode: str) -> None:
        """A leader of the group or a coordinator chooses how it is reached."""
        if mode not in (*MODES, "auto"):
            raise ServiceError("bad_mode")
        if identity.role_in_group(ward_id, group_id) < Role.LEADER:
            raise ServiceError("not_allowed")
        await self._save(identity, ward_id, group_id, mode=mode)

    async def set_person(self, identity: Identity, ward_id: int, group_id: int) -> None:
        """The caller (a helper or leader of the group) becomes the one who forwards."""
        if identity.role_in_group(ward_id, group_id) < Role.HELPER:
            raise ServiceError("not_allowed")
        await self._save(identity, ward_id, group_id, person=identity.member_id)

    async def _save(self, identity: Identity, ward_id: int, group_id: int, *,
                    mode: str | None = None, person: int | None = None) -> None:
        async with self._db.session() as session:
            group = await session.get(ResidentialGroup, group_id)
            if group is None or group.ward_id != ward_id:
                raise ServiceError("unknown_group")
            row = await session.get(GroupReach, group_id) or GroupReach(group_id=group_id)
            if mode is not None:
                row.mode = mode
            if person is not None:
                row.relay_member_id = person
            row.updated_at = self._clock.now()
            row.updated_by = identity.member_id
            session.add(row)
            audit.record(session, self._clock, action="group.reach",
                         actor_member_id=identity.member_id, ward_id=ward_id,
                         target=f"group:{group_id}", mode=row.mode,
                         relay_member_id=row.relay_member_id)

    # --- tasks ------------------------------------------------------------------------
    async def create_tasks(self, *, kind: str, ref_id: int, ward_id: int,
                           author_member_id: int | None, reaches: Sequence[Reach],
                           text: str, run: str = "") -> list[TaskView]:
        """One task per group to relay; groups without a relay person are `failed` at once."""
        now = self._clock.now()
        rows: list[RelayTask] = []
        async with self._db.session() as session:
            for reach in reaches:
                person = reach.person
                row = RelayTask(
                    kind=kind, ref_id=ref_id, run=run[:40], ward_id=ward_id,
                    group_id=reach.group_id,
                    member_id=person.member_id if person else None,
                    author_member_id=author_member_id,
                    platform=person.platform if person else "",
                    user_id=person.user_id if person else "", text=text,
                    state="queued" if person else "failed",
                    error="" if person else "no_relay_person", created_at=now,
                )
                session.add(row)
                rows.append(row)
            await session.flush()
            codes = {r.group_id: r.group_code for r in reaches}
            return [self._view(r, codes.get(r.group_id, "")) for r in rows]

    async def task(self, task_id: int) -> TaskView | None:
        async with self._db.session() as session:
            row = await session.get(RelayTask, task_id)
            if row is None:
                return None
            group = await session.get(ResidentialGroup, row.group_id)
            return self._view(row, group.code if group else "")

    async def delivered(self, task_id: int, ok: bool) -> TaskView | None:
        """The text reached the relay person (→ waiting), or could not (→ failed)."""
        async with self._db.session() as session:
            row = await session.get(RelayTask, task_id)
            if row is None or row.state != "queued":
                return None
            row.state = "waiting" if ok else "failed"
            row.error = "" if ok else "not_delivered"
            row.delivered_at = self._clock.now() if ok else None
            session.add(row)
            group = await session.get(ResidentialGroup, row.group_id)
            return self._view(row, group.code if group else "")

    async def cancel(self, kind: str, ref_id: int) -> list[int]:
        """The message was cancelled before it went: its tasks not yet delivered end."""
        async with self._db.session() as session:
            rows = (await session.exec(select(RelayTask).where(
                RelayTask.kind == kind, RelayTask.ref_id == ref_id,
                RelayTask.state == "queued"))).all()
            for row in rows:
                row.state = "cancelled"
                session.add(row)
            return [r.id for r in rows if r.id is not None]

    async def queued(self, kind: str, ref_id: int) -> int:
        async with self._db.session() as session:
            return int((await session.exec(select(sa.func.count()).select_from(RelayTask).where(
                RelayTask.kind == kind, RelayTask.ref_id == ref_id,
                RelayTask.state == "queued"))).one())

    async def confirm(self, identity: Identity, task_id: int) -> Confirmed:
        """The relay person says he forwarded it (his own task, or any as coordinator)."""
        async with self._db.session() as session:
            row = await session.get(RelayTask, task_id)
            if row is None:
                raise ServiceError("unknown_task")
            mine = row.member_id == identity.member_id or (
                row.platform == identity.platform and row.user_id == identity.user_id)
            if not mine and identity.role_in_ward(row.ward_id) < Role.COORDINATOR:
                raise ServiceError("not_yours")
            already = row.state == "confirmed"
            if not already:
                if row.state not in ("waiting", "queued"):
                    raise ServiceError("not_waiting")
                row.state = "confirmed"
                row.confirmed_at = self._clock.now()
                session.add(row)
                audit.record(session, self._clock, action="relay.confirm",
                             actor_member_id=identity.member_id, ward_id=row.ward_id,
                             target=f"relay:{task_id}", kind=row.kind, ref_id=row.ref_id)
            group = await session.get(ResidentialGroup, row.group_id)
            return Confirmed(self._view(row, group.code if group else ""), already)

    async def waiting_for(self, identity: Identity) -> list[TaskView]:
        """What this person still has to forward, oldest first."""
        async with self._db.session() as session:
            rows = (await session.exec(
                select(RelayTask, ResidentialGroup.code)
                .join(ResidentialGroup, col(ResidentialGroup.id) == col(RelayTask.group_id))
                .where(RelayTask.platform == identity.platform,
                       RelayTask.user_id == identity.user_id, RelayTask.state == "waiting")
                .order_by(col(RelayTask.id)))).all()
            return [self._view(r, code) for r, code in rows]

    async def summary(self, kind: str, ref_id: int, group_ids: Sequence[int]) -> Summary:
        """What became of one message, group by group."""
        async with self._db.session() as session:
            deliveries = (await session.exec(
                select(Delivery.group_id, Delivery.state).where(
                    Delivery.kind == kind, Delivery.ref_id == ref_id))).all()
            tasks = {r.group_id: r for r in (await session.exec(
                select(RelayTask).where(RelayTask.kind == kind,
                                        RelayTask.ref_id == ref_id))).all()}
            codes = dict((await session.exec(
                select(ResidentialGroup.id, ResidentialGroup.code)
                .where(col(ResidentialGroup.id).in_(list(group_ids))))).all())
        sent = {g for g, state in deliveries if state == "sent"}
        direct_tried = {g for g, _ in deliveries}
        result = Summary()
        for gid in sorted(group_ids, key=lambda g: codes.get(g, "")):
            code = codes.get(gid, "?")
            task = tasks.get(gid)
            if gid in sent:
                result.direct += 1
            elif task is not None and task.state == "confirmed":
                result.relayed += 1
            elif task is not None and task.state in ("waiting", "queued"):
                result.waiting += 1
                result.waiting_groups.append(code)
            elif task is not None and task.state == "cancelled":
                continue  # the message was cancelled before it went
            elif task is not None or gid in direct_tried:
                result.failed += 1
                result.failed_groups.append(code)
        return result

    async def source_groups(self, kind: str, ref_id: int) -> list[int]:
        """The groups one message went to: by chat or by relay."""
        async with self._db.session() as session:
            direct = (await session.exec(select(Delivery.group_id).where(
                Delivery.kind == kind, Delivery.ref_id == ref_id))).all()
            relayed = (await session.exec(select(RelayTask.group_id).where(
                RelayTask.kind == kind, RelayTask.ref_id == ref_id))).all()
        return sorted({int(g) for g in (*direct, *relayed) if g is not None})

    async def to_remind(self, before: datetime) -> list[TaskView]:
        """Waiting tasks delivered before `before` and never reminded; marked reminded."""
        return await self._take(col(RelayTask.delivered_at) < before,
                                col(RelayTask.reminded_at).is_(None), stamp="reminded_at")

    async def to_escalate(self, before: datetime) -> list[TaskView]:
        """Waiting tasks reminded before `before`, their sender not yet told; marked told."""
        return await self._take(col(RelayTask.reminded_at) < before,
                                col(RelayTask.escalated_at).is_(None), stamp="escalated_at")

    async def _take(self, *conditions: sa.ColumnElement[bool], stamp: str) -> list[TaskView]:
        now = self._clock.now()
        async with self._db.session() as session:
            rows = (await session.exec(
                select(RelayTask, ResidentialGroup.code)
                .join(ResidentialGroup, col(ResidentialGroup.id) == col(RelayTask.group_id))
                .where(RelayTask.state == "waiting", *conditions)
                .order_by(col(RelayTask.id)).with_for_update(skip_locked=True, of=RelayTask)
            )).all()
            views = []
            for row, code in rows:
                setattr(row, stamp, now)
                session.add(row)
                views.append(self._view(row, code))
            return views

    def _view(self, row: RelayTask, code: str) -> TaskView:
        assert row.id is not None
        return TaskView(row.id, row.kind, row.ref_id, row.ward_id, row.group_id, code,
                        row.state, row.platform, row.user_id, row.text, row.author_member_id,
                        row.delivered_at)
