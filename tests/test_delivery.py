"""The one way out (bot/delivery/): one pacer per token, replies first, 429s waited out and
never a lost message, one sender per token across instances, rows only for the platforms an
instance serves. Time is virtual (`VirtualSleeper`, `FrozenClock`): nothing sleeps."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlmodel import select

from bot.clock import FrozenClock, VirtualSleeper
from bot.core import Attachment, Capabilities, DeliveryError, Outgoing, Sent
from bot.db import Database
from bot.delivery.courier import Courier
from bot.delivery.outbox import ChatHooks, NewDelivery, Outbox, Pacing
from bot.delivery.pacer import Lanes, Limits, Pacer, Priority
from bot.delivery.quiet import QuietHours
from bot.metrics import Metrics
from bot.models import Delivery, SendLease

START = datetime(2026, 11, 24, 4, 0, tzinfo=UTC)


# --- the pacer ---------------------------------------------------------------------------
async def test_slots_are_evenly_spaced_and_never_a_burst() -> None:
    sleeper = VirtualSleeper()
    pacer = Pacer(10.0, sleeper)
    moments = []
    for _ in range(21):
        await pacer.acquire(Priority.BULK)
        moments.append(sleeper.monotonic())
    await pacer.close()
    gaps = [b - a for a, b in zip(moments, moments[1:], strict=False)]
    assert min(gaps) >= 0.1 - 1e-9  # 10 a second: never two within 0.1 s
    assert moments[-1] - moments[0] == pytest.approx(2.0)


async def test_a_reply_takes_the_next_slot_ahead_of_bulk_already_waiting() -> None:
    sleeper = VirtualSleeper()
    pacer = Pacer(5.0, sleeper)
    order: list[str] = []

    async def send(name: str, priority: Priority) -> None:
        await pacer.acquire(priority)
        order.append(name)

    await send("first", Priority.BULK)  # the slot now: the rest must wait
    bulk = [asyncio.create_task(send(f"bulk{i}", Priority.BULK)) for i in range(5)]
    await asyncio.sleep(0)
    person = asyncio.create_task(send("person", Priority.PERSON))
    reply = asyncio.create_task(send("reply", Priority.REPLY))
    await asyncio.gather(*bulk, person, reply)
    await pacer.close()
    assert order[:3] == ["first", "reply", "person"]
    assert order[3:] == [f"bulk{i}" for i in range(5)]  # bulk keeps its own order


async def test_a_token_pause_holds_every_sender() -> None:
    sleeper = VirtualSleeper()
    pacer = Pacer(30.0, sleeper)
    await pacer.acquire(Priority.BULK)
    pacer.pause(7.0)
    before = sleeper.monotonic()
    await pacer.acquire(Priority.REPLY)
    assert sleeper.monotonic() - before >= 7.0
    await pacer.close()


def test_a_429_rests_the_chat_or_the_whole_token() -> None:
    sleeper = VirtualSleeper()
    lanes = Lanes(sleeper, {}, Limits(per_second=30))
    assert not lanes.refused("telegram", "-1001", True, 40)  # a group's own minute
    assert lanes.resting("telegram", "-1001") == 40
    assert lanes.resting("telegram", "-1002") == 0
    assert lanes.refused("telegram", "-1002", True, 1)  # a second group at once: the token
    assert lanes.refused("telegram", "77", False, 1)  # a private chat has no limit of its own


# --- a platform that refuses as told -------------------------------------------------------
@dataclass
class Scripted:
    """Answers sends in order; a queued DeliveryError is raised instead of the next send."""

    name: str = "telegram"
    capabilities: Capabilities = field(default_factory=Capabilities)
    refusals: list[DeliveryError] = field(default_factory=list)
    got: list[tuple[str, str]] = field(default_factory=list)
    edits: list[tuple[str, str, str]] = field(default_factory=list)

    @property
    def bot_username(self) -> str:
        return "cds_test_bot"

    async def send(self, chat_id: str, message: Outgoing) -> Sent:
        if self.refusals:
            raise self.refusals.pop(0)
        self.got.append((chat_id, message.text))
        return Sent(chat_id, str(len(self.got)))

    async def edit(self, chat_id: str, message_id: str, message: Outgoing) -> Sent:
        if self.refusals:
            raise self.refusals.pop(0)
        self.edits.append((chat_id, message_id, message.text))
        return Sent(chat_id, message_id)

    async def answer_button(self, callback_id: str, text: str = "") -> None:
        return None

    async def download(self, attachment: Attachment) -> bytes:
        return b""

    def invite_link(self, code: str) -> str:
        return code


@dataclass
class Rig:
    db: Database
    clock: FrozenClock
    sleeper: VirtualSleeper
    outbox: Outbox
    courier: Courier
    platform: Scripted


def make_outbox(db: Database, clock: FrozenClock, platforms: dict[str, Any],
                sleeper: VirtualSleeper, **pacing: Any) -> Outbox:
    return Outbox(db, clock, platforms, Metrics(clock), quiet=QuietHours(None, UTC),
                  pacing=Pacing(**{"per_second": 30.0, "workers": 2, **pacing}),
                  sleeper=sleeper)


@pytest.fixture
async def rig(db: Database) -> Rig:
    clock = FrozenClock(START)
    sleeper = VirtualSleeper(clock)
    platform = Scripted()
    outbox = make_outbox(db, clock, {"telegram": platform}, sleeper)
    return Rig(db, clock, sleeper, outbox, Courier(outbox, Metrics(clock)), platform)


def too_many(seconds: float) -> DeliveryError:
    return DeliveryError("retry_after", "Too Many Requests", retry_after=seconds)


async def test_a_reply_refused_with_429_is_sent_after_retry_after_once(rig: Rig) -> None:
    rig.platform.refusals = [too_many(3), too_many(2)]
    sent = await rig.courier.reply(rig.platform, "501", [Outgoing("Chào bác")], is_group=False)
    assert rig.platform.got == [("501", "Chào bác")]
    assert sent.message_id == "1"
    assert sum(rig.sleeper.slept) >= 5.0  # both waits obeyed


async def test_a_reply_that_would_wait_too_long_is_handed_to_the_outbox(rig: Rig) -> None:
    """A group chat at rest for a minute: the conversation is not held up, and the answer
    goes out as the first row once the chat may be written to again."""
    rig.platform.refusals = [too_many(45)]
    pieces = [Outgoing("Phần 1"), Outgoing("Phần 2")]
    sent = await rig.courier.reply(rig.platform, "-1009", pieces, is_group=True)
    assert sent.message_id == "" and rig.platform.got == []
    await rig.outbox.enqueue([NewDelivery(  # bulk to another chat, due now
        kind="notice", ref_id=1, dedupe="n1", platform="telegram", chat_id="-1010",
        text="Thông báo")])
    await rig.outbox.run_once()
    assert rig.platform.got == [("-1010", "Thông báo")]  # the reply waits for its chat
    rig.clock.advance(timedelta(seconds=46))
    rig.sleeper._now += 46
    while await rig.outbox.run_once():
        pass
    assert rig.platform.got[1:] == [("-1009", "Phần 1"), ("-1009", "Phần 2")]


async def test_notify_rows_go_before_bulk_and_replies_before_both(rig: Rig) -> None:
    await rig.outbox.enqueue([
        NewDelivery(kind="notice", ref_id=1, dedupe=f"b{i}", platform="telegram",
                    chat_id=f"-20{i}", text=f"bulk {i}") for i in range(3)])
    await rig.courier.tell("telegram", "601", "Phiếu PA-1 đã được xử lý")
    while await rig.outbox.run_once():
        pass
    assert [text for _, text in rig.platform.got] == [
        "Phiếu PA-1 đã được xử lý", "bulk 0", "bulk 1", "bulk 2"]


async def test_a_migrated_group_is_followed_and_the_chat_book_told(rig: Rig) -> None:
    moved: list[tuple[str, str, str]] = []

    async def on_moved(platform: str, old: str, new: str) -> None:
        moved.append((platform, old, new))

    rig.outbox.watch_chats(ChatHooks(moved=on_moved))
    rig.platform.refusals = [DeliveryError("migrated", "upgraded", new_chat_id="-100777")]
    await rig.courier.reply(rig.platform, "-777", [Outgoing("Đã liên kết")], is_group=True)
    assert rig.platform.got == [("-100777", "Đã liên kết")]
    assert moved == [("telegram", "-777", "-100777")]


async def test_an_edit_handed_over_stays_an_edit(rig: Rig) -> None:
    rig.platform.refusals = [too_many(60)]
    await rig.courier.reply(rig.platform, "502", [Outgoing("Trang 2")], is_group=False,
                            edit_of="41")
    rig.clock.advance(timedelta(seconds=61))
    rig.sleeper._now += 61
    while await rig.outbox.run_once():
        pass
    assert rig.platform.edits == [("502", "41", "Trang 2")] and rig.platform.got == []


# --- platforms an instance serves -----------------------------------------------------------
async def test_an_instance_claims_only_rows_of_platforms_it_serves(db_url: str) -> None:
    """A Zalo-only instance next to the Telegram one: it sends the Zalo rows and never
    touches (claims, delays) a Telegram row."""
    db = Database(db_url)
    await db.upgrade()
    try:
        clock = FrozenClock(START)
        zalo = Scripted(name="zalo")
        outbox = make_outbox(db, clock, {"zalo": zalo}, VirtualSleeper(clock))
        await outbox.enqueue([
            NewDelivery(kind="notice", ref_id=1, dedupe=f"{p}:{i}", platform=p,
                        chat_id=f"{p}-{i}", text="Họp tổ")
            for p in ("telegram", "zalo") for i in range(5)])
        await outbox.start()
        for _ in range(200):
            if len(zalo.got) == 5:
                break
            await asyncio.sleep(0.01)
        await outbox.stop()
        assert sorted(chat for chat, _ in zalo.got) == [f"zalo-{i}" for i in range(5)]
        async with db.session() as session:
            rows = (await session.exec(
                select(Delivery).where(Delivery.platform == "telegram"))).all()
        assert {(r.state, r.claimed_by, r.not_before) for r in rows} == {("pending", "", START)}
    finally:
        await db.dispose()


# --- two instances on one PostgreSQL database ---------------------------------------------
@pytest.mark.postgres
async def test_one_sender_per_token_and_the_survivor_takes_over(pg_url: str) -> None:
    first_db, second_db = Database(pg_url), Database(pg_url)
    await first_db.upgrade()
    clock = FrozenClock(START)
    a, b = Scripted(), Scripted()
    # One worker each: a crash doubles at most what was in flight, one message a worker.
    first = make_outbox(first_db, clock, {"telegram": a}, VirtualSleeper(), batch=4, workers=1)
    second = make_outbox(second_db, clock, {"telegram": b}, VirtualSleeper(), batch=4,
                         workers=1)
    try:
        await first.start()
        await second.start()
        assert first.leases.holds("telegram") and not second.leases.holds("telegram")
        chats = [str(-5000 - i) for i in range(40)]
        await second.enqueue([  # any instance may enqueue; the sender is woken
            NewDelivery(kind="notice", ref_id=1, dedupe=f"c:{c}", platform="telegram",
                        chat_id=c, text="Xin chào") for c in chats])
        for _ in range(300):
            if len(a.got) >= 20:
                break
            await asyncio.sleep(0.01)
        # The sender dies (no clean stop): its tasks end, its lease row stays.
        for task in [*first._tasks, first._lease_task]:
            assert task is not None
            task.cancel()
        await asyncio.gather(*first._tasks, return_exceptions=True)
        assert b.got == []  # never two senders for one token
        sent_by_first = len(a.got)
        clock.advance(timedelta(seconds=9))  # within the lease: nobody takes over
        await second.leases.refresh(["telegram"])
        assert not second.leases.holds("telegram")
        clock.advance(timedelta(seconds=2))  # the lease has run out
        await second.leases.refresh(["telegram"])  # (its own loop may be there first)
        assert second.leases.holds("telegram")
        await second.drain(within=20)
        got = [chat for chat, _ in a.got + b.got]
        assert sorted(set(got)) == sorted(chats)  # none missed
        assert len(got) - len(chats) <= 1  # at most the one in flight, twice
        assert len(a.got) == sent_by_first
        async with first_db.session() as session:
            lease = await session.get(SendLease, "telegram")
        assert lease is not None and lease.holder == second.leases.holder
    finally:
        await second.stop()
        await first._listener.stop()
        await first.lanes.close()
        await first_db.dispose()
        await second_db.dispose()


@pytest.mark.postgres
async def test_a_stalled_sender_stops_before_its_lease_can_pass_on(pg_url: str) -> None:
    db = Database(pg_url)
    await db.upgrade()
    try:
        clock = FrozenClock(START)
        sleeper = VirtualSleeper()
        outbox = make_outbox(db, clock, {"telegram": Scripted()}, sleeper)
        assert await outbox.leases.refresh(["telegram"]) == ["telegram"]
        sleeper._now += 9.5  # no renewal for 9.5 s (its event loop stalled)
        assert not outbox.leases.holds("telegram")  # it stops sending on its own
        assert await outbox.leases.refresh(["telegram"]) == ["telegram"]  # and renews
    finally:
        await db.dispose()


@pytest.mark.postgres
async def test_a_clean_stop_hands_the_token_over_at_once(pg_url: str) -> None:
    first_db, second_db = Database(pg_url), Database(pg_url)
    await first_db.upgrade()
    clock = FrozenClock(START)
    first = make_outbox(first_db, clock, {"telegram": Scripted()}, VirtualSleeper())
    second = make_outbox(second_db, clock, {"telegram": Scripted()}, VirtualSleeper())
    try:
        await first.start()
        await second.start()
        await first.stop()
        await second.leases.refresh(["telegram"])  # (or the notification got there first)
        assert second.leases.holds("telegram")
    finally:
        await second.stop()
        await first_db.dispose()
        await second_db.dispose()
