"""Notices to group chats: who may send where, scheduling, cancelling, delivery reports.

A notice becomes one outbox row per target chat at once, due at its send time; the outbox
is the schedule, so a restart loses nothing and cancelling is deleting the pending rows.
Scope is checked on the server for every target: a leader reaches his groups only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import col, select

from bot.clock import Clock
from bot.core import Button
from bot.db import Database
from bot.delivery.outbox import NewDelivery, Outbox
from bot.models import Notice, ResidentialGroup
from bot.roles import Role
from bot.services import audit
from bot.services.access import Identity
from bot.services.chats import Chats
from bot.services.errors import ServiceError
from bot.services.places import GroupInfo, Places
from bot.services.relay import Relays, Summary, TaskView
from bot.services.relay_delivery import RelayDelivery

MAX_TEXT = 8000
PAST_TOLERANCE = timedelta(minutes=1)


# A notice's own text per target chat (a guide's post carries a link for its group).
Compose = Callable[["Target"], tuple[str, Sequence[Sequence[Button]]]]


def delivery_key(notice_id: int, platform: str, chat_id: str) -> str:
    """The outbox row of one notice to one chat."""
    return f"notice:{notice_id}:{platform}:{chat_id}"


@dataclass(frozen=True)
class Target:
    group_id: int
    group_code: str
    platform: str
    chat_id: str
    title: str


@dataclass(frozen=True)
class Created:
    notice_id: int
    targets: list[Target]
    groups_without_chat: list[str]
    send_at: datetime
    relayed: list[TaskView] = field(default_factory=list)  # groups reached through a person


@dataclass(frozen=True)
class NoticeView:
    id: int
    text: str
    send_at: datetime
    state: str
    group_codes: list[str]
    author_member_id: int
    group_ids: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class DeliveryLine:
    title: str
    group_code: str
    state: str
    error: str


def allowed_groups(
    identity: Identity, ward_id: int, groups: Sequence[GroupInfo]
) -> list[GroupInfo]:
    """A coordinator reaches every group of his ward, a leader his own groups."""
    return [g for g in groups if identity.role_in_group(ward_id, g.id) >= Role.LEADER]


class Notices:
    def __init__(
        self, db: Database, clock: Clock, outbox: Outbox, chats: Chats, places: Places,
        *, relays: Relays | None = None, relay: RelayDelivery | None = None,
    ) -> None:
        self._db = db
        self._clock = clock
        self._outbox = outbox
        self._chats = chats
        self._places = places
        self._relays = relays
        self._relay = relay

    async def allowed(self, identity: Identity, ward_id: int) -> list[GroupInfo]:
        return allowed_groups(identity, ward_id, await self._places.groups(ward_id))

    async def create(
        self,
        identity: Identity,
        ward_id: int,
        *,
        raw_text: str,
        rendered: str,
        group_ids: Sequence[int],
        send_at: datetime | None = None,
        pin: bool = False,
        attachment: Mapping[str, Any] | None = None,
        wake: bool = True,
        compose: Compose | None = None,
    ) -> Created:
        """Queue the notice. `wake=False` leaves the outbox asleep until the caller wakes
        it, so the chat can confirm to the author before the delivery report arrives."""
        now = self._clock.now()
        if not raw_text.strip() and not attachment:
            raise ServiceError("empty")
        if len(raw_text) > MAX_TEXT:
            raise ServiceError("too_long", limit=MAX_TEXT)
        when = send_at or now
        if when < now - PAST_TOLERANCE:
            raise ServiceError("past")
        allowed = {g.id: g for g in await self.allowed(identity, ward_id)}
        if not group_ids:
            raise ServiceError("no_targets")
        refused = [gid for gid in group_ids if gid not in allowed]
        if refused:
            raise ServiceError("not_your_group")
        chats = await self._chats.active_by_group(ward_id)
        # How each group is reached: its bound chat, a person who forwards, or both.
        reaches = await self._relays.reach(ward_id, group_ids) if self._relays else {}
        direct = [gid for gid in group_ids if gid not in reaches or reaches[gid].direct]
        by_relay = [reaches[gid] for gid in group_ids
                    if gid in reaches and reaches[gid].relay and reaches[gid].person]
        relayed_ids = {r.group_id for r in by_relay}
        targets = [
            Target(gid, allowed[gid].code, b.platform, b.chat_id, b.title)
            for gid in direct for b in chats.get(gid, [])
        ]
        reached = {t.group_id for t in targets} | relayed_ids
        without = [allowed[gid].code for gid in group_ids if gid not in reached]
        if not targets and not by_relay:
            raise ServiceError("no_chats", groups=without)
        async with self._db.session() as session:
            notice = Notice(
                ward_id=ward_id, author_member_id=identity.member_id, text=raw_text,
                attachment=dict(attachment or {}), group_ids=list(group_ids), pin=pin,
                send_at=when, state="scheduled", created_at=now,
            )
            session.add(notice)
            await session.flush()
            assert notice.id is not None
            audit.record(
                session, self._clock, action="notice.create", actor_member_id=identity.member_id,
                ward_id=ward_id, target=f"notice:{notice.id}", groups=list(group_ids),
                send_at=when.isoformat(),
            )
            notice_id = notice.id
        bodies = [compose(t) if compose else (rendered, ()) for t in targets]
        await self._outbox.enqueue(wake=wake, items=[
            NewDelivery(
                kind="notice", ref_id=notice_id,
                dedupe=delivery_key(notice_id, t.platform, t.chat_id), platform=t.platform,
                chat_id=t.chat_id, text=text, ward_id=ward_id, group_id=t.group_id,
                buttons=buttons, attachment=dict(attachment or {}), pin=pin, not_before=when,
            )
            for t, (text, buttons) in zip(targets, bodies, strict=True)
        ])
        relayed: list[TaskView] = []
        if by_relay and self._relay is not None:
            ward = await self._places.ward(ward_id)
            relayed = await self._relay.send(
                kind="notice", ref_id=notice_id, ward_id=ward_id,
                ward_name=ward.name if ward else "", author_member_id=identity.member_id,
                reaches=by_relay, body=rendered, when=when, wake=wake)
        return Created(notice_id, targets, without, when, relayed)

    async def ward_of(self, notice_id: int) -> int | None:
        """The ward a notice went to; None when there is no such notice."""
        async with self._db.session() as session:
            row = await session.get(Notice, notice_id)
        return None if row is None else row.ward_id

    async def reach_summary(self, identity: Identity, notice_id: int) -> Summary | None:
        """Per group: reached directly, relayed (confirmed), waiting, failed — for the
        notice's author and the ward's coordinators."""
        async with self._db.session() as session:
            row = await session.get(Notice, notice_id)
        if row is None or self._relays is None:
            return None
        if row.author_member_id != identity.member_id and \
                identity.role_in_ward(row.ward_id) < Role.COORDINATOR:
            return None
        return await self._relays.summary("notice", notice_id, [int(g) for g in row.group_ids])

    async def all_sent(self, notice_id: int) -> bool:
        """Every direct row final and every relay text delivered (or failed)."""
        counts = await self._outbox.counts("notice", notice_id)
        if any(state not in ("sent", "failed") for state in counts):
            return False
        return not (self._relays and await self._relays.queued("notice", notice_id))

    async def scheduled(self, identity: Identity, ward_id: int) -> list[NoticeView]:
        """Notices still to go: the author's own, or the ward's for a coordinator."""
        now = self._clock.now()
        async with self._db.session() as session:
            query = select(Notice).where(
                Notice.ward_id == ward_id, Notice.state == "scheduled", Notice.send_at > now
            )
            if identity.role_in_ward(ward_id) < Role.COORDINATOR:
                query = query.where(Notice.author_member_id == identity.member_id)
            rows = (await session.exec(query.order_by(col(Notice.send_at)))).all()
            codes = await self._codes(session, {g for r in rows for g in r.group_ids})
        return [self._view(r, codes) for r in rows]

    async def cancel(self, identity: Identity, notice_id: int) -> NoticeView:
        async with self._db.session() as session:
            row = await session.get(Notice, notice_id)
            if row is None:
                raise ServiceError("unknown")
            mine = row.author_member_id == identity.member_id
            if not mine and identity.role_in_ward(row.ward_id) < Role.COORDINATOR:
                raise ServiceError("not_yours")
            if row.state != "scheduled":
                raise ServiceError("already_sent")
            row.state = "cancelled"
            session.add(row)
            audit.record(
                session, self._clock, action="notice.cancel", actor_member_id=identity.member_id,
                ward_id=row.ward_id, target=f"notice:{notice_id}",
            )
            codes = await self._codes(session, set(row.group_ids))
            view = self._view(row, codes)
        await self._outbox.cancel("notice", notice_id)
        if self._relay is not None:
            await self._relay.cancel("notice", notice_id)
        return view

    async def finish(self, notice_id: int) -> tuple[NoticeView, list[DeliveryLine]] | None:
        """Mark a notice delivered, once: the caller that gets the lines sends the report."""
        async with self._db.session() as session:
            result = await session.exec(
                sa.update(Notice).where(col(Notice.id) == notice_id,
                                        col(Notice.reported).is_(False))
                .values(reported=True, state="sent")
            )
            if result.rowcount != 1:
                return None
            row = await session.get(Notice, notice_id)
            assert row is not None
            codes = await self._codes(session, set(row.group_ids))
            view = self._view(row, codes)
        deliveries = await self._outbox.rows("notice", notice_id)
        lines = []
        for d in deliveries:
            title = ""
            if d.state != "sent":  # only failures are named in the report
                binding = await self._chats.binding(d.platform, d.chat_id)
                title = binding.title if binding else ""
            lines.append(DeliveryLine(title or d.chat_id, codes.get(d.group_id or 0, ""),
                                      d.state, d.error.split(":")[0]))
        return view, lines

    async def _codes(self, session: Any, group_ids: set[int]) -> dict[int, str]:
        if not group_ids:
            return {}
        rows = (
            await session.exec(
                select(ResidentialGroup.id, ResidentialGroup.code)
                .where(col(ResidentialGroup.id).in_(group_ids))
            )
        ).all()
        return {int(i): c for i, c in rows}

    def _view(self, row: Notice, codes: dict[int, str]) -> NoticeView:
        assert row.id is not None
        return NoticeView(
            id=row.id, text=row.text, send_at=row.send_at, state=row.state,
            group_codes=sorted(codes.get(g, "?") for g in row.group_ids),
            author_member_id=row.author_member_id,
            group_ids=[int(g) for g in row.group_ids],
        )
