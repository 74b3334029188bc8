"""Files made from progress figures: the XLSX export and the bar chart sent to phones.

Every word on them comes from the labels (`progress.xlsx.*`, `progress.chart.*`), so the
pictures speak the same Vietnamese as the chat.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from datetime import datetime, tzinfo
from typing import Any

from bot.config import OnboardingStepConfig
from bot.services.progress import GroupProgress, StepCount, WardProgress

Label = Callable[..., str]
CHART_MAX_GROUPS = 40


def progress_xlsx(
    progress: WardProgress,
    households: Sequence[dict[str, object]],
    label: Label,
    timezone: tzinfo,
) -> bytes:
    """Sheet 1: groups × steps with counts and percents; then one ranked sheet per step;
    then every household with each step's state, who logged it and when."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    book = Workbook()
    bold = Font(bold=True)
    summary = book.active
    summary.title = label("progress.xlsx.summary_sheet")[:31]
    header: list[Any] = [label("progress.xlsx.group"), label("progress.xlsx.households")]
    for step in progress.steps:
        header += [step.title, label("progress.xlsx.total"), "%"]
    summary.append(header)
    for group in progress.groups:
        line: list[Any] = [group.code, group.households]
        for step in progress.steps:
            count = group.steps[step.key]
            line += [count.done, count.total, count.percent / 100]
        summary.append(line)
    total_line: list[Any] = [label("progress.xlsx.ward_total"),
                             sum(g.households for g in progress.groups)]
    for step in progress.steps:
        count = progress.step_total(step.key)
        total_line += [count.done, count.total, count.percent / 100]
    summary.append(total_line)
    _percent_columns(summary, start=5, every=3)

    for step in progress.steps:
        sheet = book.create_sheet(_sheet_title(step))
        sheet.append([label("progress.xlsx.rank"), label("progress.xlsx.group"),
                      label("progress.xlsx.done"), label("progress.xlsx.total"), "%"])
        for rank, (group, count) in enumerate(progress.ranked(step.key), start=1):
            sheet.append([rank, group.code, count.done, count.total, count.percent / 100])
        _percent_columns(sheet, start=5, every=0)

    sheet = book.create_sheet(label("progress.xlsx.households_sheet")[:31])
    columns, rows = _household_table(progress, households, label, timezone)
    sheet.append(columns)
    for cells in rows:
        sheet.append(cells)
    for column in sheet.iter_cols(min_row=2):
        for cell in column:
            if isinstance(cell.value, datetime):
                cell.number_format = "dd/mm/yyyy hh:mm"  # as a ward writes dates
    for ws in book.worksheets:
        for cell in ws[1]:
            cell.font = bold
        ws.freeze_panes = "A2"
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
    rows: list[list[Any]] = []
    for row in households:
        cells: list[Any] = [row["code"], row["group"], row["head_name"], row["address"],
                            row["members"], row["adults"]]
        for step in progress.steps:
            at = row[f"{step.key}_at"]
            cells += [
                _state(row[f"{step.key}"], row[f"{step.key}_total"], step, label),
                row[f"{step.key}_by"],
                at.astimezone(timezone).replace(tzinfo=None) if isinstance(at, datetime) else None,
            ]
        rows.append(cells)
    return columns, rows


def _sheet_title(step: OnboardingStepConfig) -> str:
    """Excel allows 31 characters and no []:*?/\\ in a sheet name: the step's short name
    (as on the buttons) fits where its full title would be cut mid-word."""
    return "".join(ch for ch in step.label if ch not in "[]:*?/\\")[:31].strip()


def _state(units: object, total: object, step: OnboardingStepConfig, label: Label) -> str:
    done, whole = int(str(units)), int(str(total))
    if step.per == "adult":
        return f"{done}/{whole}"
    return label("progress.xlsx.yes") if done >= whole else label("progress.xlsx.no")


def _percent_columns(sheet: Any, *, start: int, every: int) -> None:
    column = start
    while column <= sheet.max_column:
        for (cell,) in sheet.iter_rows(min_row=2, min_col=column, max_col=column):
            cell.number_format = "0%"
        if not every:
            break
        column += every


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
