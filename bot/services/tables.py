"""Reading a spreadsheet the ward sends: CSV in whatever encoding Excel wrote, or XLSX.

Ward lists come from many hands: UTF-8 with or without BOM, UTF-16 "Unicode text",
Windows-1258 (Vietnamese Windows) or Windows-1252 exports, comma, semicolon or tab
separated. Everything becomes header cells plus rows with their line numbers, so every
complaint can name the line a person sees in Excel.
"""

from __future__ import annotations

import csv
import io
import unicodedata
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

MAX_FILE_BYTES = 20 * 1024 * 1024
MAX_ROWS = 200_000
_XLSX_MAGIC = b"PK\x03\x04"
_XLS_MAGIC = b"\xd0\xcf\x11\xe0"
_PDF_MAGIC = b"%PDF"
# Hand-made lists put a title (and a blank line or two) above the header row.
HEADER_SEARCH_ROWS = 10


class TableError(Exception):
    """The whole file cannot be read; `reason` names a message label."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class TableRow:
    line: int
    cells: tuple[str, ...]


@dataclass(frozen=True)
class Table:
    header_line: int
    header: tuple[str, ...]
    rows: tuple[TableRow, ...]
    encoding: str


def read_table(data: bytes, filename: str = "") -> Table:
    if not data.strip():
        raise TableError("empty")
    if len(data) > MAX_FILE_BYTES:
        raise TableError("too_big", str(MAX_FILE_BYTES // (1024 * 1024)))
    if data.startswith(_XLS_MAGIC) or filename.lower().endswith(".xls"):
        raise TableError("old_excel")
    if data.startswith(_XLSX_MAGIC):
        return _read_xlsx(data)
    if data.startswith(_PDF_MAGIC) or filename.lower().endswith((".xlsx", ".xlsm", ".pdf")) \
            or _looks_binary(data):
        # A PDF, a picture or a broken file renamed .xlsx: reading it as CSV would only
        # complain about a "column" made of garbage.
        raise TableError("not_a_table")
    text, encoding = _decode(data)
    return _read_csv(text, encoding)


def _looks_binary(data: bytes) -> bool:
    head = data[:4096]
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return False  # UTF-16 text
    controls = sum(1 for b in head if b < 9 or 13 < b < 32)
    return controls > len(head) // 100


def _decode(data: bytes) -> tuple[str, str]:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16"), "utf-16"
    try:
        return data.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError:
        pass
    for encoding in ("cp1258", "cp1252"):
        try:
            # cp1258 writes tones as combining marks; NFC makes "Nguyễn" one word again.
            return unicodedata.normalize("NFC", data.decode(encoding)), encoding
        except UnicodeDecodeError:
            continue
    raise TableError("encoding")


def _read_csv(text: str, encoding: str) -> Table:
    if "\x00" in text:
        raise TableError("not_a_table")
    lines = [line for line in text.splitlines() if line.strip()][:HEADER_SEARCH_ROWS]
    # Counted over the first lines, not the first one: that may be a title with no commas.
    delimiter = max(",;\t", key=lambda d: sum(line.count(d) for line in lines))
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        return _collect(((reader.line_num, cells) for cells in reader), encoding)
    except csv.Error as exc:
        raise TableError("not_a_table", str(exc)) from exc


def _collect(lines: Iterable[tuple[int, Sequence[object]]], encoding: str) -> Table:
    """The first non-empty line is the header; then the rows, empty lines skipped."""
    header: tuple[str, ...] | None = None
    header_line = 0
    rows: list[TableRow] = []
    for line, values in lines:
        clean = tuple(_cell(v) for v in values)
        if not any(clean):
            continue
        if header is None:
            header, header_line = clean, line
            continue
        rows.append(TableRow(line, clean))
        if len(rows) > MAX_ROWS:
            raise TableError("too_many_rows", str(MAX_ROWS))
    if header is None:
        raise TableError("empty")
    return Table(header_line, header, tuple(rows), encoding)


def _read_xlsx(data: bytes) -> Table:
    from openpyxl import load_workbook  # imported here: only imports need it

    try:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        raise TableError("not_a_table", str(exc)) from exc
    try:
        table = _collect(enumerate(book.worksheets[0].iter_rows(values_only=True), start=1),
                         "xlsx")
    finally:
        book.close()
    return Table(table.header_line, _trim(table.header),
                 tuple(TableRow(r.line, _trim(r.cells)) for r in table.rows), "xlsx")


def _trim(cells: tuple[str, ...]) -> tuple[str, ...]:
    """Excel pads rows with empty cells: drop them from the end."""
    while cells and not cells[-1]:
        cells = cells[:-1]
    return cells


def header_at(table: Table, index: int) -> Table:
    """The same table read with its `index`-th row (0: the first) as the header row."""
    if index == 0:
        return table
    row = table.rows[index - 1]
    return Table(row.line, row.cells, table.rows[index:], table.encoding)


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()
