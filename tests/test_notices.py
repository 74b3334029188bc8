"""Notices over Telegram, through the outbox: preview, targets, now or later, cancel, the
delivery report, and what the platform throws back (429, 403, migration), quiet hours, a
restart in the middle of a broadcast, and two workers sharing PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlmodel import select

from bot.app import BotApp
from bot.clock import FrozenClock
from bot.config import Config
from bot.core import Capabilities, Chat, Outgoing, Sender, Sent
from bot.db import Database
from bot.delivery.outbox import NewDelivery, Outbox, Pacing
from bot.delivery.quiet import QuietHours
from bot.metrics import Metrics
from bot.models import ChatBinding, Delivery
from bot.roles import Role
from tests.conftest import shared_content
from tests.fake_telegram import FakeTelegram
from tests.telegram_people import Ward, labels, plain, until

TOKEN = "123456:TEST-TOKEN"
LEADER, OTHER_LEADER, BOSS, RESIDENT = 801, 802, 803, 804
CHATS = {"TDP01": -1001, "TDP02": -1002, "TDP03": -1003}
START = datetime(2026, 11, 24, 4, 0, tzinfo=UTC)  # 11:00 in Hà Nội


def make_config(url: str, tg: FakeTelegram, **outbox: Any) -> Config:
    return Config.model_validate({
        "database": {"url": url},
        "telegram": {"token": TOKEN, "api_base_url": tg.base_url},
        "web": {"port": 0},
        "outbox": {"private_per_second": 100, "per_second": 200, "group_per_minute": 600,
                   "workers": 2, **outbox},
    })


async def seed(app: BotApp) -> None:
    services = app.context.services
    await services.places.add_ward("HB", "Phường Hòa Bình")
    for code in CHATS:
        await services.places.add_group("HB", code, f"Tổ {code}")
    for user, role, group in ((LEADER, Role.LEADER, "TDP01"), (OTHER_LEADER, Role.LEADER, "TDP02"),
                              (BOSS, Role.COORDINATOR, None), (RESIDENT, Role.RESIDENT, "TDP01")):
        await services.access.grant(platform="telegram", user_id=str(user), role=role,
                                    ward_code="HB", group_code=group)
    boss = await services.access.identify("telegram", Sender(str(BOSS), "Cán bộ Hoa"))
    for code, chat_id in CHATS.items():
        await services.chats.bind(boss, "telegram", Chat(str(chat_id), "group", f"Nhóm {code}"),
                                  code)


@pytest.fixture
async def ward(sqlite_url: str) -> AsyncIterator[Ward]:
    async with FakeTelegram(token=TOKEN, bot_username="cds_test_bot") as tg:
        app = BotApp(make_config(sqlite_url, tg),
                     clock=FrozenClock(START), content=shared_content())
        await app.db.upgrade()
        await seed(app)
        await app.start()
        try:
            yield Ward(tg, app, app.context.clock)  # type: ignore[arg-type]
        finally:
            await app.stop()


def group_texts(ward: Ward, code: str) -> list[str]:
    return [plain(m) for m in ward.tg.sent_to(CHATS[code])]


async def later(ward: Ward, **delta: float) -> None:
    """Move the ward's clock forward and let the outbox look again."""
    ward.clock.advance(timedelta(**delta))  # type: ignore[attr-defined]
    ward.app.context.services.outbox.wake()
    await asyncio.sleep(0.05)


