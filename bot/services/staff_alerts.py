"""Telling the people who run the bot that a platform needs them: the Zalo bot's monthly
quota is used up (and back), the OA must be authorised again. Each alert is queued once per
person (its `key` is the dedupe), in the person's private chat, preferring an account that
is not on the platform in trouble."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from sqlmodel import col, select

from bot.clock import Clock
from bot.db import Database
from bot.delivery.outbox import NewDelivery, Outbox
from bot.models import ChatBinding, Member, RoleGrant
from bot.roles import Role


class StaffAlerts:
    def __init__(self, db: Database, clock: Clock, outbox: Outbox,
                 admins: Mapping[str, Iterable[str]]) -> None:
        self._db = db
        self._clock = clock
        self._outbox = outbox
        self._admins = {p: [str(i) for i in ids] for p, ids in admins.items()}

    async def recipients(self, troubled: str) -> list[tuple[str, str]]:
        """(platform, user id): the admins, and the coordinators of the wards that use the
        troubled platform (every ward if none is bound to it yet)."""
        people: dict[tuple[str, str], None] = {}
        for platform, ids in self._admins.items():
            for user_id in ids:
                people[(platform, user_id)] = None
        async with self._db.session() as session:
            wards = set((await session.exec(
                select(ChatBinding.ward_id).where(
                    ChatBinding.platform == troubled, col(ChatBinding.ward_id).is_not(None))
            )).all())
            query = (
                select(Member)
                .join(RoleGrant, col(RoleGrant.member_id) == Member.id)
                .where(RoleGrant.role == Role.COORDINATOR.value,
                       col(RoleGrant.revoked_at).is_(None))
            )
            if wards:
                query = query.where(col(RoleGrant.ward_id).in_(wards))
            members = list((await session.exec(query.distinct())).all())
            for member in members:
                chosen = member
                if member.platform == troubled and member.person_id is not None:
                    other = (await session.exec(select(Member).where(
                        Member.person_id == member.person_id, Member.platform != troubled,
                    ))).first()
                    chosen = other or member
                people[(chosen.platform, chosen.platform_user_id)] = None
        return list(people)

    async def tell(self, troubled: str, key: str, text: str) -> int:
        """Queue `text` to every recipient, once per `key`; returns how many were offered."""
        people = await self.recipients(troubled)
        return await self._outbox.enqueue([
            NewDelivery(kind="staff_alert", ref_id=None, dedupe=f"alert:{key}:{p}:{u}",
                        platform=p, chat_id=u, text=text, is_group=False, priority=1)
            for p, u in people
        ])
