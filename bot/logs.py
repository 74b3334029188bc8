"""Logging set-up: secrets never reach a log line, and expected trouble is one line.

Tokens sit inside URLs (`https://api.telegram.org/bot<TOKEN>/getMe`), and libraries (PTB,
httpx) put those URLs into their messages and tracebacks. Every handler gets a filter that
masks the configured secrets, and anything shaped like a Telegram token, in the message and
in the formatted traceback.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable

MASK = "***"
# <bot id>:<35 characters>, as @BotFather makes them.
_TELEGRAM_TOKEN = re.compile(r"(?<![0-9])\d{5,}:[A-Za-z0-9_-]{20,}")


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, MASK)
    return _TELEGRAM_TOKEN.sub(MASK, text)


class RedactSecrets(logging.Filter):
    """Masks secrets in a record before any handler formats it."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        # Short strings would mask ordinary words; real secrets are long.
        self._secrets = tuple(sorted({s for s in secrets if len(s) >= 8}, key=len,
                                     reverse=True))

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message, self._secrets)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text, self._secrets)
        return True


def setup(level: str, secrets: Iterable[str] = ()) -> None:
    """One handler on stderr (journald adds the time), secrets masked, libraries quiet."""
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr,
    )
    guard = RedactSecrets(secrets)
    for handler in logging.getLogger().handlers:
        handler.addFilter(guard)
    for noisy in ("httpx", "httpcore", "apscheduler", "alembic.runtime.migration"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


class Once:
    """At most one log line per `seconds` for a repeating problem (no network for hours)."""

    def __init__(self, seconds: float) -> None:
        self._seconds = seconds
        self._last: dict[str, float] = {}

    def due(self, key: str, now: float) -> bool:
        last = self._last.get(key)
        if last is not None and now - last < self._seconds:
            return False
        self._last[key] = now
        return True
