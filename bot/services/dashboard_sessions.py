"""Dashboard sessions kept on the server, so "Đăng xuất" really ends one (a copied cookie
stops working too). Only a hash of the session token is stored."""

from __future__ import annotations

import secrets
from datetime import timedelta

import sqlalchemy as sa
from sqlmodel import col, select

from bot.clock import Clock
from bot.db import Database
from bot.models import DashboardSession
from bot.services import audit
from bot.services.one_time import token_hash


class DashboardSessions:
    def __init__(self, db: Database, clock: Clock, lifetime: timedelta) -> None:
        self._db = db
        self._clock = clock
        self._lifetime = lifetime

    async def open(self, member_id: int) -> str:
        token = secrets.token_urlsafe(32)
        async with self._db.session() as session:
            session.add(DashboardSession(token_hash=token_hash(token), member_id=member_id,
                                         created_at=self._clock.now()))
        return token

    async def alive(self, token: str, member_id: int) -> bool:
        async with self._db.session() as session:
            row = (await session.exec(select(DashboardSession).where(
                DashboardSession.token_hash == token_hash(token)))).first()
        return (row is not None and row.member_id == member_id and row.ended_at is None
                and row.created_at + self._lifetime > self._clock.now())

    async def end(self, token: str, ward_id: int | None) -> None:
        async with self._db.session() as session:
            row = (await session.exec(select(DashboardSession).where(
                DashboardSession.token_hash == token_hash(token)))).first()
            if row is None or row.ended_at is not None:
                return
            await session.exec(sa.update(DashboardSession).where(
                col(DashboardSession.id) == row.id).values(ended_at=self._clock.now()))
            audit.record(session, self._clock, action="dashboard.logout",
                         actor_member_id=row.member_id, ward_id=ward_id)
