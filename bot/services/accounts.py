"""One person, two apps: link a Telegram and a Zalo account so roles and household links
follow the person. The person proves both accounts are theirs: a code made on one app is
typed on the other within ten minutes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import col, select

from bot.clock import Clock
from bot.db import Database
from bot.models import LinkCode, Member
from bot.services import audit
from bot.services.access import Identity
from bot.services.errors import ServiceError
from bot.services.invites import new_code

CODE_LIFETIME = timedelta(minutes=10)


@dataclass(frozen=True)
class LinkOffer:
    code: str
    expires_at: datetime


@dataclass(frozen=True)
class Linked:
    other_platform: str
    already: bool


class Accounts:
    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    async def offer(self, identity: Identity) -> LinkOffer:
        now = self._clock.now()
        async with self._db.session() as session:
            # One live code per person: older ones stop working.
            await session.exec(
                sa.update(LinkCode)
                .where(col(LinkCode.member_id) == identity.member_id)
                .values(used=True)
            )
            row = LinkCode(
                code=new_code(), member_id=identity.member_id, created_at=now,
                expires_at=now + CODE_LIFETIME,
            )
            session.add(row)
            return LinkOffer(code=row.code, expires_at=row.expires_at)

    async def redeem(self, identity: Identity, code: str) -> Linked:
        now = self._clock.now()
        async with self._db.session() as session:
            row = (
                await session.exec(
                    select(LinkCode).where(LinkCode.code == code.strip().upper())
                    .with_for_update()  # two people typing the same code: one wins
                )
            ).first()
            if row is None or row.used:
                raise ServiceError("unknown")
            if row.expires_at <= now:
                raise ServiceError("expired")
            first = await session.get(Member, row.member_id)
            second = await session.get(Member, identity.member_id)
            assert first is not None and second is not None
            if first.id == second.id:
                raise ServiceError("same_account")
            if first.platform == second.platform:
                raise ServiceError("same_platform")
            already = first.person_id is not None and first.person_id == second.person_id
            if not already:
                # One person, one account per app: joining two people who between them hold
                # two accounts of the same app would hand roles to a second account.
                accounts = [m for m in (first, second) if m.person_id is None]
                people = {p for p in (first.person_id, second.person_id) if p is not None}
                if people:
                    accounts += list((await session.exec(
                        select(Member).where(col(Member.person_id).in_(people)))).all())
                platforms = [m.platform for m in {m.id: m for m in accounts}.values()]
                if len(platforms) != len(set(platforms)):
                    raise ServiceError("same_platform")
            row.used = True
            session.add(row)
            if not already:
                person = first.person_id or second.person_id or first.id
                old = {p for p in (first.person_id, second.person_id) if p is not None}
                if old:
                    await session.exec(
                        sa.update(Member).where(col(Member.person_id).in_(old)).values(
                            person_id=person
                        )
                    )
                for member in (first, second):
                    member.person_id = person
                    session.add(member)
                audit.record(
                    session, self._clock, action="account.link",
                    actor_member_id=identity.member_id, ward_id=identity.ward_id,
                    target=f"member:{first.id}", other=f"member:{second.id}",
                )
            return Linked(other_platform=first.platform, already=already)
