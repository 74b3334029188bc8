"""Updates side by side: many chats at once, each chat's messages strictly in order.

Every platform hands its updates to one `Lanes`: one queue per chat (a form is per chat, so
a chat's second message must wait for its first), a fixed number of workers, and a bound on
what may wait (`submit` then waits, which slows the platform's fetching instead of growing
memory). Whatever a job raises is logged (rate limited) and the lane goes on: one bad
update never blocks the next.

Who goes next: a chat with one message waiting and nothing in progress ("fresh": someone
who just wrote) before a chat with several (a burst, or a backlog being worked through),
round robin within each; one turn in `BACKLOG_SHARE` goes
to a backlog anyway, so nobody starves. A resident who writes once is answered at once
even while 500 people's 5,000 messages are queued (bench/README.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Hashable

from bot.log_limit import LogLimiter

log = logging.getLogger(__name__)

Job = Callable[[], Awaitable[None]]
BACKLOG_SHARE = 4  # every 4th turn goes to a chat with a backlog, if any


class Lanes:
    """A bounded pool of workers over per-key FIFO queues."""

    def __init__(
        self, *, workers: int = 16, max_pending: int = 10_000,
        on_wait: Callable[[float], None] | None = None,
    ) -> None:
        if workers < 1 or max_pending < 1:
            raise ValueError("workers and max_pending must be at least 1")
        self._workers_wanted = workers
        self._room = asyncio.Semaphore(max_pending)
        self._lanes: dict[Hashable, deque[tuple[float, Job]]] = {}
        self._fresh: deque[Hashable] = deque()  # lanes with their first job waiting
        self._backlog: deque[Hashable] = deque()  # lanes that just finished one, more to do
        self._wake = asyncio.Condition()
        self._turns = 0
        self._closed = False
        self._workers: list[asyncio.Task[None]] = []
        self._pending = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._on_wait = on_wait
        self._errors = LogLimiter(log)

    @property
    def pending(self) -> int:
        """Jobs queued or running."""
        return self._pending

    def start(self) -> None:
        if self._workers:
            return
        self._workers = [
            asyncio.create_task(self._work(), name=f"lane-worker-{i}")
            for i in range(self._workers_wanted)
        ]

    async def submit(self, key: Hashable, job: Job) -> None:
        """Queue `job` behind the other jobs of `key`; waits only when the bound is reached."""
        if self._closed:
            log.warning("update arrived while stopping: not handled")
            return
        self.start()
        await self._room.acquire()
        self._pending += 1
        self._idle.clear()
        lane = self._lanes.get(key)
        if lane is None:
            self._lanes[key] = deque([(time.monotonic(), job)])
            self._fresh.append(key)
            async with self._wake:
                self._wake.notify()
        else:
            lane.append((time.monotonic(), job))

    async def join(self) -> None:
        """Wait until every queued job has run (tests, and a clean stop)."""
        await self._idle.wait()

    async def stop(self, grace: float = 5.0) -> None:
        """Let queued jobs finish for up to `grace` seconds, then cancel the workers."""
        self._closed = True
        if self._workers:
            try:
                await asyncio.wait_for(self.join(), grace)
            except TimeoutError:
                log.warning("stopping with %d updates still queued", self._pending)
        for task in self._workers:
            task.cancel()
        for task in self._workers:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._workers = []

    async def _next(self) -> Hashable:
        async with self._wake:
            await self._wake.wait_for(lambda: bool(self._fresh or self._backlog))
            self._turns += 1
            if self._backlog and (not self._fresh or self._turns % BACKLOG_SHARE == 0):
                return self._backlog.popleft()
            while self._fresh:
                key = self._fresh.popleft()
                if len(self._lanes[key]) <= 1 or not self._fresh:
                    return key
                # Several messages queued already (a burst): it waits with the backlogs.
                self._backlog.append(key)
            return self._backlog.popleft()

    async def _work(self) -> None:
        while True:
            key = await self._next()
            lane = self._lanes[key]
            queued_at, job = lane.popleft()
            if self._on_wait is not None:
                self._on_wait(time.monotonic() - queued_at)
            try:
                await job()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - a failed update must not stop the lane
                self._errors.exception("update job failed", type(exc).__name__, exc)
            finally:
                self._pending -= 1
                self._room.release()
                if lane:
                    self._backlog.append(key)  # to the back: other chats go first
                    async with self._wake:
                        self._wake.notify()
                else:
                    del self._lanes[key]
                if self._pending == 0:
                    self._idle.set()
