"""One-time sign-in links for the dashboard: sent in a private chat, valid ten minutes, usable
once. Only a hash of the token is stored, so a database dump opens no sessions."""

from __future__ import annotations

import secrets
from datetime import timedelta

from bot.clock import Clock
from bot.db import Database
from bot.models import DashboardLogin
from bot.services import audit
from bot.services.access import Identity
from bot.services.one_time import token_hash, usable, use_up

LINK_LIFETIME = timedelta(minutes=10)


class DashboardLogins:
    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    async def create(self, identity: Identity) -> str:
        token = secrets.token_urlsafe(32)
        now = self._clock.now()
        async with self._db.session() as session:
            session.add(
                DashboardLogin(
                    token_hash=token_hash(token), member_id=identity.member_id, created_at=now,
                    expires_at=now + LINK_LIFETIME,
                )
            )
            audit.record(
                session, self._clock, action="dashboard.link",
                actor_member_id=identity.member_id, ward_id=identity.ward_id,
            )
        return token

    async def valid(self, token: str) -> bool:
        """Whether a link would still sign in, without using it up (the confirm page)."""
        async with self._db.session() as session:
            return await usable(session, DashboardLogin, token, self._clock.now()) is not None

    async def redeem(self, token: str) -> int | None:
        """The member the link was made for, or None if unknown, used or expired."""
        async with self._db.session() as session:
            row = await use_up(session, DashboardLogin, token, self._clock.now())
            if row is None:
                return None
            audit.record(
                session, self._clock, action="dashboard.login",
                actor_member_id=row.member_id, ward_id=None,
            )
            return row.member_id
