"""Households over Telegram: helpers log door to door, residents see and report their own
household, coordinators import the ward's list. Asserted is what each person reads in their
chat, and what the figures then say. (Progress, charts and the export: test_progress.py.)"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from bot.app import BotApp
from bot.clock import FrozenClock
from bot.config import Config
from bot.roles import Role
from bot.services.tables import read_table
from tests.conftest import shared_content
from tests.fake_telegram import FakeTelegram
from tests.telegram_people import Ward, labels, plain

TOKEN = "123456:TEST-TOKEN"
HELPER, OTHER_HELPER, LEADER, BOSS, RESIDENT = 701, 702, 703, 704, 705
START = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
LIST = (
    "mã hộ,tổ,chủ hộ,địa chỉ,số nhân khẩu,số người lớn\n"
    "TDP01-001,TDP01,Nguyễn Văn An,12 Lê Lợi,4,3\n"
    "TDP01-002,TDP01,Trần Thị Bình,14 Lê Lợi,2,2\n"
    "TDP01-003,TDP01,Lê Văn Cường,16 Lê Lợi,1,1\n"
    "TDP02-001,TDP02,Phạm Thị Dung,3 Hùng Vương,3,2\n"
)
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@pytest.fixture
async def ward(sqlite_url: str) -> AsyncIterator[Ward]:
    async with FakeTelegram(token=TOKEN, bot_username="cds_test_bot") as tg:
        config = Config.model_validate({
            "database": {"url": sqlite_url},
            "telegram": {"token": TOKEN, "api_base_url": tg.base_url},
            "web": {"port": 0}, "outbox": {"private_per_second": 100},
        })
        app = BotApp(config, clock=FrozenClock(START), content=shared_content())
        await app.db.upgrade()
        services = app.context.services
        ward = await services.places.add_ward("HB", "Phường Hòa Bình")
        await services.registry.import_table(ward.id, read_table(LIST.encode()), create_groups=True)
        for user, role, group in ((HELPER, Role.HELPER, "TDP01"),
                                  (OTHER_HELPER, Role.HELPER, "TDP02"),
                                  (LEADER, Role.LEADER, "TDP01"),
                                  (BOSS, Role.COORDINATOR, None),
                                  (RESIDENT, Role.RESIDENT, "TDP01")):
            await services.access.grant(platform="telegram", user_id=str(user), role=role,
                                        ward_code="HB", group_code=group)
        await app.start()
        try:
            yield Ward(tg, app, app.context.clock)  # type: ignore[arg-type]
        finally:
            await app.stop()


async def figures(ward: Ward, step: str) -> dict[str, tuple[int, int]]:
    wid = (await ward.app.context.services.places.ward_by_code("HB")).id  # type: ignore[union-attr]
    progress = await ward.app.context.services.progress.ward(wid)
    return {g.code: (g.steps[step].done, g.steps[step].total) for g in progress.groups}


async def test_helper_logs_in_one_line_and_undoes_with_one_button(ward: Ward) -> None:
    [answer] = await ward.say(HELPER, "/ghi tdp01-001 vneid smartphone | bà cần học lại mật khẩu")
    assert "Đã ghi:" in answer
    assert "• Tài khoản định danh điện tử VNeID mức 2: 0 → 3/3 người" in answer
    assert "• Có điện thoại thông minh: đã xong" in answer
    assert "✅ 3. Tài khoản định danh điện tử VNeID mức 2 (3/3 người)" in answer
    assert "xong 2/6 việc" in answer
    assert "↩️ Hoàn tác" in labels(ward.tg.sent_to(HELPER)[-1])
    assert await figures(ward, "vneid") == {"TDP01": (3, 6), "TDP02": (0, 2)}
    undone = await ward.press(HELPER, "↩️ Hoàn tác", edit=True)
    assert "• Tài khoản định danh điện tử VNeID mức 2: 3 → 0/3 người" in undone
    assert "xong 0/6 việc" in undone
    assert await figures(ward, "vneid") == {"TDP01": (0, 6), "TDP02": (0, 2)}
    redone = await ward.press(HELPER, "↩️ Hoàn tác", edit=True)  # undoing the undo
    assert "• Tài khoản định danh điện tử VNeID mức 2: 0 → 3/3 người" in redone
    first = ward.tg.sent_to(HELPER)[0]
    stale = first["reply_markup"]["inline_keyboard"][-1][0]["callback_data"]
    ward.tg.callback(HELPER, HELPER, int(first["message_id"]), stale)  # the old button again
    [again] = (await ward.told(HELPER, 2))[1:]
    assert "đã được hoàn tác rồi" in again


async def test_counts_per_adult_and_checklist_buttons(ward: Ward) -> None:
    [answer] = await ward.say(HELPER, "/ghi TDP01-001 vneid=2 epayment=1")
    assert "0 → 2/3 người" in answer and "0 → 1/3 người" in answer
    [checklist] = await ward.say(HELPER, "/ghi TDP01-001")
    assert "⬜ 1. Có điện thoại thông minh" in checklist
    assert "Tài khoản định danh điện tử VNeID mức 2 (2/3 người)" in checklist
    buttons = labels(ward.tg.sent_to(HELPER)[-1])
    assert "➕ VNeID mức 2: 2/3" in buttons
    ticked = await ward.press(HELPER, "⬜ Điện thoại thông minh", edit=True)
    assert "✅ 1. Có điện thoại thông minh" in ticked
    plus = await ward.press(HELPER, "➕ VNeID mức 2: 2/3", edit=True)
    assert "✅ 3. Tài khoản định danh điện tử VNeID mức 2 (3/3 người)" in plus
    [too_many] = await ward.say(HELPER, "/ghi TDP01-001 vneid=5")
    assert "chỉ có 3 người" in too_many


async def test_mistakes_get_a_clear_answer_and_change_nothing(ward: Ward) -> None:
    [unknown] = await ward.say(HELPER, "/ghi TDP01-01 vneid")
    assert "Không có hộ mã TDP01-01" in unknown and "TDP01-001" in unknown
    [step] = await ward.say(HELPER, "/ghi TDP01-001 vneid vnid")
    assert "Không có việc «vnid»" in step
    assert "smartphone, group_chat, vneid, citizen_app, epayment, public_services" in step
    [other] = await ward.say(HELPER, "/ghi TDP02-001 vneid")
    assert "Hộ TDP02-001 thuộc tổ TDP02, không phải tổ của bạn" in other
    [resident] = await ward.say(RESIDENT, "/ghi TDP01-001 vneid")
    assert "Thành viên tổ công nghệ số" in resident  # the role needed, in words
    assert await figures(ward, "vneid") == {"TDP01": (0, 6), "TDP02": (0, 2)}


async def test_find_by_name_without_diacritics(ward: Ward) -> None:
    [asked] = await ward.say(HELPER, "/ghi")
    assert "Hộ nào ạ?" in asked
    [found] = await ward.say(HELPER, "nguyen van an")
    assert "TDP01-001 · Nguyễn Văn An · 12 Lê Lợi" in found
    [several] = await ward.say(HELPER, "/ho le loi")
    assert "Có 3 hộ khớp với «le loi»" in several
    assert labels(ward.tg.sent_to(HELPER)[-1]) == [
        "TDP01-001 · Nguyễn Văn An", "TDP01-002 · Trần Thị Bình", "TDP01-003 · Lê Văn Cường",
    ]
    opened = await ward.press(HELPER, "TDP01-002 · Trần Thị Bình", edit=True)
    assert "TDP01-002 · Trần Thị Bình" in opened
    [outside] = await ward.say(HELPER, "/ho pham thi dung")
    assert "Không tìm thấy hộ nào" in outside  # TDP02 is not this helper's group
    [coordinator] = await ward.say(BOSS, "/ho pham thi dung")
    assert "TDP02-001 · Phạm Thị Dung" in coordinator


async def test_resident_links_reports_and_helper_confirms(ward: Ward) -> None:
    [ask_code] = await ward.say(RESIDENT, "/cuaho")
    assert "gõ mã hộ" in ask_code
    [ask_name] = await ward.say(RESIDENT, "TDP01-002")
    assert "Chủ hộ tên là gì" in ask_name
    [wrong] = await ward.say(RESIDENT, "nguyen van an")
    assert "Tên chủ hộ chưa đúng" in wrong
    linked, mine = await ward.say(RESIDENT, "/cuaho TDP01-002 tran thi binh", count=2)
    assert "Đã gắn bạn với hộ TDP01-002" in linked
    assert "⬜ 3. Tài khoản định danh điện tử VNeID mức 2 (0/2 người)" in mine
    buttons = labels(ward.tg.sent_to(RESIDENT)[-1])
    assert "📖 Hướng dẫn việc 3" in buttons and "✅ Tôi đã làm xong việc 3" in buttons
    guide = await ward.press(RESIDENT, "📖 Hướng dẫn việc 3")
    assert "VNeID" in guide
    reported = await ward.press(RESIDENT, "✅ Tôi đã làm xong việc 3")
    assert "Đã ghi nhận nhà mình làm xong «Tài khoản định danh điện tử VNeID mức 2»" in reported
    [note] = await ward.told(HELPER, 1)
    assert "TDP01-002 (Trần Thị Bình) báo đã làm xong «Tài khoản định danh" in note
    await ward.told(LEADER, 1)
    assert not ward.tg.sent_to(OTHER_HELPER)
    assert await figures(ward, "vneid") == {"TDP01": (0, 6), "TDP02": (0, 2)}
    [again] = await ward.say(RESIDENT, "/cuaho")
    assert "⏳ 3. Tài khoản định danh điện tử VNeID mức 2 (0/2 người) — chờ xác nhận" in again
    assert "✅ Tôi đã làm xong việc 3" not in labels(ward.tg.sent_to(RESIDENT)[-1])
    before = len(ward.tg.sent_to(RESIDENT))
    confirmed = await ward.press(HELPER, "✔️ Xác nhận", edit=True)
    assert "✅ 3. Tài khoản định danh điện tử VNeID mức 2 (2/2 người)" in confirmed
    thanks = (await ward.told(RESIDENT, before + 1))[-1]
    assert "Tổ công nghệ số đã xác nhận: hộ TDP01-002 đã xong" in thanks
    assert await figures(ward, "vneid") == {"TDP01": (2, 6), "TDP02": (0, 2)}


async def test_coordinator_imports_by_sending_the_file(ward: Ward) -> None:
    data = (LIST + "TDP03-001,TDP03,Võ Văn Em,1 Trần Phú,3,2\n"
            "TDP03-002,TDP03,,2 Trần Phú,3,2\n").encode("utf-8-sig")
    asked = await ward.send_file(BOSS, "ds-ho.csv", data, "text/csv")
    # A group the ward does not have is shown first, and made only when confirmed.
    assert "Chưa nhập «ds-ho.csv»: tệp có 1 tổ chưa có ở phường:\n• TDP03" in asked
    report = await ward.press(BOSS, "✅ Đúng, tạo 1 tổ và nhập")
    assert "Đã nhập danh sách hộ «ds-ho.csv»" in report
    assert "Thêm mới: 1 · Cập nhật: 0 · Giữ nguyên: 4 · Lỗi: 1" in report
    assert "Tổ mới đã tạo: TDP03" in report and "Dòng 7: thiếu tên chủ hộ" in report
    broken = await ward.send_file(BOSS, "ds.xlsx", b"PK\x03\x04broken", XLSX)
    assert "Chưa nhập được: tệp này không phải bảng tính" in broken
    pdf = await ward.send_file(BOSS, "ds.xlsx", b"%PDF-1.7 hello", XLSX)
    assert "Chưa nhập được: tệp này không phải bảng tính" in pdf
    refused = await ward.send_file(HELPER, "ds-ho.csv", data, "text/csv")
    assert "chỉ nhận tệp danh sách hộ từ cán bộ phường" in refused


async def test_linking_needs_the_full_name_of_a_household_of_my_group(ward: Ward) -> None:
    [partial] = await ward.say(RESIDENT, "/cuaho TDP01-002 thi")
    assert "Tên chủ hộ chưa đúng" in partial
    [other] = await ward.say(RESIDENT, "/cuaho TDP02-001 pham thi dung")
    assert "không thuộc tổ của bạn" in other and "Phạm" not in other
    for _ in range(3):
        await ward.say(RESIDENT, "/cuaho TDP01-003 le van")
    [stopped] = await ward.say(RESIDENT, "/cuaho TDP01-003 le van cuong")
    assert "thử nhiều lần quá" in stopped  # five misses in an hour, even before a right one
    ward.clock.advance(timedelta(hours=1, minutes=1))  # type: ignore[attr-defined]
    linked, _mine = await ward.say(RESIDENT, "/cuaho TDP01-003 Lê Văn Cường", count=2)
    assert "Đã gắn bạn với hộ TDP01-003" in linked


async def test_household_names_never_go_to_a_group_chat(ward: Ward) -> None:
    group = -9001
    ward.tg.set_chat(group, "group", "Tổ 1")
    ward.tg.message(group, LEADER, "/tiendo@cds_test_bot TDP01", chat_type="group")
    [shown] = await ward.tg.wait_sent(group, 1)
    assert "Tổ TDP01" in plain(shown) and labels(shown) == []  # no "Hộ chưa xong" here
    ward.tg.callback(group, LEADER, int(shown["message_id"]), "pgm:1", chat_type="group")
    [_, refused] = await ward.tg.wait_sent(group, 2)
    assert "chỉ dùng khi nhắn riêng" in plain(refused) and "Nguyễn" not in plain(refused)
