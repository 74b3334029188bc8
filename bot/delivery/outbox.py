"""The outbox: every message that is not the answer to the person who just wrote is one
row per target chat, written before anything is sent, then delivered by workers within the
platforms' limits.

Why our own pacing: python-telegram-bot's `AIORateLimiter` halts every chat when one chat
gets a 429, and ends that halt too early (22.x). Here each worker claims due rows and takes
its turn from the token's one `Pacer` (shared with the immediate replies of `Courier`, which
go first), keeps each chat to its own rate (20 a minute in groups), obeys a 429's
`retry_after` for that chat (or the whole token), retries transient failures with capped
exponential backoff, and stops sending to chats that are gone (telling the chat book
through `ChatHooks`: delivery imports no service).

Claiming is one `UPDATE … WHERE id IN (SELECT … [FOR UPDATE SKIP LOCKED])` stamped with a
fresh token, so two workers never take the same row, and only rows of platforms whose send
lease this instance holds (`lease.py`): one sender per token across instances, which also
means an instance without Telegram never touches Telegram rows. A row is marked sent right
after its send, so a crash re-sends at most what was in flight; rows a dead sender held are
given back the moment its successor takes the lease (at once on SQLite). Idle workers sleep
until the next row comes due or a new row is written (LISTEN/NOTIFY on PostgreSQL).
"""

from __future__ import annotations

import asyncio
import base64
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import col, select

from bot.clock import Clock, Sleeper, SystemSleeper
from bot.core import Attachment, Button, DeliveryError, Outgoing, Platform, Sent
from bot.db import Database, insert_or_skip
from bot.delivery.lease import LEASE_CHANNEL, SendLeases
from bot.delivery.listen import Listener
from bot.delivery.pacer import Lanes, Limits, Priority
from bot.delivery.quiet import QuietHours
from bot.metrics import Metrics
from bot.models import Delivery
from bot.texts import split_text

log = logging.getLogger(__name__)

__all__ = ["ChatHooks", "Limits", "NewDelivery", "Outbox", "Outcome", "Pacing", "Priority"]

FINAL = ("sent", "failed")
SHORT_WAIT = 1.0  # a chat's next slot this close is waited for, not given back
IDLE_MAX = 30.0  # an idle worker looks again at least this often (a lost notification)
ROWS_CHANNEL = "cds_outbox"
Finished = Callable[[str, int], Awaitable[None]]
Moved = Callable[[str, str, str], Awaitable[None]]  # platform, old chat id, new chat id
Gone = Callable[[str, str], Awaitable[None]]  # platform, group chat id


async def _nothing(*_args: str) -> None:
    return None


@dataclass(frozen=True)
class ChatHooks:
    """What delivery tells the chat book: a group moved to a new id, or is gone for the
    bot. Registered by the composition root."""

    moved: Moved = _nothing
    gone: Gone = _nothing


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
    priority: int = Priority.BULK
    not_before: datetime | None = None
    edit_of: str = ""  # a message id: edit it instead of sending a new one


@dataclass(frozen=True)
class Outcome:
    """Where one row ended (or stands): what a delivery report shows."""

    id: int
    platform: str
    chat_id: str
    group_id: int | None
    state: str
    error: str
    message_id: str
    attempts: int
    not_before: datetime


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
    sender_lease_seconds: float = 10.0
    sender_renew_seconds: float = 2.5


