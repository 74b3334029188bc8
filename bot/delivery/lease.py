"""One sender per platform token across instances that share a PostgreSQL database.

Telegram's budget (~30 messages a second) belongs to the token, not to a process: two
processes pacing themselves at 28/s send 56/s and earn hundreds of 429s. So each token has
a lease row; the instance holding it sends everything for that token (its own replies, the
outbox rows every instance writes), the others receive, handle and enqueue. The holder
renews every `every` seconds for `seconds`; when it dies the lease runs out and the next
instance to look takes it — fail-over within `seconds + every` (10 + 2.5 s by default).

The holder stops sending on its own the moment its last renewal is `seconds - margin` old,
before anyone else may take over, so two holders never overlap even if one stalls. Time on
the lease comes from the injectable `Clock` (the hosts' clocks must agree within `margin`,
which NTP gives). SQLite serves one instance, which always holds every lease.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
from collections.abc import Awaitable, Callable, Iterable
from contextlib import suppress
from datetime import timedelta

import sqlalchemy as sa
from sqlmodel import col, select

from bot.clock import Clock, Sleeper
from bot.db import Database, insert_or_skip
from bot.models import SendLease

log = logging.getLogger(__name__)

Gained = Callable[[str], Awaitable[None]]
LEASE_CHANNEL = "cds_lease"


def instance_name() -> str:
    """Readable in the lease table: which host and process, plus a few random characters
    so a restarted process with a reused pid is another holder."""
    return f"{socket.gethostname()[:32]}:{os.getpid()}:{secrets.token_hex(3)}"


class SendLeases:
    def __init__(
        self, db: Database, clock: Clock, sleeper: Sleeper, *, holder: str | None = None,
        seconds: float = 10.0, every: float = 2.5, margin: float = 1.0,
    ) -> None:
        self._db = db
        self._clock = clock
        self._sleeper = sleeper
        self.holder = holder or instance_name()
        self.seconds = seconds
        self.every = every
        self._margin = margin
        self._shared = db.engine.dialect.name == "postgresql"
        self._valid: dict[str, float] = {}  # platform -> monotonic moment the lease ends here
        self._gained: list[Gained] = []
        self._poke = asyncio.Event()

    def on_gained(self, callback: Gained) -> None:
        """Called when this instance becomes the sender for a platform."""
        self._gained.append(callback)

    def holds(self, platform: str) -> bool:
        if not self._shared:
            return True
        return self._valid.get(platform, 0.0) > self._sleeper.monotonic()

    def held(self, platforms: Iterable[str]) -> list[str]:
        return [p for p in platforms if self.holds(p)]

    def poke(self) -> None:
        """Look again now (a holder let go)."""
        self._poke.set()

    async def refresh(self, platforms: Iterable[str]) -> list[str]:
        """Take or renew the lease of each platform; returns those newly taken."""
        if not self._shared:
            return []
        gained = []
        for platform in platforms:
            had = self.holds(platform)
            started = self._sleeper.monotonic()
            try:
                got = await self._take(platform)
            except Exception:  # noqa: BLE001 - the database is away: keep what is still valid
                log.warning("delivery: could not renew the %s send lease", platform,
                            exc_info=True)
                continue
            if got:
                self._valid[platform] = started + self.seconds - self._margin
                if not had:
                    gained.append(platform)
                    log.info("delivery: this instance now sends for %s", platform)
            elif had:
                self._valid.pop(platform, None)
                log.warning("delivery: another instance took the %s send lease", platform)
        for platform in gained:
            for callback in self._gained:
                try:
                    await callback(platform)
                except Exception:
                    log.exception("delivery: lease callback failed for %s", platform)
        return gained

    async def run(self, platforms: Callable[[], Iterable[str]]) -> None:
        """Renew (or try to take) every `every` seconds until cancelled."""
        while True:
            await self.refresh(list(platforms()))
            self._poke.clear()
            with suppress(TimeoutError):
                await asyncio.wait_for(self._poke.wait(), timeout=self.every)

    async def release(self) -> None:
        """Let go at a clean stop, and tell the others so one takes over at once."""
        held = [p for p in self._valid if self.holds(p)]
        self._valid.clear()
        if not self._shared or not held:
            return
        past = self._clock.now() - timedelta(seconds=1)
        try:
            async with self._db.session() as session:
                await session.exec(
                    sa.update(SendLease)
                    .where(col(SendLease.name).in_(held), col(SendLease.holder) == self.holder)
                    .values(expires_at=past)
                )
                await session.exec(select(sa.func.pg_notify(LEASE_CHANNEL, ",".join(held))))
        except Exception:  # noqa: BLE001 - it runs out by itself
            log.warning("delivery: could not release the send lease", exc_info=True)

    async def _take(self, platform: str) -> bool:
        now = self._clock.now()
        async with self._db.session() as session:
            await session.exec(
                insert_or_skip("postgresql", SendLease)
                .values(name=platform, holder="", expires_at=now - timedelta(seconds=1),
                        acquired_at=now)
                .on_conflict_do_nothing(index_elements=["name"])
            )
            mine = col(SendLease.holder) == self.holder
            result = await session.exec(
                sa.update(SendLease)
                .where(col(SendLease.name) == platform,
                       sa.or_(mine, col(SendLease.expires_at) < now))
                .values(holder=self.holder, expires_at=now + timedelta(seconds=self.seconds),
                        acquired_at=sa.case((mine, col(SendLease.acquired_at)), else_=now))
            )
            return bool(result.rowcount)