async def test_leader_previews_and_sends_to_his_group_user_text_escaped(ward: Ward) -> None:
    header, preview, choices = await ward.say(
        LEADER, "/thongbao Họp tổ lúc 19h <b>tối nay</b> & mang CCCD", count=3, name="Tư")
    assert "Xem trước" in header
    assert preview == "📢 THÔNG BÁO\n\nHọp tổ lúc 19h <b>tối nay</b> & mang CCCD\n\n— Tư"
    assert "Gửi tới: TDP01" in choices
    assert labels(ward.tg.sent_to(LEADER)[-1]) == [
        "✅ TDP01", "📌 Ghim: không", "📤 Gửi ngay", "🕒 Hẹn giờ", "✖️ Thôi, không gửi"]
    await ward.press(LEADER, "📤 Gửi ngay")
    await until(lambda: any("Thông báo #1 đang được gửi tới 1 nhóm chat (TDP01)" in t
                            for t in ward.inbox(LEADER)), "the confirmation")
    [delivered] = await ward.tg.wait_sent(CHATS["TDP01"], 1)
    assert "Họp tổ lúc 19h &lt;b&gt;tối nay&lt;/b&gt; &amp; mang CCCD" in delivered["text"]
    await until(lambda: "đã gửi tới" in ward.inbox(LEADER)[-1], "the delivery report")
    assert "Thông báo #1: đã gửi tới 1/1 nhóm chat." in ward.inbox(LEADER)[-1]
    assert not ward.tg.sent_to(CHATS["TDP02"]) and not ward.tg.sent_to(CHATS["TDP03"])


async def test_coordinator_schedules_for_the_ward_pins_and_gets_a_report(ward: Ward) -> None:
    ward.tg.block_chat(CHATS["TDP03"])
    [ask] = await ward.say(BOSS, "/thongbao")
    assert "nội dung thông báo" in ask
    *_, choices = await ward.say(BOSS, "Ngày mai phường làm VNeID tại nhà văn hóa", count=3)
    assert "chưa chọn tổ nào" in choices
    assert "Gửi tới: TDP01, TDP02, TDP03" in await ward.press(BOSS, "⬜ Cả phường", edit=True)
    assert "Ghim trong nhóm: có" in await ward.press(BOSS, "📌 Ghim: không", edit=True)
    assert "Gửi lúc mấy giờ?" in await ward.press(BOSS, "🕒 Hẹn giờ")
    [past] = await ward.say(BOSS, "10:00 24/11")  # a bare "10:00" would mean tomorrow
    assert "Giờ này đã qua rồi" in past
    [bad] = await ward.say(BOSS, "chieu nay")
    assert "chưa hiểu giờ này" in bad
    [queued] = await ward.say(BOSS, "15:30")
    assert "Thông báo #1 đã hẹn gửi lúc 15:30 24/11/2026 tới 3 nhóm chat (TDP01, TDP02, TDP03)" in queued
    [listed, _ask] = await ward.say(BOSS, "/thongbao", count=2)
    assert "#1 lúc 15:30 24/11/2026 → TDP01, TDP02, TDP03" in listed
    await ward.say(BOSS, "/huy")
    await later(ward, hours=4, minutes=29)
    assert not ward.tg.sent_to(CHATS["TDP01"])
    await later(ward, minutes=1)
    await ward.tg.wait_sent(CHATS["TDP01"], 1)
    await ward.tg.wait_sent(CHATS["TDP02"], 1)
    pins = await ward.tg.wait_for_call("pinChatMessage")
    assert str(pins.params["chat_id"]) in ("-1001", "-1002")
    await until(lambda: "đã gửi tới" in ward.inbox(BOSS)[-1], "the delivery report")
    report = ward.inbox(BOSS)[-1]
    assert "Thông báo #1: đã gửi tới 2/3 nhóm chat." in report
    assert "«Nhóm TDP03» (TDP03): bot không còn trong nhóm, hoặc nhóm đã bị xóa" in report
    async with ward.app.db.session() as session:
        binding = (await session.exec(
            select(ChatBinding).where(ChatBinding.chat_id == str(CHATS["TDP03"])))).one()
    assert binding.active is False


async def test_cancel_a_scheduled_notice(ward: Ward) -> None:
    await ward.say(LEADER, "/thongbao Mai cắt nước", count=3)
    await ward.press(LEADER, "🕒 Hẹn giờ")
    await ward.say(LEADER, "17:00")
    await ward.say(LEADER, "/thongbao", count=2)
    cancelled = await ward.press(LEADER, "✖️ Hủy thông báo #1", edit=True)
    assert "Đã hủy thông báo #1 (hẹn lúc 17:00 24/11/2026, tới TDP01)" in cancelled
    [other] = (await ward.say(OTHER_LEADER, "/thongbao Họp", count=3))[-1:]
    assert "TDP02" in other and "TDP01" not in other
    await later(ward, hours=7)
    await asyncio.sleep(0.2)
    assert not ward.tg.sent_to(CHATS["TDP01"])


