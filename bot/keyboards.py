"""One pager for every list shown as buttons, within what each platform accepts.

Telegram refuses an inline keyboard of more than 100 buttons, or more than 8 in a row, and
`callback_data` over 64 bytes (PLATFORMS.md); Zalo has no buttons at all, and the router turns
buttons into a numbered list there. `page_rows` cuts a list into pages that fit both:

- Telegram: at most `per_page` items (default 40) and never more than the 100-button budget
  left after the fixed rows above and below the list and the navigation row
  ("◀ · trang 2/8 · ▶"); at most 8 buttons a row.
- platforms without buttons: short pages (`NUMBERED_PAGE` items), so the numbered list stays
  a few lines long, with "◀ Trang trước" / "Trang sau ▶" as numbered choices.

The caller gives the payload of "go to page n" (`nav`), keeps the page in its own state (a
form, or the payload itself) and redraws with the new page when it is pressed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from bot.core import Button
from bot.payloads import Payload

MAX_BUTTONS = 100  # in all, navigation included
MAX_ROW = 8
MAX_DATA = 64  # bytes of callback_data (enforced when a payload is packed)
PER_PAGE = 40  # items per page on Telegram: a screen or two on a phone
NUMBERED_PAGE = 10  # items per page where buttons become numbered lines (Zalo)

Label = Callable[..., str]
Item = Button | Sequence[Button]  # one button, or a whole row that belongs to one item


@dataclass(frozen=True)
class Paged:
    rows: list[list[Button]]
    page: int  # 1-based, after clamping
    pages: int
    start: int  # index of the first item shown (for "11. …" numbering in a text)
    shown: int
    total: int


def page_count(total: int, size: int) -> int:
    return max(1, -(-total // max(size, 1)))


def page_rows(
    items: Sequence[Item], page: int, *, nav: Callable[[int], str | Payload], label: Label,
    buttons: bool, columns: int = 1, head: Sequence[Sequence[Button]] = (),
    tail: Sequence[Sequence[Button]] = (), per_page: int = PER_PAGE,
) -> Paged:
    """`head` rows, one page of `items` (`columns` a row), the navigation row when there
    is more than one page, then `tail` rows; within every limit of the platform."""
    columns = max(1, min(columns, MAX_ROW))
    width = max((1 if isinstance(i, Button) else len(i) for i in items), default=1)
    fixed = sum(len(r) for r in (*head, *tail))
    if buttons:
        budget = MAX_BUTTONS - fixed - 3
        size = max(1, min(per_page, budget // width))
    else:
        size = max(1, min(per_page, NUMBERED_PAGE // width or 1))
    pages = page_count(len(items), size)
    page = max(1, min(page, pages))
    start = (page - 1) * size
    chunk = items[start: start + size]
    rows: list[list[Button]] = [list(r) for r in head]
    singles: list[Button] = []
    for item in chunk:
        if isinstance(item, Button):
            singles.append(item)
            continue
        rows += _flow(singles, columns)
        singles = []
        rows += _flow(list(item), MAX_ROW)
    rows += _flow(singles, columns)
    if pages > 1:
        rows.append(_nav_row(page, pages, nav, label, buttons))
    rows += [list(r) for r in tail]
    return Paged(rows, page, pages, start, len(chunk), len(items))


def nav_rows(
    page: int, pages: int, nav: Callable[[int], str | Payload], *, label: Label, buttons: bool
) -> list[list[Button]]:
    """Only the navigation row, for lists paged by the service (the items are in the text)."""
    return [_nav_row(page, pages, nav, label, buttons)] if pages > 1 else []


def _flow(buttons: list[Button], columns: int) -> list[list[Button]]:
    return [buttons[i: i + columns] for i in range(0, len(buttons), columns)]


def _nav_row(
    page: int, pages: int, nav: Callable[[int], str | Payload], label: Label, buttons: bool
) -> list[Button]:
    row: list[Button] = []
    if buttons:
        if page > 1:
            row.append(Button(label("keyboards.prev"), str(nav(page - 1))))
        row.append(Button(label("keyboards.here", page=page, pages=pages), str(nav(page))))
        if page < pages:
            row.append(Button(label("keyboards.next"), str(nav(page + 1))))
        return row
    if page > 1:
        row.append(Button(label("keyboards.prev_long", page=page - 1, pages=pages),
                          str(nav(page - 1))))
    if page < pages:
        row.append(Button(label("keyboards.next_long", page=page + 1, pages=pages),
                          str(nav(page + 1))))
    return row


def check_rows(rows: Sequence[Sequence[Button]]) -> list[str]:
    """What Telegram would refuse in these rows (empty when they fit); used by tests."""
    problems: list[str] = []
    if sum(len(r) for r in rows) > MAX_BUTTONS:
        problems.append(f"{sum(len(r) for r in rows)} buttons")
    for row in rows:
        if len(row) > MAX_ROW:
            problems.append(f"a row of {len(row)}")
        for b in row:
            if b.url and not b.payload:
                continue  # a link button carries no callback_data
            if not 1 <= len(b.payload.encode()) <= MAX_DATA:
                problems.append(f"payload {b.payload!r}")
    return problems


def context(paged: Paged) -> dict[str, Any]:
    """What a template needs to say "trang 2/8" and number the items it lists."""
    return {"page": paged.page, "pages": paged.pages, "start": paged.start,
            "shown": paged.shown, "total": paged.total}
