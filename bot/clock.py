"""Injectable time, so expiry, quiet hours and reminders are tested without sleeping."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, aware, in UTC."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class FrozenClock:
    """A clock that moves only when told to; used by tests and the demo seeder."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("FrozenClock needs an aware datetime")
        self._now = start

    def now(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta) -> None:
        self._now += delta

    def set(self, moment: datetime) -> None:
        if moment.tzinfo is None:
            raise ValueError("FrozenClock needs an aware datetime")
        self._now = moment


class Sleeper(Protocol):
    """Seconds on a monotonic scale, and a way to wait: what pacing and retries run on.
    Injected beside `Clock` so delivery is tested without real sleeps."""

    def monotonic(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class SystemSleeper:
    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(seconds, 0.0))


class VirtualSleeper:
    """Time that jumps instead of passing: `sleep(5)` moves this sleeper (and the
    `FrozenClock` given, if any) five seconds on and returns at once. For tests."""

    def __init__(self, clock: FrozenClock | None = None, start: float = 1000.0) -> None:
        self._clock = clock
        self._now = start
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self._now

    async def sleep(self, seconds: float) -> None:
        seconds = max(seconds, 0.0)
        self.slept.append(seconds)
        self._now += seconds
        if self._clock is not None:
            self._clock.advance(timedelta(seconds=seconds))
        await asyncio.sleep(0)  # still let other tasks run, as a real sleep would
