"""Wake idle senders the moment another instance writes a row (PostgreSQL LISTEN/NOTIFY).

One dedicated connection listens for the life of the process; if it drops, it is opened
again after a pause (never by recursion). On SQLite there is one process, and `enqueue`
wakes the workers in memory.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from contextlib import suppress
from typing import Any

from bot.clock import Sleeper
from bot.db import Database

log = logging.getLogger(__name__)

Heard = Callable[[str, str], None]  # channel, payload
RECONNECT_SECONDS = 2.0


class Listener:
    def __init__(self, db: Database, sleeper: Sleeper, channels: Sequence[str],
                 heard: Heard, *, connected: Callable[[], None] | None = None) -> None:
        self._db = db
        # Called each time listening (re)starts: whatever was said meanwhile was missed.
        self._connected = connected
        self._sleeper = sleeper
        self._channels = tuple(channels)
        self._heard = heard
        self._task: asyncio.Task[None] | None = None
        self.listening = asyncio.Event()

    @property
    def active(self) -> bool:
        return self._db.engine.dialect.name == "postgresql"

    def start(self) -> None:
        if self.active and self._task is None:
            self._task = asyncio.create_task(self._listen(), name="delivery-listen")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task

    async def _listen(self) -> None:
        while True:
            try:
                await self._listen_once()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - logged; the workers' timers still run
                log.warning("delivery: listening for new rows failed; again in %.0f s",
                            RECONNECT_SECONDS, exc_info=True)
            self.listening.clear()
            await self._sleeper.sleep(RECONNECT_SECONDS)

    async def _listen_once(self) -> None:
        async with self._db.engine.connect() as connection:
            raw = await connection.get_raw_connection()
            driver: Any = raw.driver_connection
            closed = asyncio.Event()

            def on_notify(_conn: object, _pid: int, channel: str, payload: str) -> None:
                self._heard(channel, payload)

            for channel in self._channels:
                await driver.add_listener(channel, on_notify)
            driver.add_termination_listener(lambda _conn: closed.set())
            if self._connected is not None:
                self._connected()
            self.listening.set()
            try:
                while not closed.is_set():  # a cheap check that the connection lives
                    with suppress(TimeoutError):
                        await asyncio.wait_for(closed.wait(), timeout=30)
                    if not closed.is_set():
                        await driver.execute("SELECT 1")
            finally:
                for channel in self._channels:
                    with suppress(Exception):
                        await driver.remove_listener(channel, on_notify)
            raise ConnectionError("listen connection closed")
