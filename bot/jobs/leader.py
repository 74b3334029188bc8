"""One scheduler among several instances: the one holding a PostgreSQL advisory lock.

Several instances may share one PostgreSQL database (webhooks behind a load balancer); all of
them answer people and deliver the outbox, but only one runs the scheduled jobs. The lock is
held by a dedicated connection for the life of the process, so it goes away with the
process (or its connection) and another instance takes over at its next try: the scheduler
asks every `watch_seconds` (5 s), and a new leader runs the interval jobs at once, so the
jobs go on within ~5 s of the leader's death (they waited for the next one-minute tick,
~55 s, before). SQLite runs a single instance, which is always the leader.
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.db import Database

log = logging.getLogger(__name__)

LOCK_KEY = 0x43445342  # "CDSB": one number for every instance of this bot on the database


class Leadership:
    def __init__(self, db: Database, key: int = LOCK_KEY) -> None:
        self._db = db
        self._key = key
        self._connection: AsyncConnection | None = None

    @property
    def needs_lock(self) -> bool:
        return self._db.engine.dialect.name == "postgresql"

    async def is_leader(self) -> bool:
        """Keep the lock, or try to take it (once per call; the scheduler asks again every
        few seconds, so a successor is found within `Scheduler.watch_seconds`)."""
        if not self.needs_lock:
            return True
        if self._connection is not None:
            try:
                await self._connection.execute(sa.text("SELECT 1"))
                return True
            except Exception:  # noqa: BLE001 - a lost connection means a lost lock
                log.warning("scheduler: lost the leader connection; trying again")
                await self.release()
        connection = await self._db.engine.connect()
        try:
            got = (await connection.execute(
                sa.text("SELECT pg_try_advisory_lock(:key)"), {"key": self._key}
            )).scalar_one()
            await connection.commit()
        except Exception:
            await connection.close()
            raise
        if got:
            self._connection = connection
            log.info("scheduler: this instance runs the scheduled jobs")
            return True
        await connection.close()
        return False

    async def release(self) -> None:
        """Give the lock up: unlock, and drop the connection rather than pool it (a pooled
        connection would keep a session lock for whoever borrows it next)."""
        connection, self._connection = self._connection, None
        if connection is None:
            return
        try:
            await connection.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": self._key})
            await connection.commit()
        except Exception:  # noqa: BLE001 - a dead connection has released the lock already
            log.debug("scheduler: unlock failed; dropping the connection", exc_info=True)
        finally:
            await connection.invalidate()
            await connection.close()
