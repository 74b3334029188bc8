"""One notice, two platforms: a Telegram group chat and a Zalo group chat of the same ward
get it from the same outbox, each in its own form; Zalo's refusals are mapped like
Telegram's (a removed bot deactivates the binding and shows in the delivery report)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from bot.app import BotApp
from bot.clock import FrozenClock
from bot.config import Config
from bot.core import Chat, DeliveryError, Sender
from bot.platforms.zalo import ZaloApiError, delivery_error
from bot.platforms.zalo_oa import ZaloOAError
from bot.platforms.zalo_oa import delivery_error as oa_delivery_error
from bot.roles import Role
from tests.conftest import shared_content
from tests.fake_telegram import FakeTelegram
from tests.fake_zalo import FakeZalo
from tests.telegram_people import Ward, plain, until

TOKEN = "123456:TEST-TOKEN"
BOSS = 1101
TG_CHAT, ZALO_CHAT = -3001, "zg-2002"
START = datetime(2026, 11, 24, 4, 0, tzinfo=UTC)


@dataclass
class Both:
    ward: Ward
    zl: FakeZalo


@pytest.fixture
async def both(sqlite_url: str) -> AsyncIterator[Both]:
    async with FakeTelegram(token=TOKEN) as tg, FakeZalo() as zl:
        config = Config.model_validate({
            "database": {"url": sqlite_url},
            "telegram": {"token": TOKEN, "api_base_url": tg.base_url},
            "zalo": {"enabled": True, "token": zl.token, "api_base_url": zl.base_url,
                     "poll_interval_seconds": 0.01,
                     "per_second": 50, "group_per_minute": 600},
            "outbox": {"private_per_second": 100, "per_second": 200, "group_per_minute": 600},
            "web": {"port": 0},
        })
        app = BotApp(config, clock=FrozenClock(START), content=shared_content())
        await app.db.upgrade()
        services = app.context.services
        await services.places.add_ward("HB", "Phường Hòa Bình")
        for code in ("TDP01", "TDP02"):
            await services.places.add_group("HB", code, f"Tổ {code}")
        await services.access.grant(platform="telegram", user_id=str(BOSS),
                                    role=Role.COORDINATOR, ward_code="HB")
        boss = await services.access.identify("telegram", Sender(str(BOSS), "Cán bộ Hoa"))
        await services.chats.bind(boss, "telegram", Chat(str(TG_CHAT), "group", "Tổ 1"), "TDP01")
        await services.chats.bind(boss, "zalo", Chat(ZALO_CHAT, "group", "Tổ 2 Zalo"), "TDP02")
        await app.start()
        try:
            yield Both(Ward(tg, app, app.context.clock), zl)  # type: ignore[arg-type]
        finally:
            await app.stop()


async def send_to_ward(ward: Ward, text: str) -> None:
    await ward.say(BOSS, f"/thongbao {text}", count=3)
    await ward.press(BOSS, "⬜ Cả phường", edit=True)
    await ward.press(BOSS, "📤 Gửi ngay")


async def test_one_notice_reaches_telegram_and_zalo_groups(both: Both) -> None:
    await send_to_ward(both.ward, "Họp tổ <lúc 19h> tối nay")
    [tg] = await both.ward.tg.wait_sent(TG_CHAT, 1)
    assert "Họp tổ <lúc 19h> tối nay" in plain(tg)
    [zalo] = await both.zl.wait_sent(ZALO_CHAT, 1)
    assert zalo["text"] == "📢 THÔNG BÁO\n\nHọp tổ <lúc 19h> tối nay\n\n— An"  # plain text
    await until(lambda: "đã gửi tới" in both.ward.inbox(BOSS)[-1], "the report")
    assert "Thông báo #1: đã gửi tới 2/2 nhóm chat." in both.ward.inbox(BOSS)[-1]


async def test_zalo_chat_gone_is_reported_and_deactivated(both: Both) -> None:
    both.zl.fail_next("sendMessage", 403, "Forbidden: bot was removed from the group",
                      chat_id=ZALO_CHAT)
    await send_to_ward(both.ward, "Mai cắt điện")
    await until(lambda: "đã gửi tới" in both.ward.inbox(BOSS)[-1], "the report")
    report = both.ward.inbox(BOSS)[-1]
    assert "đã gửi tới 1/2 nhóm chat" in report
    assert "«Tổ 2 Zalo» (TDP02): bot không còn trong nhóm, hoặc nhóm đã bị xóa" in report
    binding = await both.ward.app.context.services.chats.binding("zalo", ZALO_CHAT)
    assert binding is not None and not binding.active


@pytest.mark.parametrize(("code", "description", "problem"), [
    (429, "Quota exceeded", "paused"),
    (408, "timed out", "transient"),
    (502, "Bad gateway", "transient"),
    (403, "Internal server error", "transient"),  # Zalo's table: not "removed"
    (404, "Not Found", "transient"),  # once is no evidence; see test_zalo_delivery
    (400, "Bad Request: chat not found", "gone"),
    (400, "Bad Request: text is too long", "rejected"),
])
def test_zalo_errors_map_to_what_the_outbox_does(code: int, description: str,
                                                 problem: str) -> None:
    error = delivery_error(ZaloApiError("sendMessage", code, description))
    assert isinstance(error, DeliveryError) and error.problem == problem
    if problem in ("retry_after", "paused"):
        assert error.retry_after > 0


@pytest.mark.parametrize(("code", "problem"), [
    (-32, "retry_after"), (500, "transient"), (-213, "rejected"), (-230, "rejected"),
    (-14020, "paused"),
])
def test_zalo_oa_errors_map_to_what_the_outbox_does(code: int, problem: str) -> None:
    assert oa_delivery_error(ZaloOAError(code, "x")).problem == problem


async def test_a_poll_on_zalo_is_answered_with_a_command(both: Both) -> None:
    ward = both.ward
    await ward.say(BOSS, "/khaosat Họp tổ vào tối nào?")
    await ward.say(BOSS, "Thứ Bảy\nChủ nhật")
    await ward.press(BOSS, "⬜ Cả phường", edit=True)
    await ward.press(BOSS, "📤 Gửi khảo sát", edit=True)
    [zalo] = await both.zl.wait_sent(ZALO_CHAT, 1)
    assert "1. Thứ Bảy\n2. Chủ nhật" in zalo["text"]
    assert "gõ /binhchon 1 và số của lựa chọn" in zalo["text"]
    [tg] = await ward.tg.wait_sent(TG_CHAT, 1)
    assert "Bấm một nút để chọn" in plain(tg)
    before = len(both.zl.sent_to(ZALO_CHAT))
    both.zl.text(ZALO_CHAT, "z-77", "/binhchon 1 2", group=True, name="Bà Tư")
    [answer] = (await both.zl.wait_sent(ZALO_CHAT, before + 1))[before:]
    assert answer["text"] == "✅ Đã ghi: Chủ nhật"
    both.zl.text(ZALO_CHAT, "z-77", "/binhchon 1 9", group=True, name="Bà Tư")
    [wrong] = (await both.zl.wait_sent(ZALO_CHAT, before + 2))[before + 1:]
    assert wrong["text"] == "Lựa chọn này không còn."
    results = await ward.app.context.services.polls.results(1)
    assert results.ward == [0, 1] and results.by_group == {"TDP02": [0, 1]}


async def test_a_poll_made_at_night_closes_counting_from_the_morning(both: Both) -> None:
    ward = both.ward
    ward.clock.set(datetime(2026, 11, 24, 14, 30, tzinfo=UTC))  # type: ignore[attr-defined]
    await ward.say(BOSS, "/khaosat Có cần lớp học VNeID không?")
    [choices] = await ward.say(BOSS, "Có\nKhông")
    assert "Đóng: 07:00 26/11/2026" in choices  # 21:30 → held till 07:00 → one day later
    closing = await ward.press(BOSS, "⏰ Đóng: sau 1 ngày", edit=True)  # cycle: 3 days
    assert "Đóng: 07:00 28/11/2026" in closing
    closing = await ward.press(BOSS, "⏰ Đóng: sau 3 ngày", edit=True)
    assert "Đóng: khi bạn bấm đóng" in closing
    closing = await ward.press(BOSS, "⏰ Đóng: khi tôi bấm đóng", edit=True)
    assert "Đóng: 08:00 25/11/2026" in closing  # an hour after it reaches the groups
    closing = await ward.press(BOSS, "⏰ Đóng: sau 1 giờ", edit=True)
    assert "Đóng: 20:00 25/11/2026" in closing
