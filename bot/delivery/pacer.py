"""One budget per platform token, shared by everything that sends with it.

Telegram allows about 30 messages a second per bot token and 20 a minute into one group
chat, and answers anything beyond with 429 and `retry_after` (PLATFORMS.md). Replies,
messages to other people and bulk all take their turn from the same `Pacer`, most urgent
first, so a broadcast can neither push a reply back nor be pushed over the limit by replies.
`Lanes` adds what is per chat: a 429 rests that chat (or the whole token), and bulk keeps
each chat to its own pace.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
from contextlib import suppress
from dataclasses import dataclass
from enum import IntEnum

from bot.clock import Sleeper

log = logging.getLogger(__name__)

TOKEN_WIDE_WINDOW = 1.0  # two chats refused within this many seconds: the token is over
PRUNE_AT = 20_000  # chats remembered before the ones at rest are forgotten


class Priority(IntEnum):
    """Who goes first when the token's next slot comes (lower first)."""

    REPLY = 0  # the person who just wrote (and the apology when something broke)
    PERSON = 3  # messages to other people: a ticket's news, a delivery report, a nudge
    BULK = 5  # notices, campaign reminders, polls, digests


@dataclass(frozen=True)
class Limits:
    """One platform's pace: messages per second over all chats, per minute to one group."""

    per_second: float = 28.0
    group_per_minute: int = 20
    private_per_second: float = 1.0


class Pacer:
    """Evenly spaced slots, `per_second` of them, never a burst; when several senders
    wait, the slot goes to the most urgent (then the longest waiting). The schedule does
    not drift with late wake-ups of the event loop (a token bucket of one, such as
    aiolimiter's, loses those moments for good and runs a few percent slow)."""

    def __init__(self, per_second: float, sleeper: Sleeper) -> None:
        self._interval = 1.0 / per_second
        self._sleeper = sleeper
        self._next = 0.0
        self._waiting: list[tuple[int, int, asyncio.Future[None]]] = []
        self._order = itertools.count()
        self._arrived = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def acquire(self, priority: int = Priority.BULK) -> None:
        now = self._sleeper.monotonic()
        if not self._waiting and now >= self._next:
            self._take(now)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiting, (int(priority), next(self._order), future))
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._hand_out(), name="pacer")
        self._arrived.set()
        await future  # a cancelled waiter's future is skipped when its turn comes

    def pause(self, seconds: float) -> None:
        """Nothing goes out with this token for `seconds` (Telegram said so)."""
        self._next = max(self._next, self._sleeper.monotonic() + seconds)

    @property
    def waiting(self) -> int:
        return sum(1 for *_, future in self._waiting if not future.done())

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task
        for *_, future in self._waiting:
            if not future.done():
                future.cancel()
        self._waiting.clear()

    def _take(self, now: float) -> None:
        # A wake-up a little late keeps the schedule; after an idle spell it starts afresh.
        start = self._next if self._next >= now - self._interval else now
        self._next = start + self._interval

    async def _hand_out(self) -> None:
        """The only task that sleeps for the pacer: one sleeper, however many wait."""
        while True:
            if not self._waiting:
                self._arrived.clear()
                await self._arrived.wait()
                continue
            now = self._sleeper.monotonic()
            if now < self._next:
                await self._sleeper.sleep(self._next - now)
                continue
            *_, future = heapq.heappop(self._waiting)
            if future.done():
                continue
            self._take(now)
            future.set_result(None)


class Lanes:
    """Every token's pacer, and every chat's rest: the state one sender keeps."""

    def __init__(self, sleeper: Sleeper, limits: dict[str, Limits], default: Limits) -> None:
        self._sleeper = sleeper
        self._limits = limits
        self._default = default
        self._pacers: dict[str, Pacer] = {}
        self._rest: dict[tuple[str, str], float] = {}  # a 429: this chat waits until then
        self._next: dict[tuple[str, str], float] = {}  # bulk spacing within one chat
        self._refused: dict[str, tuple[float, str]] = {}  # the token's last 429: when, chat

    def limits(self, platform: str) -> Limits:
        return self._limits.get(platform, self._default)

    def pacer(self, platform: str) -> Pacer:
        if platform not in self._pacers:
            self._pacers[platform] = Pacer(self.limits(platform).per_second, self._sleeper)
        return self._pacers[platform]

    def resting(self, platform: str, chat_id: str) -> float:
        """Seconds this chat must still rest after a 429 (0: none)."""
        return max(self._rest.get((platform, chat_id), 0.0) - self._sleeper.monotonic(), 0.0)

    def wait(self, platform: str, chat_id: str) -> float:
        """Seconds before bulk may go to this chat: its rest and its own pace."""
        key = (platform, chat_id)
        until = max(self._rest.get(key, 0.0), self._next.get(key, 0.0))
        return max(until - self._sleeper.monotonic(), 0.0)

    def sent(self, platform: str, chat_id: str, is_group: bool) -> None:
        """A message went to this chat: the next bulk message there waits its spacing."""
        limits = self.limits(platform)
        spacing = 60.0 / limits.group_per_minute if is_group else 1.0 / limits.private_per_second
        self._next[(platform, chat_id)] = self._sleeper.monotonic() + spacing
        if len(self._next) > PRUNE_AT:
            self._prune()

    def refused(self, platform: str, chat_id: str, is_group: bool, retry_after: float) -> bool:
        """A 429: rest this chat for `retry_after`; rest the whole token too when the
        refusal cannot be the chat's own limit (a private chat has none to speak of) or a
        second chat is refused within a second. Returns whether the token rests."""
        now = self._sleeper.monotonic()
        wait = max(retry_after, 1.0)
        key = (platform, chat_id)
        self._rest[key] = max(self._rest.get(key, 0.0), now + wait)
        last = self._refused.get(platform)
        self._refused[platform] = (now, chat_id)
        token_wide = not is_group or (
            last is not None and last[1] != chat_id and now - last[0] < TOKEN_WIDE_WINDOW
        )
        if token_wide:
            self.pacer(platform).pause(wait)
            log.info("delivery: %s token rests %.0f s after a 429", platform, wait)
        return token_wide

    def moved(self, platform: str, old: str, new: str) -> None:
        for table in (self._rest, self._next):
            if (platform, old) in table:
                table[(platform, new)] = table.pop((platform, old))

    async def close(self) -> None:
        for pacer in self._pacers.values():
            await pacer.close()

    def _prune(self) -> None:
        now = self._sleeper.monotonic()
        for table in (self._rest, self._next):
            for key in [k for k, until in table.items() if until < now]:
                del table[key]