async def test_roles_and_forged_buttons_are_refused_on_the_server(ward: Ward) -> None:
    [denied] = await ward.say(RESIDENT, "/thongbao Xin chào cả tổ")
    assert "Tổ trưởng" in denied
    await ward.say(LEADER, "/thongbao Chỉ tổ 1", count=3)
    services = ward.app.context.services
    tdp02 = await services.places.group_by_code(1, "TDP02")
    assert tdp02 is not None
    message = ward.tg.sent_to(LEADER)[-1]
    ward.tg.callback(LEADER, LEADER, int(message["message_id"]), f"nt:g:{tdp02.id}")
    await ward.tg.wait_for_call("answerCallbackQuery")
    await ward.press(LEADER, "📤 Gửi ngay")
    await until(lambda: any("tới 1 nhóm chat (TDP01)" in t for t in ward.inbox(LEADER)),
                "the confirmation naming only TDP01")
    await ward.tg.wait_sent(CHATS["TDP01"], 1)
    await asyncio.sleep(0.1)
    assert not ward.tg.sent_to(CHATS["TDP02"])


async def test_429_is_obeyed_and_the_message_arrives_once(ward: Ward) -> None:
    ward.tg.fail_next("sendMessage", chat_id=CHATS["TDP01"], error_code=429,
                      description="Too Many Requests: retry after 1", retry_after=1)
    await ward.say(LEADER, "/thongbao Họp tổ", count=3)
    await ward.press(LEADER, "📤 Gửi ngay")
    outbox = ward.app.context.services.outbox
    for _ in range(100):
        rows = await outbox.rows("notice", 1)
        if rows and rows[0].attempts == 0 and rows[0].state == "pending" and \
                rows[0].not_before > START:
            break
        await asyncio.sleep(0.05)
    assert rows[0].not_before >= START + timedelta(seconds=1)  # waits as told, for this chat
    assert len([c for c in ward.tg.calls_to("sendMessage")
                if str(c.params.get("chat_id")) == "-1001"]) == 1
    await asyncio.sleep(1.1)
    await later(ward, seconds=2)
    await ward.tg.wait_sent(CHATS["TDP01"], 1)
    await asyncio.sleep(0.2)
    assert len(ward.tg.sent_to(CHATS["TDP01"])) == 1


async def test_migrated_group_is_followed(ward: Ward) -> None:
    ward.tg.fail_next("sendMessage", chat_id=CHATS["TDP01"], error_code=400,
                      description="Bad Request: group chat was upgraded to a supergroup chat",
                      migrate_to_chat_id=-100777)
    await ward.say(LEADER, "/thongbao Họp tổ", count=3)
    await ward.press(LEADER, "📤 Gửi ngay")
    [moved] = await ward.tg.wait_sent(-100777, 1)
    assert "Họp tổ" in plain(moved)
    binding = await ward.app.context.services.chats.binding("telegram", "-100777")
    assert binding is not None and binding.group_code == "TDP01" and binding.active


async def test_quiet_hours_hold_group_messages_until_morning(ward: Ward) -> None:
    ward.clock.set(datetime(2026, 11, 24, 15, 30, tzinfo=UTC))  # type: ignore[attr-defined]
    await ward.say(LEADER, "/thongbao Sáng mai 7h30 tiêm phòng", count=3)
    queued = await ward.press(LEADER, "📤 Gửi ngay")
    assert "Đang là giờ yên lặng, tin sẽ tới các nhóm lúc 07:00 25/11/2026" in queued
    await asyncio.sleep(0.2)
    assert not ward.tg.sent_to(CHATS["TDP01"])
    await later(ward, hours=8, minutes=29)  # 06:59
    await asyncio.sleep(0.1)
    assert not ward.tg.sent_to(CHATS["TDP01"])
    await later(ward, minutes=2)
    await ward.tg.wait_sent(CHATS["TDP01"], 1)