class Outbox:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        platforms: Mapping[str, Platform],
        metrics: Metrics,
        *,
        quiet: QuietHours,
        pacing: Pacing | None = None,
        limits: Mapping[str, Limits] | None = None,
        sleeper: Sleeper | None = None,
        hooks: ChatHooks | None = None,
        holder: str | None = None,
    ) -> None:
        self._db = db
        self._clock = clock
        self.clock = clock
        self.platforms = platforms
        self._metrics = metrics
        self._quiet = quiet
        self.pacing = pacing or Pacing()
        self.sleeper: Sleeper = sleeper or SystemSleeper()
        self.hooks = hooks or ChatHooks()
        default = Limits(self.pacing.per_second, self.pacing.group_per_minute,
                         self.pacing.private_per_second)
        self.lanes = Lanes(self.sleeper, {"telegram": default, **(limits or {})}, default)
        self.leases = SendLeases(db, clock, self.sleeper, holder=holder,
                                 seconds=self.pacing.sender_lease_seconds,
                                 every=self.pacing.sender_renew_seconds)
        self.leases.on_gained(self._took_over)
        self._listener = Listener(db, self.sleeper, (ROWS_CHANNEL, LEASE_CHANNEL), self._heard)
        self._me = secrets.token_hex(6)  # prefix of this instance's claims
        self._stopping = False
        self._wake = asyncio.Event()
        self._urgent = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._lease_task: asyncio.Task[None] | None = None
        self._finished: dict[str, Finished] = {}
        self._postgres = db.engine.dialect.name == "postgresql"

    def quiet_until(self, when: datetime) -> datetime | None:
        """When group messages due at `when` will really go (end of quiet hours), or None."""
        return self._quiet.ends_after(when)

    def on_finished(self, kind: str, callback: Finished) -> None:
        """Call back when every row of one notice (or poll…) is sent or failed."""
        self._finished[kind] = callback

    def watch_chats(self, hooks: ChatHooks) -> None:
        """Who to tell when a group moves or is gone (the composition root's chat book)."""
        self.hooks = hooks

    def limits(self, platform: str) -> Limits:
        return self.lanes.limits(platform)

    # --- writing ---------------------------------------------------------------------------
    async def enqueue(self, items: Sequence[NewDelivery], *, wake: bool = True) -> int:
        """Queue rows; a `dedupe` key already queued is skipped, so re-running a schedule
        after a restart (or on two instances) never doubles a message. Returns how many
        were offered. The sender (this instance or another) is woken at once."""
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
                "attachment": dict(i.attachment), "pin": i.pin, "priority": int(i.priority),
                "state": "pending", "attempts": 0, "parts_sent": 0,
                "not_before": i.not_before or now, "claimed_by": "", "message_id": "",
                "error": "", "created_at": now, "edit_of": i.edit_of,
            }
            for i in items
        ]
        dialect = "postgresql" if self._postgres else "sqlite"
        statement = insert_or_skip(dialect, Delivery).on_conflict_do_nothing(
            index_elements=["dedupe"])
        async with self._db.session() as session:
            await session.exec(statement, params=rows)
            if self._postgres and wake:  # delivered to listeners when this commits
                platforms = ",".join(sorted({i.platform for i in items}))
                await session.exec(select(sa.func.pg_notify(ROWS_CHANNEL, platforms)))
        if wake:  # else the caller wakes the workers once it has told its person
            self.wake(urgent=min(i.priority for i in items) <= Priority.PERSON)
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

    async def rows(self, kind: str, ref_id: int) -> list[Outcome]:
        """Every row of one notice (poll…), in the order written."""
        async with self._db.session() as session:
            found = (
                await session.exec(
                    select(Delivery)
                    .where(Delivery.kind == kind, Delivery.ref_id == ref_id)
                    .order_by(col(Delivery.id))
                )
            ).all()
        return [
            Outcome(id=d.id or 0, platform=d.platform, chat_id=d.chat_id, group_id=d.group_id,
                    state=d.state, error=d.error, message_id=d.message_id, attempts=d.attempts,
                    not_before=d.not_before)
            for d in found
        ]

    # --- workers ---------------------------------------------------------------------------
    async def start(self) -> None:
        if not self._postgres:
            await self._release_all()
        self._stopping = False
        self._listener.start()
        await self.leases.refresh(list(self.platforms))
        if self._postgres:
            self._lease_task = asyncio.create_task(
                self.leases.run(lambda: list(self.platforms)), name="outbox-lease")
        self._tasks.append(asyncio.create_task(self._work(urgent=True), name="outbox-urgent"))
        for n in range(self.pacing.workers):
            self._tasks.append(asyncio.create_task(self._work(), name=f"outbox-{n}"))

    async def stop(self, grace: float = 5.0) -> None:
        """Finish the sends in flight (so a normal stop doubles nothing), give the rest of
        each claimed batch back, let go of the send lease, then stop; workers still busy
        after `grace` are cancelled."""
        self._stopping = True
        self.wake(urgent=True)
        if self._tasks:
            _done, busy = await asyncio.wait(self._tasks, timeout=grace)
            for task in busy:
                task.cancel()
            for task in self._tasks:
                with suppress(asyncio.CancelledError, Exception):
                    await task
        self._tasks.clear()
        lease_task, self._lease_task = self._lease_task, None
        if lease_task is not None:
            lease_task.cancel()
            with suppress(asyncio.CancelledError):
                await lease_task
        await self._listener.stop()
        await self.leases.release()
        await self.lanes.close()

    def wake(self, *, urgent: bool = False) -> None:
        self._wake.set()
        if urgent:
            self._urgent.set()

    def _heard(self, channel: str, payload: str) -> None:
        if channel == LEASE_CHANNEL:
            self.leases.poke()
        elif any(p in self.platforms for p in payload.split(",")):
            self.wake(urgent=True)

    async def _took_over(self, platform: str) -> None:
        """This instance has just become the sender for `platform`: rows the previous
        sender had claimed and not finished are due again now (not after a row lease)."""
        async with self._db.session() as session:
            result = await session.exec(
                sa.update(Delivery)
                .where(col(Delivery.platform) == platform, col(Delivery.state) == "sending",
                       sa.not_(col(Delivery.claimed_by).startswith(self._me)))
                .values(state="pending", claimed_by="")
            )
        if result.rowcount:
            log.info("outbox: took over %d %s deliveries in flight", result.rowcount, platform)
        self.wake(urgent=True)

    async def _release_all(self) -> None:
        """SQLite runs one instance: rows still marked in flight were left by a crash."""
        async with self._db.session() as session:
            await session.exec(
                sa.update(Delivery).where(col(Delivery.state) == "sending")
                .values(state="pending", claimed_by="")
            )

    async def _work(self, *, urgent: bool = False) -> None:
        """One worker; the urgent one takes only replies and messages to people, so they
        never wait behind a batch of bulk another worker holds."""
        event = self._urgent if urgent else self._wake
        while not self._stopping:
            event.clear()
            try:
                done = await self.run_once(urgent=urgent)
                due = None if done else await self._next_due(urgent)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("outbox: worker failed; retrying in a second")
                done, due = 0, 1.0
            if not done and not self._stopping:
                await self._idle(event, due)

    async def _idle(self, event: asyncio.Event, due: float | None) -> None:
        """Until new rows are written (the event) or the next row of ours comes due."""
        if due is None:  # nothing waiting: only a new row (or a lost notification) wakes us
            with suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), timeout=IDLE_MAX)
            return
        woken = asyncio.ensure_future(event.wait())
        timer = asyncio.ensure_future(self.sleeper.sleep(due))
        try:
            await asyncio.wait({woken, timer}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (woken, timer):
                task.cancel()
            await asyncio.gather(woken, timer, return_exceptions=True)

    async def _next_due(self, urgent: bool) -> float | None:
        """Seconds until the next row of ours comes due (at most IDLE_MAX); None if none."""
        held = self.leases.held(self.platforms)
        if not held:  # not the sender: taking the lease over wakes us (`_took_over`)
            return None
        query = select(sa.func.min(Delivery.not_before)).where(
            col(Delivery.state) == "pending", col(Delivery.platform).in_(held))
        if urgent:
            query = query.where(col(Delivery.priority) <= Priority.PERSON)
        async with self._db.session() as session:
            due = (await session.exec(query)).one()
        if due is None:
            return None
        seconds = (due - self._clock.now()).total_seconds()
        return min(max(seconds, 0.05), IDLE_MAX)

    async def run_once(self, *, urgent: bool = False) -> int:
        """Claim a batch of due rows and deliver them; returns how many were claimed."""
        rows = await self._claim(2 if urgent else self.pacing.batch, urgent=urgent)
        finished: set[tuple[str, int]] = set()
        for index, row in enumerate(rows):
            if self._stopping:  # stopping: what was claimed but not begun goes back
                for rest in rows[index:]:
                    await self._release(rest, self._clock.now())
                break
            if await self._deliver(row) and row.ref_id is not None:
                finished.add((row.kind, row.ref_id))
        for kind, ref_id in sorted(finished):  # once a batch, not once a row
            await self._maybe_finished(kind, ref_id)
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

    async def _claim(self, limit: int, *, urgent: bool = False) -> list[Delivery]:
        held = self.leases.held(self.platforms)
        if not held:
            return []
        now = self._clock.now()
        token = f"{self._me}-{secrets.token_hex(6)}"
        lease = now - timedelta(seconds=self.pacing.lease_seconds)
        due = (
            select(Delivery.id)
            .where(
                col(Delivery.platform).in_(held),
                sa.or_(
                    sa.and_(col(Delivery.state) == "pending", col(Delivery.not_before) <= now),
                    sa.and_(col(Delivery.state) == "sending", col(Delivery.claimed_at) < lease),
                ),
            )
            .order_by(col(Delivery.priority), col(Delivery.id))
            .limit(limit)
        )
        if urgent:
            due = due.where(col(Delivery.priority) <= Priority.PERSON)
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

    def _chat_wait(self, row: Delivery) -> float:
        """A reply handed over by another instance waits only for a 429's rest, as the
        replies sent here do; everything else keeps its chat's pace too."""
        if row.priority <= Priority.REPLY:
            return self.lanes.resting(row.platform, row.chat_id)
        return self.lanes.wait(row.platform, row.chat_id)

    async def _deliver(self, row: Delivery) -> bool:
        """Send one row (all its parts); True when it ended sent or failed."""
        now = self._clock.now()
        platform = self.platforms.get(row.platform)
        if platform is None or not self.leases.holds(row.platform):
            await self._release(row, now)  # the sender for that token will take it
            return False
        if row.is_group and row.priority > Priority.REPLY:
            quiet_end = self._quiet.ends_after(now)
            if quiet_end is not None:
                self._metrics.deliveries.labels(row.platform, "quiet").inc()
                await self._release(row, quiet_end)
                return False
        wait = self._chat_wait(row)
        if wait > SHORT_WAIT:  # this chat must rest: let other chats go first
            await self._release(row, now + timedelta(seconds=wait))
            return False
        parts = split_text(row.text, platform.capabilities.max_text) or [""]
        sent = Sent(row.chat_id, row.message_id)
        try:
            for index in range(row.parts_sent, len(parts)):
                wait = self._chat_wait(row)
                if wait > 0:
                    await self.sleeper.sleep(wait)  # the next part of a long message, in order
                await self.lanes.pacer(row.platform).acquire(row.priority)
                if not self.leases.holds(row.platform) or not await self._still_mine(row):
                    log.warning("outbox: delivery %s was taken over; leaving it", row.id)
                    return False
                self.lanes.sent(row.platform, row.chat_id, row.is_group)
                last = index == len(parts) - 1
                message = self._outgoing(row, parts[index], index, last)
                sent = await self._send(platform, row, message, single=len(parts) == 1)
                if not last:  # progress of a long message, so a crash resumes after it
                    await self._save(row, parts_sent=index + 1, message_id=sent.message_id)
        except DeliveryError as exc:
            return await self._failed(row, exc)
        except Exception as exc:  # an adapter bug must not stop the outbox
            log.exception("outbox: unexpected error sending delivery %s", row.id)
            return await self._failed(row, DeliveryError("transient", str(exc)[:200]))
        if not await self._save(row, state="sent", sent_at=self._clock.now(), claimed_by="",
                                parts_sent=len(parts), message_id=sent.message_id):
            return False
        self._metrics.deliveries.labels(row.platform, "sent").inc()
        return True

    async def _still_mine(self, row: Delivery) -> bool:
        """Before a send: is the row still this worker's? Asked of the database only once
        the claim is a third of the row lease old (one write less per message); a takeover
        by this instance's successor is stopped by the send lease itself."""
        claimed = row.claimed_at
        if claimed is not None and (self._clock.now() - claimed).total_seconds() < \
                self.pacing.lease_seconds / 3:
            return True
        return await self._renew(row)

    async def _send(self, platform: Platform, row: Delivery, message: Outgoing, *,
                    single: bool) -> Sent:
        if row.edit_of and single and platform.capabilities.edit:
            return await platform.edit(row.chat_id, row.edit_of, message)
        return await platform.send(row.chat_id, message)

    def _outgoing(self, row: Delivery, text: str, index: int, last: bool) -> Outgoing:
        attachment = None
        data = row.attachment
        if index == 0 and data.get("data_b64"):  # a reply's file, handed over by a process
            attachment = Attachment(kind=data.get("kind", "document"),  # that was not sending
                                    data=base64.b64decode(data["data_b64"]),
                                    filename=str(data.get("filename", "")),
                                    mime_type=str(data.get("mime_type", "")))
        elif index == 0 and data.get("file_id") and data.get("platform") == row.platform:
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

    async def _failed(self, row: Delivery, exc: DeliveryError) -> bool:
        """Act on a refusal; True when the row has ended (failed for good)."""
        now = self._clock.now()
        self._metrics.deliveries.labels(row.platform, exc.problem).inc()
        if exc.problem == "retry_after":
            wait = max(exc.retry_after, 1.0)
            self.lanes.refused(row.platform, row.chat_id, row.is_group, wait)
            log.info("outbox: 429 for %s, waiting %.0f s", row.chat_id, wait)
            await self._release(row, now + timedelta(seconds=wait))
            return False
        elif exc.problem == "paused":  # the platform's quota: the row waits, unharmed
            await self._release(row, now + timedelta(seconds=max(exc.retry_after, 1.0)),
                                error=f"paused: {exc.description}"[:300])
            return False
        elif exc.problem == "migrated" and exc.new_chat_id:
            await self.hooks.moved(row.platform, row.chat_id, exc.new_chat_id)
            self.lanes.moved(row.platform, row.chat_id, exc.new_chat_id)
            log.info("outbox: chat %s migrated to %s", row.chat_id, exc.new_chat_id)
            await self._release(row, now, chat_id=exc.new_chat_id)
            return False
        elif exc.problem == "transient" and row.attempts + 1 < self.pacing.max_attempts:
            attempts = row.attempts + 1
            backoff = min(2 ** attempts, self.pacing.max_backoff_seconds)
            await self._release(row, now + timedelta(seconds=backoff), attempts=attempts,
                                error=exc.description[:300])
            return False
        else:
            if exc.problem == "gone" and row.is_group:  # a person who blocked the bot has
                await self.hooks.gone(row.platform, row.chat_id)  # no binding to switch off
            log.warning("outbox: delivery %s to %s failed: %s", row.id, row.chat_id, exc)
            if not await self._save(row, state="failed", claimed_by="",
                                    attempts=row.attempts + 1,
                                    error=f"{exc.problem}: {exc.description}"[:300]):
                return False
            self._metrics.deliveries.labels(row.platform, "failed").inc()
            return True

    async def _maybe_finished(self, kind: str, ref_id: int) -> None:
        callback = self._finished.get(kind)
        if callback is None:
            return
        async with self._db.session() as session:
            open_row = (await session.exec(
                select(Delivery.id).where(
                    Delivery.kind == kind, Delivery.ref_id == ref_id,
                    col(Delivery.state).in_(("pending", "sending")),
                ).limit(1)
            )).first()
        if open_row is None:
            try:
                await callback(kind, ref_id)
            except Exception:
                log.exception("outbox: finished-callback for %s %s failed", kind, ref_id)
