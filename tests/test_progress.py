"""Progress over Telegram: `/tiendo` and `/xephang` for each role, the bar chart sent as a
picture, and `/xuat`'s workbook read back cell by cell (coordinators only)."""

from __future__ import annotations

import io
from zoneinfo import ZoneInfo

import pytest
from openpyxl import load_workbook

from tests.telegram_people import Ward, labels
from tests.test_households import BOSS, HELPER, LEADER, RESIDENT, START
from tests.test_households import ward as ward  # the same seeded ward and bot  # noqa: F401


async def test_progress_by_command_for_each_role(ward: Ward) -> None:
    await ward.say(HELPER, "/ghi TDP01-001 vneid smartphone")
    await ward.say(HELPER, "/ghi TDP01-002 smartphone")
    [ward_view] = await ward.say(BOSS, "/tiendo")
    assert "Có điện thoại thông minh: 50% (2/4)" in ward_view
    assert "TDP01 ▓▓░░░░░░░░ 21% (5/24)" in ward_view  # 2+3 of (3+3+6+3+6+3) units
    [step] = await ward.say(BOSS, "/tiendo vneid")
    assert "1. TDP01 ▓▓▓▓▓░░░░░ 50% (3/6)" in step and "2. TDP02 ░░░░░░░░░░ 0% (0/2)" in step
    [group] = await ward.say(LEADER, "/tiendo TDP01")
    assert "Tổ TDP01" in group and "3 hộ, 6 người lớn" in group
    assert "▓▓▓▓▓▓▓░░░ 67% (2/3) · tuần này +2" in group
    missing = await ward.press(LEADER, "🏠 Hộ chưa xong")
    assert "Tổ TDP01 — hộ chưa xong: 3 hộ" in missing
    assert "TDP01-003 Lê Văn Cường, 16 Lê Lợi — còn: Có điện thoại thông minh;" in missing
    [resident] = await ward.say(RESIDENT, "/tiendo TDP01")
    assert "67% (2/3)" in resident
    assert labels(ward.tg.sent_to(RESIDENT)[-1]) == []  # percentages only, no names
    [ranking] = await ward.say(RESIDENT, "/xephang smartphone")
    assert "🥇 TDP01: 67% (2/3)" in ranking and "🥈 TDP02: 0% (0/1)" in ranking
    [bad] = await ward.say(RESIDENT, "/tiendo abc")
    assert "Mình không hiểu «abc»" in bad


async def test_chart_is_a_png(ward: Ward) -> None:
    await ward.say(HELPER, "/ghi TDP01-001 vneid")
    await ward.say(BOSS, "/tiendo vneid")
    caption = await ward.press(BOSS, "📈 Xem biểu đồ")
    assert "Tài khoản định danh điện tử VNeID mức 2: cả phường 38%" in caption
    png = ward.file_sent(BOSS, "sendPhoto")
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 5000


async def test_export_reads_back_and_only_coordinators_get_it(ward: Ward) -> None:
    await ward.say(HELPER, "/ghi TDP01-001 vneid=2 smartphone", name="Hà")
    [denied] = await ward.say(LEADER, "/xuat")
    assert "Cán bộ phường" in denied
    [caption] = await ward.say(BOSS, "/xuat")
    assert "Báo cáo tiến độ: 4 hộ" in caption
    book = load_workbook(io.BytesIO(ward.file_sent(BOSS, "sendDocument")))
    assert book.sheetnames[0] == "Tổng hợp" and book.sheetnames[-1] == "Danh sách hộ"
    summary = [[c.value for c in row] for row in book["Tổng hợp"].iter_rows()]
    assert summary[0][:5] == ["Tổ", "Số hộ", "Có điện thoại thông minh", "Tổng", "%"]
    assert summary[1][:5] == ["TDP01", 3, 1, 3, pytest.approx(0.33)]
    households = [[c.value for c in row] for row in book["Danh sách hộ"].iter_rows()]
    assert households[0][:9] == ["Mã hộ", "Tổ", "Chủ hộ", "Địa chỉ", "Số nhân khẩu",
                                 "Số người lớn", "Có điện thoại thông minh", "Người ghi",
                                 "Thời gian ghi"]
    first = households[1]
    assert first[:7] == ["TDP01-001", "TDP01", "Nguyễn Văn An", "12 Lê Lợi", 4, 3, "Đã xong"]
    assert first[7] == "Hà"
    assert first[8] == START.astimezone(ZoneInfo("Asia/Ho_Chi_Minh")).replace(tzinfo=None)
    vneid = households[0].index("Tài khoản định danh điện tử VNeID mức 2")
    assert first[vneid] == "2/3"