async def test_long_notice_is_split_in_order_never_mid_word(ward: Ward) -> None:
    words = [f"từ{i}" for i in range(1000)]
    await ward.say(LEADER, "/thongbao " + " ".join(words), count=4)
    await ward.press(LEADER, "📤 Gửi ngay")
    parts = await ward.tg.wait_sent(CHATS["TDP01"], 2)
    texts = [plain(p) for p in parts]
    assert texts[0].startswith("📢 THÔNG BÁO") and texts[-1].rstrip().endswith("— An")
    joined = " ".join(t.replace("📢 THÔNG BÁO", "").strip() for t in texts).split()
    assert [w for w in joined if w.startswith("từ")] == words


@pytest.mark.parametrize("crash", [True, False], ids=["crash", "clean-stop"])
async def test_restart_in_the_middle_of_a_broadcast_loses_nothing(
    sqlite_url: str, crash: bool
) -> None:
    url = sqlite_url
    chats = [str(-5000 - i) for i in range(40)]
    async with FakeTelegram(token=TOKEN, bot_username="cds_test_bot") as tg:
        first = BotApp(make_config(url, tg, per_second=20), clock=FrozenClock(START),
                       content=shared_content())
        await first.db.upgrade()
        await first.start()
        await first.context.services.outbox.enqueue([
            NewDelivery(kind="notice", ref_id=None, dedupe=f"r:{c}", platform="telegram",
                        chat_id=c, text="Thông báo khẩn") for c in chats])
        await until(lambda: len(tg.calls_to("sendMessage")) >= 10, "ten sends")
        # A crash cuts the workers mid-send (like kill -9); a clean stop lets them finish.
        await first.context.services.outbox.stop(grace=0 if crash else 5)
        await first.stop()
        assert len(tg.calls_to("sendMessage")) < len(chats)
        second = BotApp(make_config(url, tg, per_second=200), clock=FrozenClock(START),
                        content=shared_content())
        await second.start()
        try:
            await second.context.services.outbox.drain(within=20)
        finally:
            await second.stop()
        per_chat = {c: len(tg.sent_to(c)) for c in chats}
        assert all(n >= 1 for n in per_chat.values()), per_chat  # nothing lost
        doubled = sum(n - 1 for n in per_chat.values())
        assert doubled <= (2 if crash else 0)  # at most the one in flight per worker


class CountingPlatform:
    """A platform that takes a little time per send and counts what each chat got."""

    name = "telegram"
    capabilities = Capabilities()

    def __init__(self) -> None:
        self.got: dict[str, int] = {}

    @property
    def bot_username(self) -> str:
        return "bot"

    async def send(self, chat_id: str, message: Outgoing) -> Sent:
        await asyncio.sleep(0.005)
        self.got[chat_id] = self.got.get(chat_id, 0) + 1
        return Sent(chat_id, str(self.got[chat_id]))


@pytest.mark.postgres
async def test_two_workers_on_postgres_send_each_delivery_once(pg_url: str) -> None:
    db = Database(pg_url)
    await db.upgrade()
    try:
        clock = FrozenClock(START)
        platform = CountingPlatform()
        platforms: dict[str, Any] = {"telegram": platform}
        quiet = QuietHours(None, UTC)
        outboxes = [
            Outbox(Database(pg_url), clock, platforms, Metrics(clock),
                   quiet=quiet, pacing=Pacing(per_second=1000, workers=2, batch=4))
            for _ in range(2)
        ]
        chats = [str(-7000 - i) for i in range(120)]
        await outboxes[0].enqueue([
            NewDelivery(kind="notice", ref_id=1, dedupe=f"pg:{c}", platform="telegram",
                        chat_id=c, text="Xin chào") for c in chats])
        for outbox in outboxes:
            await outbox.start()
        await outboxes[0].drain(within=30)
        for outbox in outboxes:
            await outbox.stop()
        assert platform.got == {c: 1 for c in chats}
        async with db.session() as session:
            states = {d.state for d in (await session.exec(select(Delivery))).all()}
        assert states == {"sent"}
    finally:
        await db.dispose()


