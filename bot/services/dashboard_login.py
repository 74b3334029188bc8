"""One-time sign-in links for the dashboard: sent in a private chat, valid ten minutes, usable
once. Only a hash of the token is stored, so a database dump opens no sessions."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

import sqlalchemy as sa
from sqlmodel import col, select

from bot.clock import Clock
from bot.db import Database
from bot.models import DashboardLogin
from bot.services import audit
from bot.services.access import Identity

LINK_LIFETIME = timedelta(minutes=10)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


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
                    token_hash=_hash(token), member_id=identity.member_id, created_at=now,
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
        now = self._clock.now()
        async with self._db.session() as session:
            row = (
                await session.exec(
                    select(DashboardLogin).where(DashboardLogin.token_hash == _hash(token))
                )
            ).first()
            return row is not None and row.used_at is None and row.expires_at > now

    async def redeem(self, token: str) -> int | None:
        """The member the link was made for, or None if unknown, used or expired."""
        now = self._clock.now()
        async with self._db.session() as session:
            row = (
                await session.exec(
                    select(DashboardLogin).where(DashboardLogin.token_hash == _hash(token))
                )
            ).first()
            if row is None or row.used_at is not None or row.expires_at <= now:
                return None
            taken = await session.exec(
                sa.update(DashboardLogin)
                .where(col(DashboardLogin.id) == row.id, col(DashboardLogin.used_at).is_(None))
                .values(used_at=now)
            )
            if taken.rowcount != 1:
                return None
            audit.record(
                session, self._clock, action="dashboard.login",
                actor_member_id=row.member_id, ward_id=None,
            )
            return row.member_id
