"""Quiet hours (default 21:00-07:00, local time): nothing goes to group chats inside them."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta, tzinfo


class QuietHours:
    def __init__(self, window: tuple[time, time] | None, timezone: tzinfo) -> None:
        self._window = window
        self._tz = timezone

    def ends_after(self, now: datetime) -> datetime | None:
        """If `now` is inside quiet hours, the moment they end (aware UTC); else None."""
        if self._window is None:
            return None
        start, end = self._window
        local = now.astimezone(self._tz)
        clock = local.time()
        # A window over midnight (21:00-07:00) is "after start or before end".
        inside = start <= clock < end if start <= end else clock >= start or clock < end
        if not inside:
            return None
        day = local.date()
        if start > end and clock >= start:
            day += timedelta(days=1)
        return datetime.combine(day, end, tzinfo=self._tz).astimezone(UTC)

    def next_allowed(self, when: datetime) -> datetime:
        return self.ends_after(when) or when
