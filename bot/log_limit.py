"""Logs that cannot flood: the same failure is written once a minute at most, with a count.

A bug that fails every update, or an update Telegram keeps sending, would otherwise write
the same traceback thousands of times an hour (issue #10: ~2 GB an hour).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

WINDOW_SECONDS = 60.0
_MAX_KEYS = 1024


class LogLimiter:
    """`exception(message, key, exc)`: logs the first of a kind per window, counts the rest."""

    def __init__(
        self, logger: logging.Logger, *, window: float = WINDOW_SECONDS,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self._log = logger
        self._window = window
        self._now = now
        self._seen: dict[str, tuple[float, int]] = {}

    def allow(self, key: str) -> tuple[bool, int]:
        """(write it now?, how many of this kind were held back since the last one written)."""
        now = self._now()
        last, held = self._seen.get(key, (float("-inf"), 0))
        if now - last >= self._window:
            if len(self._seen) >= _MAX_KEYS:
                self._seen.clear()
            self._seen[key] = (now, 0)
            return True, held
        self._seen[key] = (last, held + 1)
        return False, held + 1

    def error(self, message: str, key: str, *args: object) -> bool:
        """Log `message % args` (no traceback) unless one of `key` was written recently."""
        write, held = self.allow(key)
        if write:
            suffix = f" ({held} more like this not logged)" if held else ""
            self._log.error(message + suffix, *args)
        return write

    def exception(self, message: str, key: str, exc: BaseException) -> bool:
        """Log `message` with the traceback of `exc`, rate-limited by `key`."""
        write, held = self.allow(key)
        if write:
            suffix = f" ({held} more like this not logged)" if held else ""
            self._log.error(message + suffix, exc_info=exc)
        return write
