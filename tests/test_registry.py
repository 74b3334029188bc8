"""The household registry: imports from the files wards really have, and what comes back out."""

from __future__ import annotations

import asyncio
import io
import unicodedata
from datetime import UTC, datetime

import pytest
from openpyxl import Workbook

from bot.clock import FrozenClock
from bot.context import build_context
from bot.core import Role, Sender
from bot.db import Database
from bot.services.registry import rows_to_csv
from bot.services.tables import TableError, read_table
from tests.conftest import Harness, make_config

GOOD = (
    "code,group,head_name,address,members,phone\n"
    "TDP01-001,TDP01,Nguyễn Văn An,12 Lê Lợi,4,0912 345 678\n"
    "TDP01-002,TDP01,Trần Thị Bình,14 Lê Lợi,2,\n"
    "TDP03-001,TDP03,Lê Văn Cường,3 Hùng Vương,5,\n"
)


async def ward_id(h: Harness) -> int:
    ward = await h.ctx.services.places.ward_by_code("P1")
    assert ward is not None
    return ward.id


async def test_import_creates_groups_and_reimport_changes_nothing(harness: Harness) -> None:
    registry = harness.ctx.services.registry
    wid = await ward_id(harness)
    blocked = await registry.import_table(wid, read_table(GOOD.encode()))
    assert blocked.new_groups == [("TDP03", "TDP02")] and not blocked.written
    assert await harness.ctx.services.households.count_in_ward(wid) == 0
    report = await registry.import_table(wid, read_table(GOOD.encode()), create_groups=True)
    assert (report.added, report.updated, report.unchanged, report.rejected) == (3, 0, 0, [])
    assert report.groups_created == ["TDP03"]
    again = await registry.import_table(wid, read_table(GOOD.encode()), create_groups=True)
    assert (again.added, again.updated, again.unchanged) == (0, 0, 3)
    changed = GOOD.replace("14 Lê Lợi,2", "16 Lê Lợi,3")
    third = await registry.import_table(wid, read_table(changed.encode()), create_groups=True)
    assert (third.added, third.updated, third.unchanged) == (0, 1, 2)
    assert await harness.ctx.services.households.count_in_ward(wid) == 3
    household = await harness.ctx.services.households.by_code(wid, "tdp01-002")
    assert household is not None and household.address == "16 Lê Lợi" and household.members == 3
    progress = await harness.ctx.services.progress.ward(wid)
    assert {g.code: g.households for g in progress.groups} == {"TDP01": 2, "TDP02": 0, "TDP03": 1}


async def test_bad_rows_are_reported_and_good_rows_still_go_in(harness: Harness) -> None:
    data = (
        "mã hộ;tổ;chủ hộ;địa chỉ;số nhân khẩu;điện thoại\n"
        "TDP01-001;TDP01;Nguyễn Văn An;12 Lê Lợi;4;\n"
        ";TDP01;Không Mã;1 Lê Lợi;2;\n"
        "TDP01-003;TDP01;Phạm Văn Dũng;;bốn;\n"
        "TDP01-001;TDP01;Nguyễn Văn An;12 Lê Lợi;4;\n"
        "TDP01-005;TDP01;Hoàng Thị Em;;3;12ab\n"
        "TDP01-006;TDP01;;;3;\n"
    )
    wid = await ward_id(harness)
    report = await harness.ctx.services.registry.import_table(wid, read_table(data.encode()))
    assert report.added == 2  # a bad phone keeps the household, without the phone
    assert [(r.line, r.reason) for r in report.rejected] == [
        (3, "missing_code"), (4, "bad_members"), (5, "duplicate_code"), (7, "missing_head"),
    ]
    assert report.rejected[2].detail == "TDP01-001|2"
    assert [(r.line, r.reason, r.detail) for r in report.warnings] == [(6, "bad_phone", "12ab")]
    household = await harness.ctx.services.households.by_code(wid, "TDP01-005")
    assert household is not None and household.phone == ""


async def test_strict_and_dry_run_write_nothing(harness: Harness) -> None:
    wid = await ward_id(harness)
    registry = harness.ctx.services.registry
    bad = GOOD + "TDP01-009,TDP01,Vũ Văn Giang,,nhiều,\n"
    strict = await registry.import_table(wid, read_table(bad.encode()), strict=True, create_groups=True)
    assert strict.added == 3 and len(strict.rejected) == 1 and not strict.written
    dry = await registry.import_table(wid, read_table(GOOD.encode()), dry_run=True, create_groups=True)
    assert dry.added == 3 and not dry.written
    assert await harness.ctx.services.households.count_in_ward(wid) == 0


