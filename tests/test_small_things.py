"""Small things a ward notices: times, dates, numbers and words as people read them."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from bot.when import parse_when
from tests.conftest import Harness

HANOI = ZoneInfo("Asia/Ho_Chi_Minh")


def test_a_bare_time_in_the_evening_means_tomorrow_morning() -> None:
    evening = datetime(2026, 11, 24, 14, 0, tzinfo=UTC)  # 21:00 in Hanoi
    assert parse_when("7:00", evening, HANOI) == datetime(2026, 11, 25, 0, 0, tzinfo=UTC)
    assert parse_when("22h", evening, HANOI) == datetime(2026, 11, 24, 15, 0, tzinfo=UTC)
    # A date said outright is kept as said (the caller refuses a time in the past).
    assert parse_when("7:00 24/11", evening, HANOI) == datetime(2026, 11, 24, 0, 0, tzinfo=UTC)


def test_numbers_and_percents_read_the_vietnamese_way() -> None:
    from bot.texts import format_number, format_percent

    assert format_number(4250) == "4.250" and format_number(2.5) == "2,5"
    assert format_number(12345.5) == "12.345,5" and format_number(3.0) == "3"
    assert format_percent(40 / 10_000) == "0,4%"
    assert format_percent(0) == "0%" and format_percent(1) == "100%"
    assert format_percent(0.53) == "53%"
    assert format_percent(9_996 / 10_000) == "99,9%"  # never "100%" before it is done


async def test_a_campaign_starting_next_week_is_coming_not_running(harness: Harness) -> None:
    from datetime import date

    from bot.core import Role, Sender

    await harness.grant("100", Role.COORDINATOR)
    boss = await harness.ctx.services.access.identify("telegram", Sender("100", "Cán bộ"))
    ward = await harness.ctx.services.places.ward_by_code("P1")
    assert ward is not None
    await harness.ctx.services.campaigns.create(
        boss, ward.id, title="Tháng VNeID", step_key="vneid", target=80,
        starts_on=date(2026, 12, 1), ends_on=date(2026, 12, 31), group_ids=[], days=["mon"],
        at_time="08:00",
    )
    said = await harness.say("/chiendich")
    assert "#1 Tháng VNeID — sắp bắt đầu (từ 1/12)" in said
    assert "đang chạy" not in said


async def test_exports_speak_vietnamese_with_local_dates(harness: Harness) -> None:
    import io

    from openpyxl import load_workbook

    from bot.core import Role, Sender
    from bot.services.reports import progress_csv, progress_xlsx
    from bot.services.tables import read_table

    services = harness.ctx.services
    ward = await services.places.ward_by_code("P1")
    assert ward is not None
    await services.registry.import_table(ward.id, read_table(
        "code,group,head_name,address,members\nTDP01-001,TDP01,Nguyễn Văn An,12 Lê Lợi,3\n"
        .encode()))
    await harness.grant("100", Role.HELPER, "TDP01")
    helper = await services.access.identify("telegram", Sender("100", "Anh Tư"))
    household = await services.households.by_code(ward.id, "TDP01-001")
    assert household is not None
    await services.households.mark(helper, household.id, {"smartphone": None})  # 10:00 local
    progress = await services.progress.ward(ward.id)
    rows = await services.registry.household_rows(ward.id)
    tz = harness.ctx.config.bot.tz
    text = progress_csv(progress, rows, harness.ctx.texts.label, tz).decode("utf-8-sig")
    header, first = text.splitlines()[:2]
    assert header.startswith("Mã hộ,Tổ,Chủ hộ,Địa chỉ,Số nhân khẩu,Số người lớn,")
    assert "Người ghi,Thời gian ghi" in header
    assert first.startswith("TDP01-001,TDP01,Nguyễn Văn An,12 Lê Lợi,3,3,Đã xong,Anh Tư,"
                            "24/11/2026 10:00,")
    book = load_workbook(io.BytesIO(progress_xlsx(progress, rows, harness.ctx.texts.label, tz)))
    assert book.sheetnames == [
        "Tổng hợp", "Điện thoại thông minh", "Nhóm chat của tổ", "VNeID mức 2",
        "Ứng dụng Công dân số", "Thanh toán điện tử", "Dịch vụ công", "Danh sách hộ"]
    assert all(len(name) <= 31 for name in book.sheetnames)
    logged = book["Danh sách hộ"]["I2"]
    assert logged.number_format == "dd/mm/yyyy hh:mm" and logged.value.hour == 10


async def test_a_numbered_checklist_names_the_step_of_every_item(harness: Harness) -> None:
    from bot.core import Capabilities, Role
    from bot.services.tables import read_table

    harness.platform.capabilities = Capabilities(buttons=False, edit=False, documents=False,
                                                 photos=False, max_text=2000, markup="plain")
    ward = await harness.ctx.services.places.ward_by_code("P1")
    assert ward is not None
    await harness.ctx.services.registry.import_table(ward.id, read_table(
        "code,group,head_name,members\nTDP01-001,TDP01,Nguyễn Văn An,3\n".encode()))
    await harness.grant("100", Role.HELPER, "TDP01")
    said = await harness.say("/ghi TDP01-001")
    items = [line for line in said.splitlines() if line[:1].isdigit() and ". " in line]
    assert items and all(len(line.split(". ", 1)[1].strip()) > 2 for line in items), items
    assert any("➖ Bớt 1: VNeID mức 2" in line for line in items)
