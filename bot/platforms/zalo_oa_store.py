"""The Zalo OA's rotating tokens in the database, shared by every instance.

It lives beside the Zalo OA adapter it serves (the adapter's `TokenStore`), so no service
imports a platform module; only the composition root builds it."""

from __future__ import annotations

from sqlmodel import select

from bot.clock import Clock
from bot.db import Database
from bot.models import OAToken
from bot.platforms.zalo_oa import OATokens


class DbTokenStore:
    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    async def load(self, app_id: str) -> OATokens | None:
        async with self._db.session() as session:
            row = (await session.exec(select(OAToken).where(OAToken.app_id == app_id))).first()
            if row is None:
                return None
            return OATokens(row.access_token, row.refresh_token, row.expires_at)

    async def save(self, app_id: str, tokens: OATokens) -> None:
        async with self._db.session() as session:
            row = (await session.exec(select(OAToken).where(OAToken.app_id == app_id))).first()
            if row is None:
                row = OAToken(app_id=app_id, access_token="", refresh_token="")
            row.access_token = tokens.access_token
            row.refresh_token = tokens.refresh_token
            row.expires_at = tokens.expires_at
            row.updated_at = self._clock.now()
            session.add(row)
