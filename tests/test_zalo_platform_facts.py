"""Zalo Bot Platform as the sources say it behaves (shared/PLATFORMS.md, issue #13), end to
end: the real app, a Telegram coordinator, Zalo group chats on the fake Zalo API.

- 403 is Zalo's "Internal server error": retried, the chat kept;
- 429 is the month's quota: bulk sends wait (rows kept), the coordinator is told once,
  /healthz and /metrics show it, one probe an hour resumes, an admin can resume at once;
- a group message begins with "@<display name>": the command after it runs;
- getUpdates may hand a consumed update back, even after a restart: it runs once.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.app import BotApp
from bot.clock import FrozenClock
from bot.config import Config, ZaloSection
from bot.core import Chat, DeliveryError, Outgoing, Role, Sender
from bot.platforms.zalo import GONE_AFTER_404S, ZaloClient, ZaloPlatform, strip_mention
from bot.services.platform_state import DbSeenIds
from tests.conftest import shared_content
from tests.fake_telegram import FakeTelegram
from tests.fake_zalo import FakeZalo
from tests.telegram_people import Ward, until

TOKEN = "123456:TEST-TOKEN"
BOSS, ADMIN = 1101, 1999
ZALO_A, ZALO_B = "zg-A", "zg-B"
START = datetime(2026, 11, 24, 4, 0, tzinfo=UTC)  # 11:00 in Hanoi


@dataclass
class World:
    ward: Ward
    zl: FakeZalo
    app: BotApp
    clock: FrozenClock


def make_config(tg: FakeTelegram, zl: FakeZalo, tmp_path: Path, **zalo: Any) -> Config:
    return Config.model_validate({
        "database": {"url": f"sqlite+aiosqlite:///{tmp_path}/bot.db"},
        "telegram": {"token": TOKEN, "api_base_url": tg.base_url},
        "zalo": {"enabled": True, "token": zl.token, "api_base_url": zl.base_url,
                 "per_second": 50, "group_per_minute": 600, "display_name": zl.display_name,
                 "poll_interval_seconds": 0.01, **zalo},
        "outbox": {"private_per_second": 100, "per_second": 200, "group_per_minute": 600},
        "admins": {"telegram": [ADMIN]},
        "web": {"port": 0},
    })


@pytest.fixture
async def world(tmp_path: Path, sqlite_url: str) -> AsyncIterator[World]:
    # sqlite_url: <tmp_path>/bot.db starts as a copy of the migrated template
    async with FakeTelegram(token=TOKEN) as tg, FakeZalo() as zl:
        clock = FrozenClock(START)
        app = BotApp(make_config(tg, zl, tmp_path), clock=clock, content=shared_content())
        await app.db.upgrade()
        services = app.context.services
        await services.places.add_ward("HB", "Phường Hòa Bình")
        for code in ("TDP01", "TDP02"):
            await services.places.add_group("HB", code, f"Tổ {code}")
        await services.access.grant(platform="telegram", user_id=str(BOSS),
                                    role=Role.COORDINATOR, ward_code="HB")
        boss = await services.access.identify("telegram", Sender(str(BOSS), "Cán bộ Hoa"))
        await services.chats.bind(boss, "zalo", Chat(ZALO_A, "group", "Tổ 1 Zalo"), "TDP01")
        await services.chats.bind(boss, "zalo", Chat(ZALO_B, "group", "Tổ 2 Zalo"), "TDP02")
        await app.start()
        try:
            yield World(Ward(tg, app, clock), zl, app, clock)
        finally:
            await app.stop()


async def send_to_ward(ward: Ward, text: str) -> None:
    await ward.say(BOSS, f"/thongbao {text}", count=3)
    await ward.press(BOSS, "⬜ Cả phường", edit=True)
    await ward.press(BOSS, "📤 Gửi ngay")


async def later(world: World, delta: timedelta) -> None:
    """Time passes; the outbox looks again at once (it would within seconds anyway)."""
    world.clock.advance(delta)
    world.app.context.services.outbox.wake()


async def get_json(app: BotApp, path: str) -> tuple[int, Any]:
    assert app.web is not None
    async with aiohttp.ClientSession() as http, http.get(
            f"http://127.0.0.1:{app.web.port}{path}") as r:
        return r.status, (await r.json() if path == "/healthz" else await r.text())


async def test_403_is_zalo_failing_not_the_bot_removed(world: World) -> None:
    world.zl.internal_error(chat_id=ZALO_A)
    await send_to_ward(world.ward, "Mai cắt điện")
    await world.zl.wait_sent(ZALO_B, 1)
    await until(lambda: len(world.zl.calls_to("sendMessage")) >= 2, "the first tries")
    await later(world, timedelta(seconds=5))  # the retry after a short backoff
    [sent] = (await world.zl.wait_sent(ZALO_A, 2))[1:]
    assert "Mai cắt điện" in sent["text"]
    await until(lambda: "đã gửi tới" in world.ward.inbox(BOSS)[-1], "the report")
    assert "đã gửi tới 2/2 nhóm chat" in world.ward.inbox(BOSS)[-1]
    binding = await world.app.context.services.chats.binding("zalo", ZALO_A)
    assert binding is not None and binding.active  # the chat is kept


async def test_repeated_404s_for_one_chat_are_the_evidence(tmp_path: Path) -> None:
    async def ignore(*_: object) -> None:
        return None

    async with FakeZalo() as zl:
        section = ZaloSection(enabled=True, api_base_url=zl.base_url)
        platform = ZaloPlatform(section, ignore, client=ZaloClient(zl.token, zl.base_url))
        try:
            zl.fail_next("sendMessage", 404, "Not Found", chat_id="gone-1",
                         times=GONE_AFTER_404S)
            problems = []
            for _ in range(GONE_AFTER_404S):
                with pytest.raises(DeliveryError) as info:
                    await platform.send("gone-1", Outgoing(text="alo"))
                problems.append(info.value.problem)
            assert problems == ["transient"] * (GONE_AFTER_404S - 1) + ["gone"]
            # A success in between resets the count: one 404 is never enough.
            zl.fail_next("sendMessage", 404, "Not Found", chat_id="ok-1")
            with pytest.raises(DeliveryError) as info:
                await platform.send("ok-1", Outgoing(text="alo"))
            assert info.value.problem == "transient"
            await platform.send("ok-1", Outgoing(text="alo"))
        finally:
            await platform.client.close()


async def test_quota_exceeded_pauses_bulk_tells_once_and_resumes(world: World) -> None:
    zl, ward = world.zl, world.ward
    zl.quota = 0  # the month's messages are used up
    await send_to_ward(ward, "Họp tổ tối nay")
    await until(lambda: any("hết số tin" in m for m in ward.inbox(BOSS)), "the alert")
    await until(lambda: any("hết số tin" in m for m in ward.inbox(ADMIN)), "admin alert")
    tries = len(zl.calls_to("sendMessage"))
    assert tries <= 2  # the one that met the 429 (and at most one already in flight)
    await send_to_ward(ward, "Mai tiêm chủng")  # more bulk: not even tried
    await later(world, timedelta(minutes=10))
    await asyncio.sleep(0.3)
    assert len(zl.calls_to("sendMessage")) == tries  # no probe before the hour

    async def held() -> list[str]:
        outbox = world.app.context.services.outbox
        rows = [*await outbox.rows("notice", 1), *await outbox.rows("notice", 2)]
        return sorted(r.state for r in rows)

    for _ in range(50):
        if await held() == ["pending"] * 4:
            break
        await asyncio.sleep(0.02)
    assert await held() == ["pending"] * 4  # kept, to go when the quota is back
    status, health = await get_json(world.app, "/healthz")
    assert health["platforms"]["zalo"]["quota_exceeded"] is True
    _, metrics = await get_json(world.app, "/metrics")
    assert "cds_zalo_quota_exceeded 1.0" in metrics
    alerts = [m for m in ward.inbox(BOSS) if "hết số tin" in m]
    assert len(alerts) == 1 and "không mất tin nào" in alerts[0]

    zl.refill(100)  # a new month (or a bigger plan)
    await later(world, timedelta(hours=1))
    await zl.wait_sent(ZALO_A, 2)
    await zl.wait_sent(ZALO_B, 2)
    await until(lambda: any("gửi tin được trở lại" in m for m in ward.inbox(BOSS)),
                "the all-clear")
    assert len([m for m in ward.inbox(BOSS) if "hết số tin" in m]) == 1  # told once
    _, health = await get_json(world.app, "/healthz")
    assert health["platforms"]["zalo"]["quota_exceeded"] is False


async def test_an_admin_resumes_the_zalo_bot_at_once(world: World) -> None:
    zl, ward = world.zl, world.ward
    zl.quota = 0
    await send_to_ward(ward, "Lịch tiêm chủng")
    await until(lambda: any("hết số tin" in m for m in ward.inbox(ADMIN)), "the alert")
    await until(lambda: any("hết số tin" in m for m in ward.inbox(BOSS)), "BOSS's alert")
    [status] = await ward.say(ADMIN, "/zalo")
    assert "hết số tin của tháng" in status
    [denied] = await ward.say(BOSS, "/zalo tieptuc")
    assert "Quản trị hệ thống" in denied  # coordinators may not
    zl.refill(100)
    # The answer, and the all-clear every admin and coordinator gets (in either order).
    answers = await ward.say(ADMIN, "/zalo tieptuc", count=2)
    assert any("Đã cho bot Zalo gửi tin tiếp" in a for a in answers)
    assert any("gửi tin được trở lại" in a for a in answers)
    world.app.context.services.outbox.wake()  # no waiting for the hourly probe
    await zl.wait_sent(ZALO_A, 1)
    await zl.wait_sent(ZALO_B, 1)


async def test_a_mention_of_the_display_name_runs_the_command(world: World) -> None:
    zl = world.zl
    zl.group_text(ZALO_A, "z-9", "/trogiup")
    [answer] = await zl.wait_sent(ZALO_A, 1)
    assert "Các lệnh bạn dùng được" in answer["text"]
    zl.group_text(ZALO_A, "z-9", "/quyen", mention="Trợ lý Phường Hòa Bình (bot)")
    [who] = (await zl.wait_sent(ZALO_A, 2))[1:]
    assert "Bạn là: Bà Tư" in who["text"]


def test_mentions_are_stripped_by_display_or_account_name() -> None:
    names = ("Trợ lý Phường", "cds_zalo_bot")
    assert strip_mention("@Trợ lý Phường /tiendo TDP01", names) == "/tiendo TDP01"
    assert strip_mention("@trợ lý phường: /trogiup", names) == "/trogiup"
    assert strip_mention("@cds_zalo_bot /quyen", names) == "/quyen"
    assert strip_mention("@Trợ lý Phường cho hỏi giờ làm việc", names) == \
        "cho hỏi giờ làm việc"
    assert strip_mention("@Trợ lý Phường5 /x", names) == "/x"  # unknown name, a command
    assert strip_mention("Chào @Trợ lý Phường", names) == "Chào @Trợ lý Phường"


async def test_a_replayed_update_after_a_restart_runs_once(tmp_path: Path) -> None:
    async with FakeTelegram(token=TOKEN) as tg, FakeZalo() as zl:
        config = make_config(tg, zl, tmp_path)
        first = BotApp(config, content=shared_content())
        await first.start()
        zl.text("u-5", "u-5", "/quyen")
        await zl.wait_sent("u-5", 1)
        await first.stop()

        zl.replay_consumed = True  # Zalo hands the consumed update back on the next poll
        second = BotApp(config, content=shared_content())
        await second.start()
        try:
            zl.text("u-5", "u-5", "/huy")
            [_, cancelled] = await zl.wait_sent("u-5", 2)
            assert "Không có việc gì đang làm dở" in cancelled["text"]
            assert len(zl.sent_to("u-5")) == 2  # the replayed /quyen was not run again
            seen = DbSeenIds(second.db, second.clock, "zalo")
            assert await seen.count() == 2
        finally:
            await second.stop()


async def test_seen_ids_are_pruned_by_age_and_count(tmp_path: Path) -> None:
    from bot.db import Database

    db = Database(f"sqlite+aiosqlite:///{tmp_path}/seen.db")
    await db.upgrade()
    clock = FrozenClock(START)
    seen = DbSeenIds(db, clock, "zalo", keep=timedelta(days=2), max_rows=5)
    try:
        for i in range(8):
            assert not await seen.seen_before(f"m{i}")
        assert await seen.seen_before("m7")
        assert await seen.prune() == 3 and await seen.count() == 5
        clock.advance(timedelta(days=3))
        assert not await seen.seen_before("new")
        assert await seen.prune() == 5 and await seen.count() == 1
    finally:
        await db.dispose()
