"""One-time download links for files a chat platform cannot send (Zalo takes no documents):
valid half an hour, usable once, only the token's hash stored. The file itself is made
when the link is opened, from the data as it is then, so nothing personal waits on disk."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta

from bot.clock import Clock
from bot.db import Database
from bot.models import DownloadLink
from bot.services import audit
from bot.services.access import Identity
from bot.services.one_time import token_hash, usable, use_up

LIFETIME = timedelta(minutes=30)
KINDS = ("progress_xlsx",)


@dataclass(frozen=True)
class Redeemed:
    member_id: int
    kind: str
    ward_id: int


class Downloads:
    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    async def create(self, identity: Identity, kind: str, ward_id: int) -> str:
        if kind not in KINDS:
            raise ValueError(f"unknown download kind {kind!r}")
        token = secrets.token_urlsafe(32)
        now = self._clock.now()
        async with self._db.session() as session:
            session.add(DownloadLink(token_hash=token_hash(token), member_id=identity.member_id,
                                     kind=kind, ward_id=ward_id, created_at=now,
                                     expires_at=now + LIFETIME))
            audit.record(session, self._clock, action="download.link",
                         actor_member_id=identity.member_id, ward_id=ward_id, target=kind)
        return token

    async def valid(self, token: str) -> bool:
        async with self._db.session() as session:
            return await usable(session, DownloadLink, token, self._clock.now()) is not None

    async def redeem(self, token: str) -> Redeemed | None:
        async with self._db.session() as session:
            row = await use_up(session, DownloadLink, token, self._clock.now())
            if row is None:
                return None
            audit.record(session, self._clock, action="download.used",
                         actor_member_id=row.member_id, ward_id=row.ward_id, target=row.kind)
            return Redeemed(row.member_id, row.kind, row.ward_id)
