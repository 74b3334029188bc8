"""The outbox: every notice, reminder, poll and digest is one row per target chat, written
before anything is sent, then delivered by workers within the platforms' limits.

Why our own pacing: python-telegram-bot's `AIORateLimiter` halts every chat when one chat
gets a 429, and ends that halt too early (22.x). Here each worker claims due rows, spaces
sends evenly under one global rate (a token bucket of size one: no bursts that Telegram's
one-second window would punish), keeps each chat to its own rate (20 a minute in groups),
obeys a 429's `retry_after` for that chat only, retries transient failures with capped
exponential backoff, and stops sending to chats that are gone (deactivating the binding).

Claiming is one `UPDATE … WHERE id IN (SELECT … [FOR UPDATE SKIP LOCKED])` stamped with a
fresh token, so two workers (or two instances on PostgreSQL) never take the same row. A row
is marked sent right after its send, so a crash re-sends at most the one in flight; rows a
dead worker held come back after the lease (at once on SQLite, which has one instance).
Direct replies to a person never come here: they go out at once, ahead of any broadcast.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import col, select

from bot.clock import Clock
from bot.core import Attachment, Button, Chat, DeliveryError, Outgoing, Platform
from bot.db import Database
from bot.delivery.quiet import QuietHours
from bot.metrics import Metrics
from bot.models import Delivery
from bot.services.chats import Chats
from bot.texts import split_text

log = logging.getLogger(__name__)

FINAL = ("sent", "failed")
SHORT_WAIT = 1.0  # a chat's next slot this close is waited for, not given back
IDLE_POLL = 5.0  # seconds an idle worker sleeps before looking for rows that came due
Finished = Callable[[str, int], Awaitable[None]]


@dataclass(frozen=True)
class NewDelivery:
    kind: str
    ref_id: int | None
    dedupe: str
    platform: str
    chat_id: str
    text: str
    is_group: bool = True
    ward_id: int | None = None
    group_id: int | None = None
    buttons: Sequence[Sequence[Button]] = ()
    attachment: Mapping[str, Any] = field(default_factory=dict)
    pin: bool = False
    priority: int = 5
    not_before: datetime | None = None


class Pacer:
    """Sends at fixed, evenly spaced moments: `per_second` of them, never a burst. The
    schedule does not drift with late wake-ups of the event loop (a token bucket of one,
    such as aiolimiter's, loses those moments for good and runs a few percent slow)."""

    def __init__(self, per_second: float) -> None:
        self._interval = 1.0 / per_second
        self._next = 0.0
        self._lock = asyncio.Lock()

    async def acquire(self) -> None:
        async with self._lock:
            now = time.monotonic()
            slot = max(self._next, now)
            self._next = slot + self._interval
        if slot > now:
            await asyncio.sleep(slot - now)


@dataclass(frozen=True)
class Limits:
    """One platform's pace: messages per second over all chats, per minute to one group."""

    per_second: float = 28.0
    group_per_minute: int = 20
    private_per_second: float = 1.0


@dataclass(frozen=True)
class Pacing:
    per_second: float = 28.0
    group_per_minute: int = 20
    private_per_second: float = 1.0
    workers: int = 4
    batch: int = 8
    lease_seconds: int = 60
    max_attempts: int = 8
    max_backoff_seconds: int = 600


class Outbox:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        platforms: Mapping[str, Platform],
        chats: Chats,
        metrics: Metrics,
        *,
        quiet: QuietHours,
        pacing: Pacing | None = None,
        limits: Mapping[str, Limits] | None = None,
    ) -> None:
        self._db = db
        self._clock = clock
        self._platforms = platforms
        self._chats = chats
        self._metrics = metrics
        self._quiet = quiet
        self.pacing = pacing or Pacing()
        default = Limits(self.pacing.per_second, self.pacing.group_per_minute,
                         self.pacing.private_per_second)
        self._limits = {"telegram": default, **(limits or {})}
        self._default_limits = default
        # A token bucket of size one per platform: sends evenly spaced, never a burst.
        self._pacers: dict[str, Pacer] = {}
        self._stopping = False
        self._next_slot: dict[tuple[str, str], float] = {}
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._finished: dict[str, Finished] = {}
        self._postgres = db.engine.dialect.name == "postgresql"

    def quiet_until(self, when: datetime) -> datetime | None:
        """When group messages due at `when` will really go (end of quiet hours), or None."""
        return self._quiet.ends_after(when)

    def on_finished(self, kind: str, callback: Finished) -> None:
        """Call back when every row of one notice (or poll…) is sent or failed."""
        self._finished[kind] = callback

    # --- writing ---------------------------------------------------------------------------
    async def enqueue(self, items: Sequence[NewDelivery], *, wake: bool = True) -> int:
        """Queue rows; a `dedupe` key already queued is skipped, so re-running a schedule
        after a restart (or on two instances) never doubles a message. Returns how many
        were offered."""
        if not items:
            return 0
        now = self._clock.now()
        rows = [
            {
                "kind": i.kind, "ref_id": i.ref_id, "dedupe": i.dedupe[:160],
                "ward_id": i.ward_id, "group_id": i.group_id, "platform": i.platform,
                "chat_id": i.chat_id, "is_group": i.is_group, "text": i.text,
                "buttons": [[[b.label, b.payload, *([b.url] if b.url else [])] for b in row]
                            for row in i.buttons],
                "attachment": dict(i.attachment), "pin": i.pin, "priority": i.priority,
                "state": "pending", "attempts": 0, "parts_sent": 0,
                "not_before": i.not_before or now, "claimed_by": "", "message_id": "",
                "error": "", "created_at": now,
            }
            for i in items
        ]
        dialect = postgresql if self._postgres else sqlite
        statement = dialect.insert(Delivery).on_conflict_do_nothing(index_elements=["dedupe"])
        async with self._db.session() as session:
            await session.exec(statement, params=rows)
        if wake:  # else the caller wakes the workers once it has told its person
            self._wake.set()
        return len(rows)

    async def cancel(self, kind: str, ref_id: int) -> int:
        """Drop rows not yet sent (a cancelled notice); rows in flight finish."""
        async with self._db.session() as session:
            result = await session.exec(
                sa.delete(Delivery).where(
                    col(Delivery.kind) == kind, col(Delivery.ref_id) == ref_id,
                    col(Delivery.state) == "pending",
                )
            )
            return int(result.rowcount)

    async def counts(self, kind: str, ref_id: int) -> dict[str, int]:
        async with self._db.session() as session:
            rows = (
                await session.exec(
                    select(Delivery.state, sa.func.count())
                    .where(Delivery.kind == kind, Delivery.ref_id == ref_id)
                    .group_by(col(Delivery.state))
                )
            ).all()
            return {state: int(n) for state, n in rows}

    async def is_broadcast(self, platform: str, chat_id: str, message_id: str) -> bool:
        """Whether a message in a chat is one the outbox sent (a notice, a reminder...)."""
        if not message_id:
            return False
        async with self._db.session() as session:
            found = (await session.exec(select(Delivery.id).where(
                Delivery.platform == platform, Delivery.chat_id == chat_id,
                Delivery.message_id == message_id,
            ))).first()
            return found is not None

    async def rows(self, kind: str, ref_id: int) -> list[Delivery]:
        async with self._db.session() as session:
            return list(
                (
                    await session.exec(
                        select(Delivery)
                        .where(Delivery.kind == kind, Delivery.ref_id == ref_id)
                        .order_by(col(Delivery.id))
                    )
                ).all()
            )

    # --- workers ---------------------------------------------------------------------------
    async def start(self) -> None:
        if not self._postgres:
            await self._release_all()
        self._stopping = False
        for n in range(self.pacing.workers):
            self._tasks.append(asyncio.create_task(self._work(), name=f"outbox-{n}"))

    async def stop(self, grace: float = 5.0) -> None:
        """Finish the sends in flight (so a normal stop doubles nothing), give the rest of
        each claimed batch back, then stop; workers still busy after `grace` are cancelled."""
        self._stopping = True
        self._wake.set()
        if self._tasks:
            _done, busy = await asyncio.wait(self._tasks, timeout=grace)
            for task in busy:
                task.cancel()
            for task in self._tasks:
                with suppress(asyncio.CancelledError, Exception):
                    await task
        self._tasks.clear()

    def wake(self) -> None:
        self._wake.set()

    async def _release_all(self) -> None:
        """SQLite runs one instance: rows still marked in flight were left by a crash."""
        async with self._db.session() as session:
            await session.exec(
                sa.update(Delivery).where(col(Delivery.state) == "sending")
                .values(state="pending", claimed_by="")
            )

    async def _work(self) -> None:
        while not self._stopping:
            try:
                done = await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("outbox: worker failed; retrying in a second")
                done = 0
            if not done and not self._stopping:
                self._wake.clear()
                with suppress(TimeoutError):  # enqueue wakes us; the poll finds rows
                    await asyncio.wait_for(self._wake.wait(), timeout=IDLE_POLL)  # come due

    async def run_once(self) -> int:
        """Claim a batch of due rows and deliver them; returns how many were claimed."""
        rows = await self._claim(self.pacing.batch)
        for index, row in enumerate(rows):
            if self._stopping:  # stopping: what was claimed but not begun goes back
                for rest in rows[index:]:
                    await self._release(rest, self._clock.now())
                break
            await self._deliver(row)
        return len(rows)

    async def drain(self, within: float = 30.0) -> None:
        """Wait until everything due now is delivered (tests, benchmarks)."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if not await self.pending_due():
                return
            await asyncio.sleep(0.02)
        raise TimeoutError("outbox not drained")

    async def pending_due(self) -> int:
        now = self._clock.now()
        async with self._db.session() as session:
            result = await session.exec(
                select(sa.func.count()).select_from(Delivery).where(
                    sa.or_(
                        sa.and_(col(Delivery.state) == "pending", col(Delivery.not_before) <= now),
                        col(Delivery.state) == "sending",
                    )
                )
            )
            return int(result.one())

    async def _claim(self, limit: int) -> list[Delivery]:
        now = self._clock.now()
        token = secrets.token_hex(8)
        lease = now - timedelta(seconds=self.pacing.lease_seconds)
        due = (
            select(Delivery.id)
            .where(
                sa.or_(
                    sa.and_(col(Delivery.state) == "pending", col(Delivery.not_before) <= now),
                    sa.and_(col(Delivery.state) == "sending", col(Delivery.claimed_at) < lease),
                )
            )
            .order_by(col(Delivery.priority), col(Delivery.id))
            .limit(limit)
        )
        if self._postgres:
            due = due.with_for_update(skip_locked=True)
        async with self._db.session() as session:
            await session.exec(
                sa.update(Delivery).where(col(Delivery.id).in_(due.scalar_subquery()))
                .values(state="sending", claimed_by=token, claimed_at=now)
                .execution_options(synchronize_session=False)
            )
        async with self._db.session() as session:
            return list(
                (
                    await session.exec(
                        select(Delivery).where(Delivery.claimed_by == token)
                        .order_by(col(Delivery.priority), col(Delivery.id))
                    )
                ).all()
            )

    async def _save(self, row: Delivery, **values: Any) -> bool:
        """Write a row this worker still holds; False if another worker has taken it over
        (its lease ran out), in which case this worker must leave it alone."""
        async with self._db.session() as session:
            result = await session.exec(
                sa.update(Delivery)
                .where(col(Delivery.id) == row.id, col(Delivery.claimed_by) == row.claimed_by)
                .values(**values)
            )
            held = bool(result.rowcount)
        if held:
            for key, value in values.items():
                setattr(row, key, value)
        return held

    async def _renew(self, row: Delivery) -> bool:
        """Just before a send: renew the lease, and check the row is still ours."""
        return await self._save(row, claimed_at=self._clock.now())

    async def _release(self, row: Delivery, not_before: datetime, **values: Any) -> None:
        await self._save(row, state="pending", claimed_by="", not_before=not_before, **values)


    def limits(self, platform: str) -> Limits:
        return self._limits.get(platform, self._default_limits)

    def _pacer(self, platform: str) -> Pacer:
        if platform not in self._pacers:
            self._pacers[platform] = Pacer(self.limits(platform).per_second)
        return self._pacers[platform]

    def _spacing(self, row: Delivery) -> float:
        limits = self.limits(row.platform)
        if row.is_group:
            return 60.0 / limits.group_per_minute
        return 1.0 / limits.private_per_second

    async def _deliver(self, row: Delivery) -> None:
        now = self._clock.now()
        platform = self._platforms.get(row.platform)
        if platform is None:
            await self._release(row, now + timedelta(seconds=30))
            return
        if row.is_group:
            quiet_end = self._quiet.ends_after(now)
            if quiet_end is not None:
                self._metrics.deliveries.labels(row.platform, "quiet").inc()
                await self._release(row, quiet_end)
                return
        key = (row.platform, row.chat_id)
        wait = self._next_slot.get(key, 0.0) - time.monotonic()
        if wait > SHORT_WAIT:  # this chat must rest: let other chats go first
            await self._release(row, now + timedelta(seconds=wait))
            return
        parts = split_text(row.text, platform.capabilities.max_text) or [""]
        try:
            for index in range(row.parts_sent, len(parts)):
                await self._pacer(row.platform).acquire()
                slot = self._next_slot.get(key, 0.0) - time.monotonic()
                if slot > 0:
                    await asyncio.sleep(slot)  # the next part of a long message, in order
                self._next_slot[key] = time.monotonic() + self._spacing(row)
                if not await self._renew(row):
                    log.warning("outbox: delivery %s was taken over; leaving it", row.id)
                    return
                last = index == len(parts) - 1
                sent = await platform.send(row.chat_id, self._outgoing(row, parts[index],
                                                                       index, last))
                await self._save(row, parts_sent=index + 1, message_id=sent.message_id)
        except DeliveryError as exc:
            await self._failed(row, exc)
            return
        except Exception as exc:  # an adapter bug must not stop the outbox
            log.exception("outbox: unexpected error sending delivery %s", row.id)
            await self._failed(row, DeliveryError("transient", str(exc)[:200]))
            return
        if not await self._save(row, state="sent", sent_at=self._clock.now(), claimed_by=""):
            return
        self._metrics.deliveries.labels(row.platform, "sent").inc()
        await self._maybe_finished(row)

    def _outgoing(self, row: Delivery, text: str, index: int, last: bool) -> Outgoing:
        attachment = None
        data = row.attachment
        if index == 0 and data.get("file_id") and data.get("platform") == row.platform:
            attachment = Attachment(kind=data.get("kind", "document"),
                                    file_id=str(data["file_id"]),
                                    filename=str(data.get("filename", "")))
        buttons = tuple(
            tuple(Button(label=str(b[0]), payload=str(b[1]), url=str(b[2]) if len(b) > 2 else "")
                  for b in line)
            for line in row.buttons
        ) if last else ()
        return Outgoing(text=text, buttons=buttons, attachment=attachment,
                        pin=row.pin and index == 0)

    async def _failed(self, row: Delivery, exc: DeliveryError) -> None:
        now = self._clock.now()
        key = (row.platform, row.chat_id)
        self._metrics.deliveries.labels(row.platform, exc.problem).inc()
        if exc.problem == "retry_after":
            wait = max(exc.retry_after, 1.0)
            self._next_slot[key] = time.monotonic() + wait
            log.info("outbox: 429 for %s, waiting %.0f s", row.chat_id, wait)
            await self._release(row, now + timedelta(seconds=wait))
        elif exc.problem == "migrated" and exc.new_chat_id:
            await self._chats.migrated(row.platform, row.chat_id, exc.new_chat_id)
            log.info("outbox: chat %s migrated to %s", row.chat_id, exc.new_chat_id)
            await self._release(row, now, chat_id=exc.new_chat_id)
        elif exc.problem == "transient" and row.attempts + 1 < self.pacing.max_attempts:
            attempts = row.attempts + 1
            backoff = min(2 ** attempts, self.pacing.max_backoff_seconds)
            await self._release(row, now + timedelta(seconds=backoff), attempts=attempts,
                                error=exc.description[:300])
        else:
            if exc.problem == "gone" and row.is_group:  # a person who blocked the bot has
                await self._chats.bot_removed(  # no binding to switch off
                    row.platform, Chat(row.chat_id, "group"), None)
            log.warning("outbox: delivery %s to %s failed: %s", row.id, row.chat_id, exc)
            if not await self._save(row, state="failed", claimed_by="",
                                    attempts=row.attempts + 1,
                                    error=f"{exc.problem}: {exc.description}"[:300]):
                return
            self._metrics.deliveries.labels(row.platform, "failed").inc()
            await self._maybe_finished(row)

    async def _maybe_finished(self, row: Delivery) -> None:
        callback = self._finished.get(row.kind)
        if callback is None or row.ref_id is None:
            return
        counts = await self.counts(row.kind, row.ref_id)
        if all(state in FINAL for state in counts):
            try:
                await callback(row.kind, row.ref_id)
            except Exception:
                log.exception("outbox: finished-callback for %s %s failed", row.kind,
                              row.ref_id)