def windows_1258(text: str) -> bytes:
    """As Vietnamese Windows writes: letters like "ê" whole, tone marks as combining marks."""
    out = b""
    for ch in text:
        try:
            out += ch.encode("cp1258")
        except UnicodeEncodeError:
            parts = unicodedata.normalize("NFD", ch)
            base = unicodedata.normalize("NFC", parts[:-1])
            out += base.encode("cp1258") + parts[-1].encode("cp1258")
    return out


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "cp1258", "utf-16"])
def test_excel_encodings_read_back_with_diacritics(encoding: str) -> None:
    data = windows_1258(GOOD) if encoding == "cp1258" else GOOD.encode(encoding)
    table = read_table(data)
    assert table.encoding == encoding.removesuffix("-sig")
    assert table.header[:3] == ("code", "group", "head_name")
    assert table.rows[0].cells[2] == "Nguyễn Văn An"
    assert table.rows[2].line == 4


def test_unreadable_files_say_why() -> None:
    with pytest.raises(TableError) as empty:
        read_table(b"  \n")
    assert empty.value.reason == "empty"
    with pytest.raises(TableError) as old:
        read_table(b"\xd0\xcf\x11\xe0" + b"\0" * 100, "ds.xls")
    assert old.value.reason == "old_excel"
    with pytest.raises(TableError) as broken:
        read_table(b"PK\x03\x04 not really a zip")
    assert broken.value.reason == "not_a_table"


async def test_unknown_or_missing_columns_stop_the_import(harness: Harness) -> None:
    wid = await ward_id(harness)
    registry = harness.ctx.services.registry
    sheet = b"code,group,head_name,ghichu,mau xe\nA,TDP01,X,y,do\n"
    with pytest.raises(TableError) as unknown:
        await registry.import_table(wid, read_table(sheet), strict=True)
    assert (unknown.value.reason, unknown.value.detail) == (
        "unknown_column", "mau xe|Điện thoại thông minh, Nhóm chat của tổ, VNeID mức 2, "
        "Ứng dụng Công dân số, Thanh toán điện tử, Dịch vụ công")
    lenient = await registry.import_table(wid, read_table(sheet))
    assert lenient.added == 1 and lenient.ignored_columns == ["mau xe"]  # ghichu: silently
    with pytest.raises(TableError) as missing:
        await registry.import_table(wid, read_table(b"code,head_name\nA,X\n"))
    assert (missing.value.reason, missing.value.detail) == ("missing_column", "group")


async def test_xlsx_with_vietnamese_headers_and_step_columns(harness: Harness) -> None:
    book = Workbook()
    sheet = book.active
    sheet.append(["Mã hộ", "Tổ", "Chủ hộ", "Địa chỉ", "Số nhân khẩu", "Số người lớn", "vneid",
                  "Có điện thoại thông minh"])
    sheet.append(["TDP02-001", "TDP02", "Đỗ Văn Hải", "1 Trần Phú", 4, 3, 2, "x"])
    sheet.append(["TDP02-002", "TDP02", "Ngô Thị Lan", "2 Trần Phú", 2, None, None, "có"])
    buffer = io.BytesIO()
    book.save(buffer)
    wid = await ward_id(harness)
    report = await harness.ctx.services.registry.import_table(wid, read_table(buffer.getvalue()), create_groups=True)
    assert (report.added, report.rejected, report.steps_set) == (2, [], 3)
    progress = await harness.ctx.services.progress.ward(wid)
    tdp02 = next(g for g in progress.groups if g.code == "TDP02")
    assert (tdp02.steps["vneid"].done, tdp02.steps["vneid"].total) == (2, 5)
    assert (tdp02.steps["smartphone"].done, tdp02.steps["smartphone"].total) == (2, 2)


async def test_csv_export_reads_back(harness: Harness, tmp_path: object) -> None:
    wid = await ward_id(harness)
    await harness.ctx.services.registry.import_table(wid, read_table(GOOD.encode()), create_groups=True)
    rows = await harness.ctx.services.registry.household_rows(wid)
    text = rows_to_csv(rows).decode("utf-8-sig")
    assert text.splitlines()[1].startswith("TDP01-001,TDP01,Nguyễn Văn An,12 Lê Lợi,4,4,0,1,")



