"""Files made from progress figures: the XLSX export and the bar chart sent to phones.

Every word on them comes from the labels (`progress.xlsx.*`, `progress.chart.*`), so the
pictures speak the same Vietnamese as the chat. `Reports.progress_workbook` is the one
builder of the progress workbook: `/xuat`, the one-time download link, the dashboard and
`cds-bot export` all get the same file from it.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any

from bot.clock import Clock
from bot.config import OnboardingStepConfig
from bot.services.places import Places
from bot.services.progress import GroupProgress, Progress, StepCount, WardProgress
from bot.services.registry import Registry

Label = Callable[..., str]
CHART_MAX_GROUPS = 40
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@dataclass(frozen=True)
class Workbook:
    filename: str
    data: bytes
    households: int
    content_type: str = XLSX_TYPE


class Reports:
    def __init__(
        self, places: Places, progress: Progress, registry: Registry, clock: Clock,
        timezone: tzinfo,
    ) -> None:
        self._places = places
        self._progress = progress
        self._registry = registry
        self._clock = clock
        self._tz = timezone

    async def progress_workbook(
        self, ward_id: int, label: Label, group_ids: Collection[int] | None = None
    ) -> Workbook:
        """The ward's progress workbook, `tien-do-<ward>-<day>.xlsx`; with `group_ids`,
        only those groups (what a leader may see)."""
        ward = await self._places.ward(ward_id)
        progress = await self._progress.ward(ward_id, group_ids)
        rows = await self._registry.household_rows(ward_id)
        if group_ids is not None:
            codes = {g.code for g in progress.groups}
            rows = [r for r in rows if r["group"] in codes]
        data = progress_xlsx(progress, rows, label, self._tz)
        day = self._clock.now().astimezone(self._tz).strftime("%Y-%m-%d")
        code = ward.code if ward else "phuong"
        return Workbook(f"tien-do-{code}-{day}.xlsx", data, len(rows))


def progress_xlsx(
    progress: WardProgress,
    households: Sequence[dict[str, object]],
    label: Label,
    timezone: tzinfo,
) -> bytes:
    """Sheet 1: groups × steps with counts and percents; then one ranked sheet per step;
    then every household with each step's state, who logged it and when."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font

    # Write-only: rows stream straight into the file (a ward's 10,000+ households would
    # otherwise be built as cell objects first, several times slower).
    book = Workbook(write_only=True)
    bold = Font(bold=True)

    def sheet_with(title: str, header: Sequence[object]) -> Any:
        sheet = book.create_sheet(title[:31])
        sheet.freeze_panes = "A2"
        cells = []
        for value in header:
            cell = WriteOnlyCell(sheet, value=value)
            cell.font = bold
            cells.append(cell)
        sheet.append(cells)
        return sheet

    def percent(sheet: Any, value: float) -> Any:
        cell = WriteOnlyCell(sheet, value=value)
        cell.number_format = "0%"
        return cell

    def dated(sheet: Any, value: datetime) -> Any:
        cell = WriteOnlyCell(sheet, value=value)
        cell.number_format = "dd/mm/yyyy hh:mm"  # as a ward writes dates
        return cell

    header: list[Any] = [label("progress.xlsx.group"), label("progress.xlsx.households")]
    for step in progress.steps:
        header += [step.title, label("progress.xlsx.total"), "%"]
    summary = sheet_with(label("progress.xlsx.summary_sheet"), header)
    for group in progress.groups:
        line: list[Any] = [group.code, group.households]
        for step in progress.steps:
            count = group.steps[step.key]
            line += [count.done, count.total, percent(summary, count.percent / 100)]
        summary.append(line)
    total_line: list[Any] = [label("progress.xlsx.ward_total"),
                             sum(g.households for g in progress.groups)]
    for step in progress.steps:
        count = progress.step_total(step.key)
        total_line += [count.done, count.total, percent(summary, count.percent / 100)]
    summary.append(total_line)

    for step in progress.steps:
        sheet = sheet_with(_sheet_title(step), [
            label("progress.xlsx.rank"), label("progress.xlsx.group"),
            label("progress.xlsx.done"), label("progress.xlsx.total"), "%"])
        for rank, (group, count) in enumerate(progress.ranked(step.key), start=1):
            sheet.append([rank, group.code, count.done, count.total,
                          percent(sheet, count.percent / 100)])

    columns, rows = _household_table(progress, households, label, timezone)
    sheet = sheet_with(label("progress.xlsx.households_sheet"), columns)
    for cells in rows:
        sheet.append([dated(sheet, c) if isinstance(c, datetime) else c for c in cells])
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def progress_csv(
    progress: WardProgress,
    households: Sequence[dict[str, object]],
    label: Label,
    timezone: tzinfo,
) -> bytes:
    """The households sheet as CSV: the same Vietnamese headers and local times as the
    XLSX, UTF-8 with BOM so Excel keeps the diacritics."""
    import csv

    buffer = io.StringIO()
    writer = csv.writer(buffer)
    columns, rows = _household_table(progress, households, label, timezone)
    writer.writerow(columns)
    for cells in rows:
        writer.writerow([c.strftime("%d/%m/%Y %H:%M") if isinstance(c, datetime)
                         else "" if c is None else c for c in cells])
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


