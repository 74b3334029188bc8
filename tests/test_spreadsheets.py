"""Ward lists as people really make them: a title above the header, STT and Ghi chú columns,
steps by their short names, a bad phone here and there, a PDF renamed .xlsx, a typo in a
group code."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from openpyxl import Workbook

from bot.cli.main import main
from bot.services.tables import TableError, read_table
from tests.conftest import Harness


async def ward_id(h: Harness) -> int:
    ward = await h.ctx.services.places.ward_by_code("P1")
    assert ward is not None
    return ward.id


def workbook(rows: list[list[object]]) -> bytes:
    book = Workbook()
    sheet = book.active
    for row in rows:
        sheet.append(row)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


async def test_title_rows_stt_and_notes_columns_and_short_step_names(harness: Harness) -> None:
    data = workbook([
        ["DANH SÁCH HỘ GIA ĐÌNH TỔ DÂN PHỐ SỐ 1"],
        ["(kèm theo công văn số 12/UBND)"],
        [],
        ["STT", "Mã hộ", "Tổ", "Họ tên chủ hộ", "Địa chỉ", "Số nhân khẩu", "Số người lớn",
         "VNeID mức 2", "Dịch vụ công", "Ghi chú", "Ngày sinh"],
        [1, "TDP01-001", "TDP01", "Nguyễn Văn An", "12 Lê Lợi", 4, 3, 2, "x", "hộ nghèo",
         "01/01/1960"],
        [2, "TDP01-002", "TDP01", "Trần Thị Bình", "14 Lê Lợi", 2, 2, None, None, None, None],
    ])
    wid = await ward_id(harness)
    report = await harness.ctx.services.registry.import_table(wid, read_table(data, "ds.xlsx"))
    assert (report.added, report.rejected, report.ignored_columns) == (2, [], [])
    assert report.steps_set == 2
    progress = await harness.ctx.services.progress.ward(wid)
    tdp01 = next(g for g in progress.groups if g.code == "TDP01")
    assert (tdp01.steps["vneid"].done, tdp01.steps["vneid"].total) == (2, 5)
    assert tdp01.steps["public_services"].households_done == 1


async def test_csv_with_a_title_line_and_semicolons(harness: Harness) -> None:
    data = ("DANH SÁCH HỘ GIA ĐÌNH\n\n"
            "STT;mã hộ;tổ;chủ hộ;điện thoại;Mẫu xe\n"
            "1;TDP02-001;TDP02;Lê Văn Cường;0912 345 678;Honda\n"
            "2;TDP02-002;TDP02;Phạm Thị Dung;12ab;\n").encode("utf-8-sig")
    wid = await ward_id(harness)
    report = await harness.ctx.services.registry.import_table(wid, read_table(data))
    assert report.added == 2 and report.rejected == []
    assert report.ignored_columns == ["Mẫu xe"]
    assert [(w.line, w.reason) for w in report.warnings] == [(5, "bad_phone")]
    text = harness.ctx.texts.render("households/import_report", report=report, filename="ds.csv")
    assert "Bỏ qua cột không hiểu: «Mẫu xe». Cột các việc dùng được: Điện thoại thông minh" in text
    assert "Dòng 5: số điện thoại «12ab» không hợp lệ (đã bỏ số này, hộ vẫn được nhập)" in text


async def test_a_per_adult_cell_larger_than_the_adults_says_so(harness: Harness) -> None:
    data = ("code,group,head_name,members,adults,VNeID mức 2,Dịch vụ công\n"
            "TDP01-001,TDP01,Nguyễn Văn An,4,3,5,\n"
            "TDP01-002,TDP01,Trần Thị Bình,2,2,,3\n").encode()
    wid = await ward_id(harness)
    report = await harness.ctx.services.registry.import_table(wid, read_table(data))
    text = harness.ctx.texts.render("households/import_report", report=report, filename="")
    assert "Dòng 2: cột VNeID mức 2 ghi 5 người, nhiều hơn số người lớn của hộ (3)" in text
    assert "Dòng 3: cột Dịch vụ công tính theo hộ: ghi x (đã làm) hoặc để trống" in text


@pytest.mark.parametrize("data", [b"%PDF-1.4\n%\xe2\xe3\xcf\xd3 binary", b"hello world",
                                  b"PK\x03\x04 broken zip"])
def test_a_pdf_or_a_broken_file_named_xlsx_is_not_a_spreadsheet(data: bytes) -> None:
    with pytest.raises(TableError) as error:
        read_table(data, "danh-sach.xlsx")
    assert error.value.reason == "not_a_table"


def test_cli_lists_new_groups_and_creates_them_only_when_asked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    config = tmp_path / "c.toml"
    config.write_text(f'[database]\nurl = "sqlite+aiosqlite:///{tmp_path}/b.db"\n',
                      encoding="utf-8")
    assert main(["--config", str(config), "ward", "add", "HB", "Phường Hòa Bình"]) == 0
    assert main(["--config", str(config), "group", "add", "HB", "TDP01", "Tổ 1"]) == 0
    sheet = tmp_path / "ds.csv"
    sheet.write_text("code,group,head_name\nTDP01-001,TDP01,An\nTPD01-002,TPD01,Bình\n",
                     encoding="utf-8")
    capsys.readouterr()
    assert main(["--config", str(config), "import", "households", str(sheet), "--ward", "HB"]) == 3
    out = capsys.readouterr().out
    assert "Chưa nhập «ds.csv»: tệp có 1 tổ chưa có ở phường:" in out
    assert "• TPD01 (có phải TDP01? nếu gõ nhầm, bạn sửa tệp rồi gửi lại)" in out
    assert "chạy lại lệnh với --create-groups" in out
    assert main(["--config", str(config), "import", "households", str(sheet), "--ward", "HB",
                 "--create-groups"]) == 0
    out = capsys.readouterr().out
    assert "Thêm mới: 2" in out and "Tổ mới đã tạo: TPD01" in out
    pdf = tmp_path / "ds.xlsx"
    pdf.write_bytes(b"%PDF-1.4 not a sheet")
    assert main(["--config", str(config), "import", "households", str(pdf), "--ward", "HB"]) == 1
    assert capsys.readouterr().err.strip() == (
        f"cds-bot: {pdf}: tệp này không phải bảng tính (hoặc đã hỏng). Bạn gửi tệp Excel "
        "(.xlsx) hoặc .csv nhé."
    )
