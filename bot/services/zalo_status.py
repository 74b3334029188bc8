"""What an admin sees with `/zalo`: the Zalo bot's monthly quota (and resuming it), the
OA's one-to-one messages of the month (free replies, proactive), and whether the OA must be
authorised again. Read from the database, so any instance answers the same."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import col

from bot.clock import Clock
from bot.db import Database
from bot.models import Delivery
from bot.services import audit
from bot.services.access import Identity
from bot.services.platform_state import DbFlags, DbOAWindows
from bot.zalo_state import QUOTA_FLAG, REAUTHORIZE_FLAG, OACounts


@dataclass(frozen=True)
class ZaloState:
    bot_enabled: bool
    quota_exceeded: bool
    since: datetime | None
    next_probe: datetime | None
    oa_enabled: bool
    oa: OACounts | None
    oa_reauthorize: bool
    proactive_limit: int


class ZaloStatus:
    def __init__(self, db: Database, clock: Clock, *, timezone: Any, bot_enabled: bool,
                 oa_enabled: bool, proactive_limit: int) -> None:
        self._db = db
        self._clock = clock
        self._bot_flags = DbFlags(db, clock, "zalo")
        self._oa_flags = DbFlags(db, clock, "zalo_oa")
        self._windows = DbOAWindows(db, clock, timezone)
        self._bot_enabled = bot_enabled
        self._oa_enabled = oa_enabled
        self._limit = proactive_limit
        # Set by the app when the Zalo bot runs: ends the pause in the running adapter.
        self.resume_hook: Callable[[], Awaitable[bool]] | None = None

    async def state(self) -> ZaloState:
        quota = await self._bot_flags.get(QUOTA_FLAG)
        since = datetime.fromisoformat(str(quota["since"])) if quota else None
        probe = datetime.fromisoformat(str(quota["next_probe"])) if quota else None
        oa = await self._windows.counts() if self._oa_enabled else None
        return ZaloState(
            self._bot_enabled, quota is not None, since, probe, self._oa_enabled, oa,
            bool(await self._oa_flags.get(REAUTHORIZE_FLAG)), self._limit,
        )

    async def release_paused(self, platform: str = "zalo") -> int:
        """Rows held by the pause go at once (not at their next hourly try)."""
        async with self._db.session() as session:
            result = await session.exec(
                sa.update(Delivery).where(
                    col(Delivery.platform) == platform, col(Delivery.state) == "pending",
                    col(Delivery.error).startswith("paused:"),
                ).values(not_before=self._clock.now(), error="")
            )
            return int(result.rowcount)

    async def resume(self, identity: Identity) -> bool:
        """An admin says the quota is back (a bigger plan, a new month): send again now."""
        if self.resume_hook is not None:
            resumed = await self.resume_hook()
        else:
            resumed = await self._bot_flags.clear(QUOTA_FLAG)
        await self.release_paused()
        async with self._db.session() as session:
            audit.record(session, self._clock, action="zalo.resume",
                         actor_member_id=identity.member_id, ward_id=None, target="zalo",
                         resumed=resumed)
        return resumed
