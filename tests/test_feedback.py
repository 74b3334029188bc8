"""Feedback end to end through the router: residents file and follow, staff handle, the
reporter is told, anonymity and masking hold, abuse is limited, overdue tickets are nudged."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import select

from bot.core import Attachment, Chat, Incoming, Role, Sender
from bot.models import ConversationState, Feedback
from handlers.feedback import nudge_overdue
from tests.conftest import Harness
from tests.recording import message, press

RESIDENT, LEADER, OTHER_LEADER, BOSS = "201", "301", "302", "401"


async def setup(h: Harness) -> None:
    await h.grant(RESIDENT, Role.RESIDENT, "TDP01")
    await h.grant(LEADER, Role.LEADER, "TDP01")
    await h.grant(OTHER_LEADER, Role.LEADER, "TDP02")
    await h.grant(BOSS, Role.COORDINATOR)


def to(h: Harness, user: str) -> list[str]:
    return [s.text for s in h.platform.said if s.chat_id == user]


async def test_resident_files_by_form_with_photo_and_place(harness: Harness) -> None:
    await setup(harness)
    await harness.say("/gopy", user=RESIDENT)
    assert "💡 Hạ tầng - điện, đường" in harness.platform.last.labels
    await harness.send(press("fbc:infrastructure", user=RESIDENT))
    photo = Incoming(platform="telegram", chat=Chat(RESIDENT, "private"),
                     sender=Sender(RESIDENT, "Bà Năm"), text="Đèn đường trước nhà số 5 tắt 3 hôm rồi",
                     attachments=(Attachment(kind="photo", file_id="ph-1"),), addressed=True)
    await harness.send(photo)
    assert "Việc này ở đâu?" in harness.platform.last.text
    await harness.say("ngõ 12 Lê Lợi", user=RESIDENT)
    assert "giấu tên" in harness.platform.last.text
    await harness.send(press("fbn:0", user=RESIDENT))
    filed = harness.platform.last.text
    assert "Số phiếu của bạn: PA-1" in filed and "chậm nhất là" in filed
    view = await harness.say("/theodoi PA-1", user=RESIDENT)
    assert "Đèn đường trước nhà số 5" in view and "📍 ngõ 12 Lê Lợi" in view and "Mới" in view
    staff = await harness.say("/phananh", user=LEADER)
    assert "PA-1" in staff and "TDP01" in staff


async def test_one_line_feedback_and_duplicate_is_merged(harness: Harness) -> None:
    await setup(harness)
    first = await harness.say("/gopy Rác ở đầu ngõ chưa ai dọn", user=RESIDENT)
    assert "PA-1" in first
    again = await harness.say("/gopy rac o dau ngo chua ai don", user=RESIDENT)
    assert "đã gửi nội dung này rồi" in again and "PA-1" in again


async def test_rate_limit_then_allowed_an_hour_later(harness: Harness) -> None:
    await setup(harness)
    for i in range(3):
        assert f"PA-{i + 1}" in await harness.say(f"/gopy phản ánh số {i}", user=RESIDENT)
    limited = await harness.say("/gopy phản ánh thứ tư", user=RESIDENT)
    assert "gửi khá nhiều phiếu" in limited
    harness.clock.advance(timedelta(minutes=61))
    assert "PA-4" in await harness.say("/gopy phản ánh thứ tư", user=RESIDENT)


async def test_national_id_never_stored_and_contacts_masked_for_staff(harness: Harness) -> None:
    await setup(harness)
    await harness.say("/gopy CCCD của tôi 001203004567, gọi 0912 345 678", user=RESIDENT)
    async with harness.ctx.db.session() as session:
        row = (await session.exec(select(Feedback))).one()
    assert "001203004567" not in row.text and "************" in row.text
    staff = await harness.say("/xuly PA-1 tiepnhan", user=BOSS)
    assert "Đã tiếp nhận" in staff
    await harness.send(press("fbv:1", user=BOSS))
    view = harness.platform.last.text
    assert "09*****678" in view and "0912 345 678" not in view
    mine = await harness.say("/theodoi PA-1", user=RESIDENT)
    assert "0912 345 678" in mine  # the reporter still sees what he wrote


async def test_anonymous_reporter_hidden_but_still_told(harness: Harness) -> None:
    await setup(harness)
    await harness.say("/gopy", user=RESIDENT, name="Trần Văn Bảy")
    await harness.send(press("fbc:security", user=RESIDENT))
    await harness.say("Có người lạ hay đứng ở ngõ lúc đêm", user=RESIDENT, name="Trần Văn Bảy")
    await harness.send(press("fbs:skip", user=RESIDENT))
    await harness.send(press("fbn:1", user=RESIDENT))
    await harness.send(press("fbv:1", user=LEADER))
    view = harness.platform.last.text
    assert "(giấu tên)" in view and "Trần Văn Bảy" not in view
    await harness.send(press("fbx:1:reply", user=LEADER))
    await harness.say("Tổ đã báo công an khu vực tuần tra", user=LEADER)
    told = to(harness, RESIDENT)[-1]
    assert "PA-1" in told and "Tổ đã báo công an khu vực tuần tra" in told
    assert "Trần Văn Bảy" not in "\n".join(to(harness, LEADER))


async def test_full_life_cycle_with_assignment(harness: Harness) -> None:
    await setup(harness)
    await harness.say("/gopy Cống thoát nước bị tắc", user=RESIDENT)
    await harness.say("/start", user=LEADER, name="Tổ trưởng Hùng")
    await harness.send(press("fbx:1:acknowledge", user=BOSS))
    assert "Cán bộ phường đã tiếp nhận" in to(harness, RESIDENT)[-1]
    await harness.send(press("fbx:1:assign", user=BOSS))
    names = harness.platform.last.labels
    assert "Tổ trưởng Hùng" in names
    leader_id = harness.platform.last.payloads[names.index("Tổ trưởng Hùng")].split(":")[2]
    await harness.send(press(f"fba:1:{leader_id}", user=BOSS))
    assert "Bạn được giao xử lý phiếu PA-1" in to(harness, LEADER)[-1]
    assert "needs" not in await harness.say("/xuly PA-1 daxong", user=LEADER)
    assert "cần kèm lời nhắn" in to(harness, LEADER)[-1]
    await harness.say("/xuly PA-1 daxong Đã thông cống", user=LEADER)
    done = to(harness, RESIDENT)[-1]
    assert "Đã giải quyết xong" in done and "Đã thông cống" in done
    again = await harness.say("/xuly PA-1 tuchoi quá muộn", user=BOSS)
    assert "không làm được việc này nữa" in again
    history = await harness.say("/theodoi PA-1", user=RESIDENT)
    assert "Đã tiếp nhận" in history and "Đã xong" in history


async def test_leader_cannot_touch_another_groups_ticket(harness: Harness) -> None:
    await setup(harness)
    await harness.say("/gopy Đường ngập", user=RESIDENT)
    assert "PA-1" not in await harness.say("/phananh", user=OTHER_LEADER)
    assert "không thuộc tổ bạn phụ trách" in await harness.say("/xuly PA-1 tiepnhan", user=OTHER_LEADER)
    await harness.send(press("fbx:1:acknowledge", user=OTHER_LEADER))
    assert "không thuộc tổ bạn phụ trách" in harness.platform.last.text
    await harness.send(press("fbv:1", user=RESIDENT))
    assert "chỉ dành cho Tổ trưởng" in harness.platform.last.text
    assert "Không tìm thấy phiếu" in await harness.say("/theodoi PA-1", user="999")


async def test_question_from_the_guides_reaches_the_ward(harness: Harness) -> None:
    await setup(harness)
    await harness.say("con mèo nhà tôi bị lạc", user=RESIDENT)
    await harness.send(press("fb:ask", user=RESIDENT))
    assert "PA-1" in harness.platform.last.text
    staff = await harness.say("/phananh", user=BOSS)
    assert "con mèo nhà tôi bị lạc" in staff
    await harness.send(press("fb:ask:vneid_what", user=RESIDENT))
    assert "gõ câu hỏi" in harness.platform.last.text
    await harness.say("VNeID của tôi báo lỗi khi đăng nhập", user=RESIDENT)
    assert "PA-2" in harness.platform.last.text


async def test_overdue_tickets_are_nudged_once_per_period(harness: Harness) -> None:
    await setup(harness)
    await harness.say("/gopy Cây đổ chắn đường", user=RESIDENT)  # infrastructure? no: other, 120 h
    harness.clock.advance(timedelta(hours=121))
    sent = await nudge_overdue(harness.ctx, harness.router)
    assert sent == 2  # the coordinator and the group's leader
    assert "đã quá hạn" in to(harness, BOSS)[-1] and "đã quá hạn" in to(harness, LEADER)[-1]
    assert await nudge_overdue(harness.ctx, harness.router) == 0
    harness.clock.advance(timedelta(hours=25))
    assert await nudge_overdue(harness.ctx, harness.router) == 2
    overdue = await harness.say("/phananh quahan", user=BOSS)
    assert "PA-1 ⏰" in overdue


async def test_monthly_summary(harness: Harness) -> None:
    await setup(harness)
    await harness.say("/gopy Một", user=RESIDENT)
    await harness.say("/gopy Hai", user=RESIDENT)
    harness.clock.advance(timedelta(hours=10))
    await harness.say("/xuly PA-1 daxong xong rồi", user=BOSS)
    said = await harness.say("/phananh thang 11/2026", user=BOSS)
    assert "Nhận: 2 · Đã xong: 1 · Thường mất khoảng 10 giờ để xử lý xong" in said
    assert "trung vị" not in said
    assert "TDP01: 2 nhận, 1 xong" in said
    assert "Cách dùng" in await harness.say("/phananh thang 13/2026", user=BOSS)


async def test_forget_me_keeps_tickets_without_the_person(harness: Harness) -> None:
    await setup(harness)
    await harness.say("/gopy Xin thêm thùng rác", user=RESIDENT, name="Lê Thị Tám")
    await harness.say("/xoadulieu", user=RESIDENT)
    await harness.send(press("fbd:yes", user=RESIDENT))
    assert "1 phiếu đã gửi được giữ lại" in harness.platform.last.text
    assert "Bạn chưa tham gia tổ nào" in await harness.say("/quyen", user=RESIDENT, name="")
    await harness.send(press("fbv:1", user=BOSS))
    view = harness.platform.last.text
    assert "Xin thêm thùng rác" in view and "Lê Thị Tám" not in view


async def test_feedback_is_private_only(harness: Harness) -> None:
    assert "nhắn riêng" in await harness.say("/gopy", group=True)
    await harness.send(message("/gopy@cds_test_bot có chuyện", group=True))
    assert "nhắn riêng" in harness.platform.last.text


async def test_forget_me_leaves_other_peoples_open_forms(harness: Harness) -> None:
    await setup(harness)
    neighbour = RESIDENT + "9"  # an id that starts with the forgetting resident's id
    await harness.grant(neighbour, Role.RESIDENT, "TDP01")
    await harness.say("/gopy", user=neighbour)
    await harness.say("/xoadulieu", user=RESIDENT)
    await harness.send(press("fbd:yes", user=RESIDENT))
    await harness.send(press("fbc:environment", user=neighbour))
    assert "kể ngắn gọn chuyện gì đang xảy ra" in harness.platform.last.text


async def test_assigning_a_new_ticket_tells_the_reporter_it_was_taken_up(harness: Harness) -> None:
    await setup(harness)
    await harness.say("/gopy Cây đổ chắn ngõ 5", user=RESIDENT)
    await harness.say("/start", user=LEADER, name="Tổ trưởng Hùng")
    await harness.send(press("fbx:1:assign", user=BOSS))
    names = harness.platform.last.labels
    assert "Tổ trưởng Hùng" in names  # leaders and coordinators only: they can act on it
    leader_id = harness.platform.last.payloads[names.index("Tổ trưởng Hùng")].split(":")[2]
    await harness.send(press(f"fba:1:{leader_id}", user=BOSS))
    assert "Cán bộ phường đã tiếp nhận" in to(harness, RESIDENT)[-1]


async def test_staff_mistyping_a_ticket_get_a_staff_answer(harness: Harness) -> None:
    await setup(harness)
    answer = await harness.say("/xuly PA-77 tiepnhan", user=BOSS)
    assert "Không có phiếu PA-77 trong phạm vi bạn phụ trách" in answer
    assert "/theodoi" not in answer


@pytest.mark.parametrize(("typed", "hidden"), [
    ("CCCD001099012345", "001099012345"), ("cmnd123456789 bị mất", "123456789"),
    ("sdt0912345678", "0912345678"), ("gọi (+84) 912 345 678", "912 345 678"),
    ("gọi 84912345678", "84912345678"),
])
async def test_numbers_written_against_words_are_masked_too(
    harness: Harness, typed: str, hidden: str
) -> None:
    await setup(harness)
    await harness.say(f"/gopy {typed}", user=RESIDENT, name="Lan 0987 654 321")
    await harness.send(press("fbv:1", user=BOSS))
    view = harness.platform.last.text
    assert hidden not in view
    assert "0987 654 321" not in view and "09*****321" in view  # the name's phone too


async def test_an_id_number_in_an_open_form_is_never_kept(harness: Harness) -> None:
    await setup(harness)
    await harness.say("/gopy", user=RESIDENT)
    await harness.send(press("fbc:procedures", user=RESIDENT))
    await harness.say("Làm lại CCCD 001099012345 ở đâu?", user=RESIDENT)
    async with harness.ctx.db.session() as session:
        forms = (await session.exec(select(ConversationState))).all()
    assert forms and all("001099012345" not in str(f.data) for f in forms)


async def test_deleting_my_data_does_not_reset_the_hourly_limit(harness: Harness) -> None:
    await setup(harness)
    for n in range(3):
        await harness.say(f"/gopy Chuyện số {n} ở ngõ {n}", user=RESIDENT)
    assert "PA-" not in await harness.say("/gopy Chuyện thứ tư", user=RESIDENT)
    await harness.say("/xoadulieu", user=RESIDENT)
    await harness.send(press("fbd:yes", user=RESIDENT))
    await harness.grant(RESIDENT, Role.RESIDENT, "TDP01")
    assert "PA-4" not in await harness.say("/gopy Chuyện thứ năm", user=RESIDENT)