async def test_notice_with_a_photo_goes_out_as_a_photo(ward: Ward) -> None:
    await ward.say(LEADER, "/thongbao")
    before = len(ward.tg.sent_to(LEADER))
    ward.tg.photo_message(LEADER, LEADER, b"\xff\xd8\xff lich tiem", caption="Lịch tiêm phòng")
    shown = await ward.tg.wait_sent(LEADER, before + 3)
    preview = shown[before + 1]
    assert preview["kind"] == "photo" and "Lịch tiêm phòng" in plain(preview)
    await ward.press(LEADER, "📤 Gửi ngay")
    [posted] = await ward.tg.wait_sent(CHATS["TDP01"], 1)
    assert posted["kind"] == "photo" and "Lịch tiêm phòng" in plain(posted)
    call = next(c for c in ward.tg.calls_to("sendPhoto")
                if str(c.params.get("chat_id")) == str(CHATS["TDP01"]))
    assert str(call.params["photo"]).startswith("photo-")  # the file id, not a re-upload


class SlowPlatform(CountingPlatform):
    async def send(self, chat_id: str, message: Outgoing) -> Sent:
        await asyncio.sleep(0.3)
        return await super().send(chat_id, message)


async def test_a_row_taken_over_after_its_lease_is_sent_once(sqlite_url: str) -> None:
    """A worker so slow that its lease runs out: its rows go to another worker, and the
    slow one leaves them alone instead of sending them a second time. Only the message
    it had in flight when the lease ran out can arrive twice (without the check, all
    four it had claimed did)."""
    db = Database(sqlite_url)
    await db.upgrade()
    try:
        clock = FrozenClock(START)
        platform = SlowPlatform()
        outbox = Outbox(db, clock, {"telegram": platform}, Metrics(clock),
                        quiet=QuietHours(None, UTC),
                        pacing=Pacing(per_second=1000, workers=2, batch=4, lease_seconds=60))
        chats = [str(-8000 - i) for i in range(8)]
        await outbox.enqueue([
            NewDelivery(kind="notice", ref_id=1, dedupe=f"l:{c}", platform="telegram",
                        chat_id=c, text="Xin chào", is_group=False) for c in chats])
        first = asyncio.create_task(outbox.run_once())  # claims 4 and sends them slowly
        await asyncio.sleep(0.1)
        clock.advance(timedelta(seconds=61))  # its lease on the other three runs out
        second = await outbox.run_once()  # takes them over
        await first
        assert second >= 3
        await outbox.run_once()
        assert set(platform.got) == set(chats)
        assert sum(n - 1 for n in platform.got.values()) <= 1
    finally:
        await db.dispose()


async def test_replies_to_a_notice_are_chatter_replies_to_answers_are_questions(
    ward: Ward,
) -> None:
    group = CHATS["TDP01"]
    await ward.say(LEADER, "/thongbao Mai họp tổ lúc 19h", count=3)
    await ward.press(LEADER, "📤 Gửi ngay")
    [notice] = await ward.tg.wait_sent(group, 1)
    ward.tg.message(group, RESIDENT, "Đã nhận ạ", chat_type="group",
                    reply_to_bot=int(notice["message_id"]))
    ward.tg.message(group, RESIDENT, "Nhà em đã cài rồi ạ", chat_type="group",
                    reply_to_bot=int(notice["message_id"]))
    ward.tg.message(group, RESIDENT, "/hoidap@cds_test_bot", chat_type="group")
    [_, menu] = await ward.tg.wait_sent(group, 2)  # only the menu: the replies got nothing
    assert "Bạn muốn tìm hiểu về việc gì?" in plain(menu)
    ward.tg.message(group, RESIDENT, "vneid là gì", chat_type="group",
                    reply_to_bot=int(menu["message_id"]))
    [*_, answer] = await ward.tg.wait_sent(group, 3)
    assert "VNeID" in plain(answer)
