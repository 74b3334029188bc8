"""Feedback end to end over Telegram: the real python-telegram-bot stack polling the fake Bot
API server, with a resident, two leaders and a coordinator. Everything asserted here is what
those people see in their chats; time moves only when the test moves the frozen clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from bot.app import BotApp
from bot.clock import FrozenClock
from bot.config import Config
from bot.roles import Role
from tests.conftest import shared_content
from tests.fake_telegram import FakeTelegram
from tests.telegram_people import Ward, labels, plain

TOKEN = "123456:TEST-TOKEN"
RESIDENT, LEADER, OTHER_LEADER, BOSS = 601, 602, 603, 604
START = datetime(2026, 11, 24, 3, 0, tzinfo=UTC)  # 10:00 in Hà Nội


@pytest.fixture
async def ward(sqlite_url: str) -> AsyncIterator[Ward]:
    async with FakeTelegram(token=TOKEN, bot_username="cds_test_bot") as tg:
        config = Config.model_validate({
            "database": {"url": sqlite_url},
            "telegram": {"token": TOKEN, "api_base_url": tg.base_url},
            "web": {"port": 0}, "outbox": {"private_per_second": 100},
        })
        clock = FrozenClock(START)
        app = BotApp(config, clock=clock, content=shared_content())
        await app.db.upgrade()
        places, access = app.context.services.places, app.context.services.access
        await places.add_ward("HB", "Phường Hòa Bình")
        await places.add_group("HB", "TDP01", "Tổ dân phố 1")
        await places.add_group("HB", "TDP02", "Tổ dân phố 2")
        for user, role, group in ((RESIDENT, Role.RESIDENT, "TDP01"),
                                  (LEADER, Role.LEADER, "TDP01"),
                                  (OTHER_LEADER, Role.LEADER, "TDP02"),
                                  (BOSS, Role.COORDINATOR, None)):
            await access.grant(platform="telegram", user_id=str(user), role=role,
                               ward_code="HB", group_code=group)
        await app.start()
        try:
            yield Ward(tg, app, clock)
        finally:
            await app.stop()


async def test_resident_files_by_the_form_and_the_right_staff_see_it(ward: Ward) -> None:
    [form] = await ward.say(RESIDENT, "/gopy")
    assert "Gửi góp ý, phản ánh" in form
    category_message = ward.tg.sent_to(RESIDENT)[-1]
    assert labels(category_message) == [
        "💡 Hạ tầng - điện, đường", "🧹 Vệ sinh môi trường", "🚓 An ninh trật tự",
        "📄 Thủ tục hành chính", "📱 Hỗ trợ công nghệ số", "✏️ Khác",
    ]
    asked = await ward.press(RESIDENT, "💡 Hạ tầng - điện, đường", edit=True)
    assert "kể ngắn gọn chuyện gì đang xảy ra" in asked
    assert "đã nhận ảnh" in (await ward.send_photo(RESIDENT)).lower()
    [where] = await ward.say(RESIDENT, "Đèn đường trước nhà số 5 tắt 3 hôm rồi")
    assert "Việc này ở đâu?" in where and labels(ward.tg.sent_to(RESIDENT)[-1]) == ["Bỏ qua"]
    [anonymous] = await ward.say(RESIDENT, "ngõ 12 Lê Lợi")
    assert "giấu tên" in anonymous
    filed = await ward.press(RESIDENT, "👤 Ghi tên tôi")
    assert "Số phiếu của bạn: PA-1" in filed
    assert "chậm nhất là 10:00 27/11/2026" in filed  # infrastructure: 72 hours

    [mine] = await ward.say(RESIDENT, "/theodoi PA-1")
    assert "Đèn đường trước nhà số 5" in mine and "📍 ngõ 12 Lê Lợi" in mine
    assert "Trạng thái: Mới" in mine
    [listing] = await ward.say(RESIDENT, "/theodoi")
    assert "PA-1 — Mới" in listing

    [staff_list] = await ward.say(LEADER, "/phananh")
    assert "đang mở: 1" in staff_list and "PA-1 Mới · TDP01" in staff_list
    view = await ward.press(LEADER, "Xem PA-1")
    assert "Người gửi: An" in view and "📷 1 ảnh" in view and "📍 ngõ 12 Lê Lợi" in view
    assert {"✅ Tiếp nhận", "👤 Giao việc", "✔️ Xong"} <= set(labels(ward.tg.sent_to(LEADER)[-1]))
    [by_category] = await ward.say(BOSS, "/phananh hatang TDP01")
    assert "Hạ tầng" in by_category and "PA-1" in by_category
    [none] = await ward.say(BOSS, "/phananh anninh")
    assert "Không có phiếu nào" in none

    # The other group's leader neither sees nor handles it; a resident cannot list tickets.
    [other] = await ward.say(OTHER_LEADER, "/phananh")
    assert "Không có phiếu nào" in other and "PA-1" not in other
    [refused] = await ward.say(OTHER_LEADER, "/xuly PA-1 tiepnhan")
    assert "không thuộc tổ bạn phụ trách" in refused
    [not_staff] = await ward.say(RESIDENT, "/phananh")
    assert "PA-1" not in not_staff


async def test_one_line_feedback_duplicates_and_hourly_limit(ward: Ward) -> None:
    [first] = await ward.say(RESIDENT, "/gopy Rác ở đầu ngõ chưa ai dọn")
    assert "Số phiếu của bạn: PA-1" in first
    assert "chậm nhất là 10:00 29/11/2026" in first  # one line = "other": 120 hours
    [again] = await ward.say(RESIDENT, "/gopy rac o dau ngo chua ai don")
    assert "Bạn đã gửi nội dung này rồi" in again and "PA-1" in again
    assert "PA-2" in (await ward.say(RESIDENT, "/gopy Cột điện nghiêng"))[0]
    assert "PA-3" in (await ward.say(RESIDENT, "/gopy Nắp cống bị vỡ"))[0]
    [limited] = await ward.say(RESIDENT, "/gopy Chó thả rông ngoài đường")
    assert "gửi khá nhiều phiếu" in limited and "11:00 24/11/2026" in limited
    ward.clock.advance(timedelta(minutes=61))
    assert "PA-4" in (await ward.say(RESIDENT, "/gopy Chó thả rông ngoài đường"))[0]
    [mine] = await ward.say(RESIDENT, "/theodoi")
    assert all(f"PA-{n}" in mine for n in range(1, 5)) and "PA-5" not in mine
    before = len(ward.tg.sent_to(-1001))
    ward.tg.message(-1001, RESIDENT, "/gopy@cds_test_bot đèn hỏng", chat_type="group")
    [private_only] = (await ward.tg.wait_sent(-1001, before + 1))[before:]
    assert "nhắn riêng" in plain(private_only)


async def test_life_cycle_with_one_liners_and_buttons_reporter_told_each_time(
    ward: Ward,
) -> None:
    await ward.say(RESIDENT, "/gopy Cống thoát nước bị tắc")
    await ward.say(RESIDENT, "/gopy Vỉa hè bị lấn chiếm")
    told = len(ward.tg.sent_to(RESIDENT))

    [usage] = await ward.say(BOSS, "/xuly PA-1 lamgi")
    assert "Cách dùng" in usage
    [acked] = await ward.say(BOSS, "/xuly PA-1 tiepnhan")
    assert "Phiếu PA-1 chuyển sang «Đã tiếp nhận». Đã nhắn cho người gửi." in acked
    assert "Cán bộ phường đã tiếp nhận." in (await ward.told(RESIDENT, told + 1))[-1]
    [started] = await ward.say(LEADER, "/xuly pa-1 dangxuly")
    assert "Phiếu PA-1 chuyển sang «Đang xử lý»" in started
    assert "Cán bộ đang xử lý." in (await ward.told(RESIDENT, told + 2))[-1]
    [replied] = await ward.say(LEADER, "/xuly PA-1 traloi Tuần này tổ sẽ gọi công ty môi trường")
    # A reply does not change the state, and says so (not a bare "PA-1: Đang xử lý").
    assert "Đã gửi câu trả lời cho phiếu PA-1 tới người gửi. Phiếu vẫn ở trạng thái «Đang xử lý»" \
        in replied
    answer = (await ward.told(RESIDENT, told + 3))[-1]
    assert "Cán bộ phường trả lời:" in answer and "Tuần này tổ sẽ gọi công ty môi trường" in answer
    [needs] = await ward.say(LEADER, "/xuly PA-1 daxong")
    assert "cần kèm lời nhắn" in needs

    # Finishing through the ticket's buttons: "Xong" asks for the message to the resident.
    await ward.say(LEADER, "/phananh")
    view = await ward.press(LEADER, "Xem PA-1")
    assert "Trạng thái: Đang xử lý" in view
    assert "✅ Tiếp nhận" not in labels(ward.tg.sent_to(LEADER)[-1])
    asked = await ward.press(LEADER, "✔️ Xong")
    assert "lời nhắn báo đã xong phiếu PA-1" in asked
    [done] = await ward.say(LEADER, "Đã thông cống sáng nay")
    assert "Phiếu PA-1 chuyển sang «Đã xong». Đã nhắn cho người gửi." in done
    resolved = (await ward.told(RESIDENT, told + 4))[-1]
    assert "Đã giải quyết xong." in resolved and "«Đã thông cống sáng nay»" in resolved
    [too_late] = await ward.say(BOSS, "/xuly PA-1 tuchoi quá muộn")
    assert "«Đã xong», không làm được việc này nữa" in too_late

    ward.clock.advance(timedelta(hours=10))
    [rejected] = await ward.say(BOSS, "/xuly PA-2 tuchoi Vỉa hè này thuộc quận quản lý")
    assert "Phiếu PA-2 chuyển sang «Không giải quyết»" in rejected
    refusal = (await ward.told(RESIDENT, told + 5))[-1]
    assert "Phường chưa giải quyết được." in refusal and "thuộc quận quản lý" in refusal

    [history] = await ward.say(RESIDENT, "/theodoi PA-1")
    for state in ("Mới", "Đã tiếp nhận", "Đang xử lý", "Đã xong"):
        assert state in history
    assert "«Đã thông cống sáng nay»" in history
    [closed] = await ward.say(BOSS, "/phananh daxong")
    assert "PA-1" in closed and "PA-2" not in closed
    [summary] = await ward.say(BOSS, "/phananh thang 11/2026")
    assert "Phản ánh tháng 11/2026" in summary and "Nhận: 2 · Đã xong: 1" in summary
    assert "TDP01: 2 nhận, 1 xong" in summary
    [bad_month] = await ward.say(BOSS, "/phananh thang 13/2026")
    assert "Cách dùng" in bad_month


async def test_anonymous_reporter_hidden_from_staff_contacts_masked_replies_arrive(
    ward: Ward,
) -> None:
    await ward.say(RESIDENT, "/gopy", name="Trần Văn Bảy")
    await ward.press(RESIDENT, "🚓 An ninh trật tự", edit=True)
    await ward.say(RESIDENT, "Có người lạ hay đứng ở ngõ lúc đêm. CCCD tôi 001203004567, "
                             "gọi tôi 0912 345 678", name="Trần Văn Bảy")
    await ward.press(RESIDENT, "Bỏ qua")
    filed = await ward.press(RESIDENT, "🙈 Giấu tên tôi với cán bộ")
    assert "PA-1" in filed and "10:00 25/11/2026" in filed  # security: 24 hours
    # Pressing buttons names the person "An" in the fake server; put the real name back.
    [mine] = await ward.say(RESIDENT, "/theodoi PA-1", name="Trần Văn Bảy")
    assert "0912 345 678" in mine  # the reporter still reads what he wrote...
    assert "001203004567" not in mine and "************" in mine  # ...but no ID number is kept

    await ward.say(LEADER, "/phananh")
    view = await ward.press(LEADER, "Xem PA-1")
    assert "Người gửi: (giấu tên)" in view
    assert "09*****678" in view and "0912 345 678" not in view and "001203004567" not in view
    await ward.say(BOSS, "/phananh")
    assert "(giấu tên)" in await ward.press(BOSS, "Xem PA-1")

    told = len(ward.tg.sent_to(RESIDENT))
    asked = await ward.press(LEADER, "💬 Trả lời")
    assert "câu trả lời cho người gửi phiếu PA-1" in asked
    [sent] = await ward.say(LEADER, "Tổ đã báo công an khu vực tuần tra")
    assert "Đã gửi câu trả lời cho phiếu PA-1 tới người gửi" in sent
    answer = (await ward.told(RESIDENT, told + 1))[-1]
    assert "PA-1" in answer and "Tổ đã báo công an khu vực tuần tra" in answer

    for staff in (LEADER, BOSS):
        seen = ward.everything(staff)
        assert "Trần Văn Bảy" not in seen and "0912 345 678" not in seen


async def test_overdue_ticket_is_nudged_to_its_assignee_by_the_job(ward: Ward) -> None:
    await ward.say(LEADER, "/start", name="Hùng")  # so the staff list knows his name
    await ward.say(RESIDENT, "/gopy Cây đổ chắn đường, gọi 0987 654 321")
    await ward.say(BOSS, "/phananh")
    await ward.press(BOSS, "Xem PA-1")
    await ward.press(BOSS, "👤 Giao việc")
    assert "Hùng" in labels(ward.tg.sent_to(BOSS)[-1])
    leader_had = len(ward.tg.sent_to(LEADER))
    assigned = await ward.press(BOSS, "Hùng")
    assert "Đã giao PA-1 cho Hùng" in assigned
    given = (await ward.told(LEADER, leader_had + 1))[-1]
    assert "Bạn được giao xử lý phiếu PA-1 (TDP01)" in given and "09*****321" in given

    boss_had, leader_had = len(ward.tg.sent_to(BOSS)), len(ward.tg.sent_to(LEADER))
    ward.clock.advance(timedelta(hours=119))
    assert await ward.app.scheduler.run_now("feedback-overdue-nudges") == 0
    ward.clock.advance(timedelta(hours=2))
    assert await ward.app.scheduler.run_now("feedback-overdue-nudges") == 1
    nudge = (await ward.told(LEADER, leader_had + 1))[-1]
    assert "⏰ Phiếu PA-1 (TDP01) đã quá hạn (10:00 29/11/2026)" in nudge
    assert "/xuly PA-1 daxong <lời nhắn>" in nudge and "0987 654 321" not in nudge
    assert len(ward.tg.sent_to(BOSS)) == boss_had  # only the assignee is nudged

    assert await ward.app.scheduler.run_now("feedback-overdue-nudges") == 0  # once a period
    ward.clock.advance(timedelta(hours=25))
    assert await ward.app.scheduler.run_now("feedback-overdue-nudges") == 1
    await ward.told(LEADER, leader_had + 2)
    [overdue] = await ward.say(LEADER, "/phananh quahan")
    assert "quá hạn: 1" in overdue and "PA-1 ⏰" in overdue
    await ward.say(LEADER, "/xuly PA-1 daxong Đã cưa cây, dọn xong")
    ward.clock.advance(timedelta(hours=25))
    assert await ward.app.scheduler.run_now("feedback-overdue-nudges") == 0


async def test_unassigned_overdue_ticket_nudges_leader_and_coordinator(ward: Ward) -> None:
    await ward.say(RESIDENT, "/gopy Nhờ hướng dẫn cài VNeID cho bố tôi")
    ward.clock.advance(timedelta(hours=121))
    had = {u: len(ward.tg.sent_to(u)) for u in (LEADER, OTHER_LEADER, BOSS)}
    assert await ward.app.scheduler.run_now("feedback-overdue-nudges") == 2
    for staff in (LEADER, BOSS):
        assert "PA-1 (TDP01) đã quá hạn" in (await ward.told(staff, had[staff] + 1))[-1]
    assert len(ward.tg.sent_to(OTHER_LEADER)) == had[OTHER_LEADER]