def _household_table(
    progress: WardProgress, households: Sequence[dict[str, object]], label: Label,
    timezone: tzinfo,
) -> tuple[list[Any], list[list[Any]]]:
    columns: list[Any] = [label(f"progress.xlsx.{k}") for k in
                          ("code", "group", "head_name", "address", "members", "adults")]
    for step in progress.steps:
        columns += [step.title, label("progress.xlsx.logged_by"), label("progress.xlsx.logged_at")]
    yes_no = (label("progress.xlsx.yes"), label("progress.xlsx.no"))
    rows: list[list[Any]] = []
    for row in households:
        cells: list[Any] = [row["code"], row["group"], row["head_name"], row["address"],
                            row["members"], row["adults"]]
        for step in progress.steps:
            at = row[f"{step.key}_at"]
            cells += [
                _state(row[f"{step.key}"], row[f"{step.key}_total"], step, yes_no),
                row[f"{step.key}_by"],
                at.astimezone(timezone).replace(tzinfo=None) if isinstance(at, datetime) else None,
            ]
        rows.append(cells)
    return columns, rows


def _sheet_title(step: OnboardingStepConfig) -> str:
    """Excel allows 31 characters and no []:*?/\\ in a sheet name: the step's short name
    (as on the buttons) fits where its full title would be cut mid-word."""
    return "".join(ch for ch in step.label if ch not in "[]:*?/\\")[:31].strip()


def _state(units: object, total: object, step: OnboardingStepConfig,
           yes_no: tuple[str, str]) -> str:
    done, whole = int(str(units)), int(str(total))
    if step.per == "adult":
        return f"{done}/{whole}"
    return yes_no[0] if done >= whole else yes_no[1]


def bar_chart_png(
    pairs: Sequence[tuple[GroupProgress, StepCount]], title: str, label: Label,
    target: float | None = None,
) -> bytes:
    """Horizontal bars, best group on top, percent written at each bar's end: read at a
    glance on a phone, in Vietnamese (DejaVu Sans, bundled with matplotlib, has the
    diacritics)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    shown = list(pairs)[:CHART_MAX_GROUPS]
    height = max(3.0, 0.42 * len(shown) + 1.6)
    figure = Figure(figsize=(7.2, height), dpi=150)
    axes = figure.subplots()
    names = [g.code for g, _ in shown][::-1]
    values = [100 * c.ratio for _, c in shown][::-1]
    colors = ["#2e7d32" if v >= (100 * target if target else 80) else "#f9a825" if v >= 50
              else "#c62828" for v in values]
    bars = axes.barh(names, values, color=colors)
    for bar, (_, count) in zip(bars, shown[::-1], strict=True):
        axes.text(
            min(bar.get_width() + 1, 101), bar.get_y() + bar.get_height() / 2,
            f"{count.percent}% ({count.done}/{count.total})", va="center", fontsize=9,
        )
    if target:
        axes.axvline(100 * target, color="#1565c0", linestyle="--", linewidth=1)
    axes.set_xlim(0, 125)
    axes.set_xlabel(label("progress.chart.percent"))
    axes.set_title(title, fontsize=12, fontweight="bold")
    axes.spines[["top", "right"]].set_visible(False)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
