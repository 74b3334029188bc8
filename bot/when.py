"""Times as people type them: "19:30", "19h", "7h30 25/11", "25/11/2026 19:30"."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta, tzinfo

_TIME = re.compile(r"^(\d{1,2})(?:[:h](\d{2})?)?$")
_DATE = re.compile(r"^(\d{1,2})/(\d{1,2})(?:/(\d{2,4}))?$")


def parse_time_of_day(text: str) -> time | None:
    match = _TIME.match(text.strip().lower())
    if not match:
        return None
    hour, minute = int(match.group(1)), int(match.group(2) or 0)
    if hour > 23 or minute > 59:
        return None
    return time(hour, minute)


def parse_date(text: str, today: date, *, roll_forward: bool = True) -> date | None:
    match = _DATE.match(text.strip())
    if not match:
        return None
    day, month = int(match.group(1)), int(match.group(2))
    year = int(match.group(3)) if match.group(3) else today.year
    if year < 100:
        year += 2000
    try:
        found = date(year, month, day)
    except ValueError:
        return None
    if roll_forward and not match.group(3) and found < today:
        found = found.replace(year=year + 1)  # "5/1" typed in December means next January
    return found


def parse_when(text: str, now: datetime, tz: tzinfo) -> datetime | None:
    """A moment in local time, as aware UTC. A bare time means its next occurrence: "7:00"
    typed at 21:00 is tomorrow morning, not "already past". None if unreadable."""
    words = text.lower().replace(",", " ").replace("lúc", " ").replace("luc", " ").split()
    local_today = now.astimezone(tz).date()
    moment: time | None = None
    day: date | None = None
    for word in words:
        if moment is None and (found_time := parse_time_of_day(word)) is not None:
            moment = found_time
        elif day is None and (found_day := parse_date(word, local_today)) is not None:
            day = found_day
        else:
            return None
    if moment is None:
        return None
    found = datetime.combine(day or local_today, moment, tzinfo=tz)
    if day is None and found <= now:
        found = datetime.combine(local_today + timedelta(days=1), moment, tzinfo=tz)
    return found.astimezone(UTC)


def parse_period(text: str, today: date) -> tuple[date, date] | None:
    """"1/12 - 31/12", "15/12 - 15/1", "1/12/2026-31/12/2026", or just the last day
    (starting today). A start without a year is this year; an end before it, next year's."""
    parts = [p.strip() for p in text.replace("đến", "-").replace("den", "-").split("-")
             if p.strip()]
    if len(parts) == 1:
        end = parse_date(parts[0], today)
        return (today, end) if end and end >= today else None
    if len(parts) != 2:
        return None
    start = parse_date(parts[0], today, roll_forward=False)
    end = parse_date(parts[1], start or today, roll_forward=True)
    if start is None or end is None or end < start or end < today:
        return None
    return start, end
