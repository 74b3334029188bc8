"""Chart geometry for the dashboard's inline SVG: where each bar, point and grid line goes.

The templates draw the shapes (so every word on a chart stays in `messages/`); this module
only turns numbers into coordinates inside a fixed view box that scales to the page width.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

GRID = (0, 25, 50, 75, 100)


def _clamp(percent: float) -> float:
    return max(0.0, min(100.0, percent))


@dataclass(frozen=True)
class Bar:
    label: str
    percent: int
    y: float
    width: float
    note: str = ""


@dataclass(frozen=True)
class GridLine:
    percent: int
    x: float


@dataclass(frozen=True)
class BarChart:
    """Horizontal bars, one row per item: label on the left, bar and percentage after it."""

    width: int
    height: int
    left: int
    plot_width: int
    row: int
    bar: int
    bars: tuple[Bar, ...]
    grid: tuple[GridLine, ...]
    target_x: float | None


def bar_chart(
    items: Sequence[tuple[str, int, str]], *, target: int | None = None,
    width: int = 440, left: int = 76, row: int = 30,
) -> BarChart:
    """Items are (label, percent, note); the target, when given, is a dashed line."""
    plot = width - left - 52
    top = 8
    bars = tuple(
        Bar(label, percent, top + i * row, round(plot * _clamp(percent) / 100, 1), note)
        for i, (label, percent, note) in enumerate(items)
    )
    height = top + max(1, len(items)) * row + 22
    grid = tuple(GridLine(p, left + plot * p / 100) for p in GRID)
    target_x = left + plot * _clamp(target) / 100 if target is not None else None
    return BarChart(width, height, left, plot, row, row - 10, bars, grid, target_x)


@dataclass(frozen=True)
class Point:
    label: str
    percent: int
    x: float
    y: float


@dataclass(frozen=True)
class LineChart:
    """A percentage over time: 0-100 on the vertical axis, one point per period."""

    width: int
    height: int
    left: int
    top: int
    bottom: float
    right: float
    points: tuple[Point, ...]
    grid: tuple[tuple[int, float], ...]

    @property
    def path(self) -> str:
        return " ".join(f"{p.x:.1f},{p.y:.1f}" for p in self.points)

    @property
    def area(self) -> str:
        """The polygon under the line, closed along the bottom axis."""
        if not self.points:
            return ""
        first, last = self.points[0], self.points[-1]
        return f"{first.x:.1f},{self.bottom:.1f} {self.path} {last.x:.1f},{self.bottom:.1f}"


def line_chart(
    items: Sequence[tuple[str, int]], *, width: int = 640, height: int = 240,
) -> LineChart:
    left, top, right, bottom = 42, 18, width - 18, height - 28
    span = bottom - top
    step = (right - left) / max(1, len(items) - 1)
    points = tuple(
        Point(label, percent, round(left + i * step, 1),
              round(bottom - span * _clamp(percent) / 100, 1))
        for i, (label, percent) in enumerate(items)
    )
    grid = tuple((p, round(bottom - span * p / 100, 1)) for p in GRID)
    return LineChart(width, height, left, top, bottom, right, points, grid)
