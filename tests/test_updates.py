"""Updates keep flowing: side by side across chats, in order within one, and an update
nobody can read is skipped (logged once, counted) instead of stopping the bot."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.app import BotApp
from bot.lanes import Lanes
from bot.log_limit import LogLimiter
from bot.router import Ctx
from tests.fake_telegram import FakeTelegram
from tests.test_telegram import TOKEN, config_for, plain, start_app


@pytest.fixture
async def tg() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram(token=TOKEN, bot_username="cds_test_bot") as server:
        yield server


@pytest.fixture
async def app(tg: FakeTelegram, tmp_path: Path) -> AsyncIterator[BotApp]:
    bot_app = await start_app(config_for(tg, tmp_path))
    yield bot_app
    await bot_app.stop()


def skipped(app: BotApp, reason: str) -> float:
    value = app.context.metrics.registry.get_sample_value(
        "cds_updates_skipped_total", {"platform": "telegram", "reason": reason}
    )
    return value or 0.0


def restricted_without_until_date(chat_id: int, user_id: int) -> dict[str, object]:
    """A change Telegram may send that PTB 22 cannot read: fields it requires are absent."""
    bot_user = {"id": 123456, "is_bot": True, "first_name": "CDS Bot",
                "username": "cds_test_bot"}
    return {"my_chat_member": {
        "chat": {"id": chat_id, "type": "supergroup", "title": "Tổ 5 Nguyễn Văn Bí Mật"},
        "from": {"id": user_id, "is_bot": False, "first_name": "Trần Thị Riêng Tư"},
        "date": 1_700_000_000,
        "old_chat_member": {"user": bot_user, "status": "member"},
        "new_chat_member": {"user": bot_user, "status": "restricted", "can_send_messages": False},
    }}


async def test_a_poison_update_is_skipped_once_and_every_good_one_answered(
    app: BotApp, tg: FakeTelegram, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    people = list(range(7001, 7041))
    for user in people[:20]:
        tg.message(user, user, "/trogiup")
    tg.raw_update(restricted_without_until_date(-100777, 7999))
    for user in people[20:]:
        tg.message(user, user, "/trogiup")

    for user in people:
        [reply] = await tg.wait_sent(user, within=10)
        assert "Các lệnh bạn dùng được" in plain(reply)
    # Polling went on normally: later updates are still read.
    tg.message(7100, 7100, "/trogiup")
    await tg.wait_sent(7100, within=5)

    about_it = [r for r in caplog.records if "cannot be read" in r.getMessage()]
    assert len(about_it) == 1
    line = about_it[0].getMessage()
    assert "my_chat_member" in line
    for private in ("Riêng Tư", "Bí Mật", "7999", "-100777"):
        assert private not in line
    assert not [r for r in caplog.records if r.levelno >= logging.CRITICAL]
    assert skipped(app, "unparseable") == 1
    metrics = app.context.metrics.render().decode()
    assert 'cds_updates_skipped_total{platform="telegram",reason="unparseable"} 1.0' in metrics


async def test_the_same_poison_twice_is_one_log_line_and_counted_twice(
    app: BotApp, tg: FakeTelegram, caplog: pytest.LogCaptureFixture
) -> None:
    tg.raw_update(restricted_without_until_date(-100777, 7999))
    tg.raw_update(restricted_without_until_date(-100778, 7998))
    tg.message(7001, 7001, "/trogiup")
    await tg.wait_sent(7001, within=5)
    assert len([r for r in caplog.records if "cannot be read" in r.getMessage()]) == 1
    assert skipped(app, "unparseable") == 2


async def test_two_chats_side_by_side_and_one_chat_in_order(
    app: BotApp, tg: FakeTelegram
) -> None:
    release = asyncio.Event()

    async def slow(ctx: Ctx) -> None:
        await release.wait()
        await ctx.reply("chậm xong")

    app.router.command("cham", slow, menu=False)
    tg.message(7001, 7001, "/cham")
    tg.message(7001, 7001, "/trogiup")
    tg.message(7002, 7002, "/trogiup")

    # The other chat is answered while the first one's handler still waits...
    [other] = await tg.wait_sent(7002, within=5)
    assert "Các lệnh bạn dùng được" in plain(other)
    # ...and the first chat's second message waits for its first.
    await asyncio.sleep(0.2)
    assert tg.sent_to(7001) == []

    release.set()
    first, second = await tg.wait_sent(7001, count=2, within=5)
    assert plain(first) == "chậm xong"
    assert "Các lệnh bạn dùng được" in plain(second)


async def test_a_failing_handler_does_not_hold_up_its_chat(app: BotApp, tg: FakeTelegram) -> None:
    async def boom(ctx: Ctx) -> None:
        raise RuntimeError("kaboom")

    app.router.command("hong", boom, menu=False)
    for _ in range(3):
        tg.message(7001, 7001, "/hong")
    tg.message(7001, 7001, "/trogiup")
    replies = await tg.wait_sent(7001, count=4, within=5)
    assert ["trục trặc" in plain(r) for r in replies] == [True, True, True, False]


async def test_lanes_run_chats_concurrently_and_each_in_order() -> None:
    lanes = Lanes(workers=4, max_pending=100)
    done: list[str] = []
    gate = asyncio.Event()

    def job(name: str, wait: bool = False, fail: bool = False) -> object:
        async def run() -> None:
            if wait:
                await gate.wait()
            if fail:
                raise ValueError(name)
            done.append(name)
        return run

    await lanes.submit("a", job("a1", wait=True))  # type: ignore[arg-type]
    await lanes.submit("a", job("a2", fail=True))  # type: ignore[arg-type]
    await lanes.submit("a", job("a3"))  # type: ignore[arg-type]
    for i in range(5):
        await lanes.submit("b", job(f"b{i}"))  # type: ignore[arg-type]
    await asyncio.sleep(0.05)
    assert done == [f"b{i}" for i in range(5)]
    gate.set()
    await asyncio.wait_for(lanes.join(), 2)
    assert done[5:] == ["a1", "a3"]
    assert lanes.pending == 0
    await lanes.stop()


async def test_lanes_bound_makes_the_producer_wait() -> None:
    lanes = Lanes(workers=1, max_pending=2)
    gate = asyncio.Event()

    async def blocked() -> None:
        await gate.wait()

    await lanes.submit("a", blocked)
    await lanes.submit("b", blocked)
    third = asyncio.create_task(lanes.submit("c", blocked))
    await asyncio.sleep(0.05)
    assert not third.done()
    gate.set()
    await asyncio.wait_for(third, 2)
    await asyncio.wait_for(lanes.join(), 2)
    await lanes.stop()


def test_log_limiter_writes_once_per_window_and_counts_the_rest(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [0.0]
    limiter = LogLimiter(logging.getLogger("t"), window=60, now=lambda: now[0])
    assert limiter.error("boom %s", "k", 1)
    assert not limiter.error("boom %s", "k", 2)
    assert not limiter.error("boom %s", "k", 3)
    assert limiter.error("other %s", "k2", 1)
    now[0] = 61.0
    assert limiter.error("boom %s", "k", 4)
    lines = [r.getMessage() for r in caplog.records]
    assert lines == ["boom 1", "other 1", "boom 4 (2 more like this not logged)"]


async def test_someone_who_just_wrote_goes_before_a_backlog() -> None:
    lanes = Lanes(workers=1, max_pending=100)
    done: list[str] = []

    def job(name: str) -> object:
        async def run() -> None:
            await asyncio.sleep(0)
            done.append(name)
        return run

    for i in range(8):
        await lanes.submit("busy", job(f"busy{i}"))  # type: ignore[arg-type]
    await asyncio.sleep(0)  # busy0 starts
    await lanes.submit("once", job("once"))  # type: ignore[arg-type]
    await asyncio.wait_for(lanes.join(), 2)
    await lanes.stop()
    assert done.index("once") <= 1
    assert [d for d in done if d != "once"] == [f"busy{i}" for i in range(8)]


async def test_zalo_polling_serves_two_chats_side_by_side_in_order(tmp_path: Path) -> None:
    from tests.fake_zalo import FakeZalo
    from tests.test_zalo import config_for as zalo_config
    from tests.test_zalo import start_app as start_zalo

    async with FakeZalo() as zl:
        bot_app = await start_zalo(zalo_config(zl, tmp_path))
        try:
            release = asyncio.Event()

            async def slow(ctx: Ctx) -> None:
                await release.wait()
                await ctx.reply("chậm xong")

            bot_app.router.command("cham", slow, menu=False)
            zl.text("z1", "z1", "/cham")
            zl.text("z1", "z1", "/trogiup")
            zl.text("z2", "z2", "/trogiup")
            [other] = await zl.wait_sent("z2", 1)
            assert "Các lệnh bạn dùng được" in str(other["text"])
            await asyncio.sleep(0.2)
            assert zl.sent_to("z1") == []
            release.set()
            first, second = await zl.wait_sent("z1", 2)
            assert str(first["text"]) == "chậm xong"
            assert "Các lệnh bạn dùng được" in str(second["text"])
        finally:
            await bot_app.stop()


async def test_a_burst_fetched_at_once_waits_behind_someone_who_wrote_once() -> None:
    lanes = Lanes(workers=1, max_pending=100)
    done: list[str] = []
    gate = asyncio.Event()

    def job(name: str) -> object:
        async def run() -> None:
            await gate.wait()
            done.append(name)
        return run

    await lanes.submit("first", job("first"))  # type: ignore[arg-type]
    for i in range(5):  # a burst, queued before any of it ran
        await lanes.submit("burst", job(f"burst{i}"))  # type: ignore[arg-type]
    await lanes.submit("once", job("once"))  # type: ignore[arg-type]
    gate.set()
    await asyncio.wait_for(lanes.join(), 2)
    await lanes.stop()
    assert done[:2] == ["first", "once"]
    assert [d for d in done if d.startswith("burst")] == [f"burst{i}" for i in range(5)]