async def test_import_mark_and_count_on_both_databases(db_url: str, clock: FrozenClock) -> None:
    """The same queries on SQLite and PostgreSQL: import, search, tick, undo, totals."""
    db = Database(db_url)
    await db.upgrade()
    try:
        services = build_context(make_config(db_url), db, clock).services
        ward = await services.places.add_ward("P9", "Phường Thử")
        data = GOOD.replace("members,phone", "members,phone,vneid").replace(
            "0912 345 678", "0912 345 678,2").replace("14 Lê Lợi,2,", "14 Lê Lợi,2,,x")
        report = await services.registry.import_table(ward.id, read_table(data.encode()), create_groups=True)
        assert (report.added, report.steps_set, report.rejected) == (3, 2, [])
        coordinator = await services.access.grant(
            platform="telegram", user_id="1", role=Role.COORDINATOR, ward_code="P9")
        assert coordinator.role is Role.COORDINATOR
        me = await services.access.identify("telegram", Sender("1", "Cán bộ"))
        [found] = await services.households.search(ward.id, "le van cuong", None)
        marked = await services.households.mark(me, found.id, {"vneid": None, "smartphone": 1})
        assert [(c.key, c.before, c.after) for c in marked.changes] == [
            ("vneid", 0, 5), ("smartphone", 0, 1)]
        counts = {g.code: g.steps["vneid"] for g in (await services.progress.ward(ward.id)).groups}
        assert (counts["TDP01"].done, counts["TDP01"].total, counts["TDP01"].households_done) == (
            4, 6, 1)
        assert (counts["TDP03"].done, counts["TDP03"].households_done) == (5, 1)
        await services.households.undo(me, marked.batch)
        counts = {g.code: g.steps["vneid"] for g in (await services.progress.ward(ward.id)).groups}
        assert counts["TDP03"].done == 0
        missing, total = await services.households.missing(found.group_id, "vneid", offset=0,
                                                           limit=10)
        assert total == 1 and missing[0][0].code == "TDP03-001"
        again = data.replace("0912 345 678,2", "0912 345 678,4").replace("14 Lê Lợi,2,,x",
                                                                        "14 Lê Lợi,2,,0")
        second = await services.registry.import_table(ward.id, read_table(again.encode()), create_groups=True)
        assert (second.unchanged, second.steps_set) == (3, 2)
        counts = {g.code: g.steps["vneid"] for g in (await services.progress.ward(ward.id)).groups}
        assert (counts["TDP01"].done, counts["TDP01"].households_done) == (4, 1)
    finally:
        await db.dispose()


@pytest.mark.postgres
async def test_parallel_marks_and_an_import_keep_the_totals_right(pg_url: str) -> None:
    """Helpers tick at the same moment (and an import runs): no error, no lost count."""
    db = Database(pg_url)
    await db.upgrade()
    try:
        clock = FrozenClock(datetime(2026, 11, 24, 4, 0, tzinfo=UTC))
        services = build_context(make_config(pg_url), db, clock).services
        ward = await services.places.add_ward("P9", "Phường Thử")
        lines = "".join(f"TDP01-{n:03d},TDP01,Chủ hộ {n},,2\n" for n in range(1, 21))
        table = read_table(("code,group,head_name,address,members\n" + lines).encode())
        await services.registry.import_table(ward.id, table, create_groups=True)
        await services.access.grant(platform="telegram", user_id="1", role=Role.COORDINATOR,
                                    ward_code="P9")
        me = await services.access.identify("telegram", Sender("1", "Cán bộ"))
        found = [await services.households.by_code(ward.id, f"TDP01-{n:03d}")
                 for n in range(1, 21)]
        marks = [services.households.mark(me, h.id, {"smartphone": None})
                 for h in found if h is not None]
        again = services.registry.import_table(ward.id, table, create_groups=True)
        results = await asyncio.gather(*marks, again, return_exceptions=True)
        assert [r for r in results if isinstance(r, BaseException)] == []
        group = (await services.progress.ward(ward.id)).groups[0]
        assert (group.steps["smartphone"].done, group.steps["smartphone"].total) == (20, 20)
    finally:
        await db.dispose()


async def test_changing_the_number_of_adults_refits_per_adult_steps(harness: Harness) -> None:
    wid = await ward_id(harness)
    registry = harness.ctx.services.registry
    data = "code,group,head_name,members,adults,vneid\nTDP01-001,TDP01,Nguyễn Văn An,4,3,3\n"
    await registry.import_table(wid, read_table(data.encode()), create_groups=True)
    more = data.replace(",4,3,3", ",6,6,")
    await registry.import_table(wid, read_table(more.encode()), create_groups=True)
    tdp01 = (await harness.ctx.services.progress.ward(wid)).groups[0]
    assert (tdp01.steps["vneid"].done, tdp01.steps["vneid"].total,
            tdp01.steps["vneid"].households_done) == (3, 6, 0)
    missing, total = await harness.ctx.services.households.missing(tdp01.group_id, "vneid",
                                                                   offset=0, limit=5)
    assert total == 1
    fewer = data.replace(",4,3,3", ",4,1,")
    await registry.import_table(wid, read_table(fewer.encode()), create_groups=True)
    tdp01 = (await harness.ctx.services.progress.ward(wid)).groups[0]
    assert (tdp01.steps["vneid"].done, tdp01.steps["vneid"].total,
            tdp01.steps["vneid"].households_done) == (1, 1, 1)
