"""What the Zalo adapters must remember across restarts and instances: message ids already
handled, flags such as "monthly quota used up", and the OA's one-to-one windows and counts.

The adapters see these through small protocols (`bot.platforms.zalo.SeenStore`, ...) so
they stay free of SQL; this module is the database side.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import col, select

from bot.clock import Clock
from bot.db import Database, insert_or_skip
from bot.models import OAConversation, OAMessageCount, PlatformFlag, SeenMessage
from bot.zalo_state import OACounts

# Zalo retries a webhook for up to 12 hours; a replayed poll comes back within seconds.
SEEN_KEEP = timedelta(days=2)
SEEN_MAX_ROWS = 50_000
PRUNE_EVERY = 500  # inserts between two prunes


class DbSeenIds:
    """Message ids seen per platform, in the database: `seen_before` is one INSERT that
    does nothing on a repeat, so two instances agree which of them handles a message."""

    def __init__(self, db: Database, clock: Clock, platform: str, *,
                 keep: timedelta = SEEN_KEEP, max_rows: int = SEEN_MAX_ROWS) -> None:
        self._db = db
        self._clock = clock
        self._platform = platform
        self._keep = keep
        self._max_rows = max_rows
        self._since_prune = 0

    async def seen_before(self, message_id: str) -> bool:
        """Remember this id; True if it was already there. Empty ids are never repeats."""
        if not message_id:
            return False
        statement = insert_or_skip(self._db.engine.dialect.name, SeenMessage).values(
            platform=self._platform, message_id=message_id[:96], seen_at=self._clock.now()
        ).on_conflict_do_nothing(index_elements=["platform", "message_id"])
        async with self._db.session() as session:
            result = await session.exec(statement)
            fresh = bool(result.rowcount)
        self._since_prune += 1
        if self._since_prune >= PRUNE_EVERY:
            await self.prune()
        return not fresh

    async def prune(self) -> int:
        """Forget ids older than `keep`, and the oldest beyond `max_rows`."""
        self._since_prune = 0
        cutoff = self._clock.now() - self._keep
        async with self._db.session() as session:
            old = await session.exec(sa.delete(SeenMessage).where(
                col(SeenMessage.platform) == self._platform, col(SeenMessage.seen_at) < cutoff))
            removed = int(old.rowcount)
            keep_from = (await session.exec(
                select(SeenMessage.id).where(SeenMessage.platform == self._platform)
                .order_by(col(SeenMessage.id).desc()).offset(self._max_rows).limit(1)
            )).first()
            if keep_from is not None:
                extra = await session.exec(sa.delete(SeenMessage).where(
                    col(SeenMessage.platform) == self._platform,
                    col(SeenMessage.id) <= keep_from))
                removed += int(extra.rowcount)
        return removed

    async def count(self) -> int:
        async with self._db.session() as session:
            return int((await session.exec(
                select(sa.func.count()).select_from(SeenMessage)
                .where(SeenMessage.platform == self._platform))).one())


class DbFlags:
    """Named flags per platform, with a JSON value; absent means "not set"."""

    def __init__(self, db: Database, clock: Clock, platform: str) -> None:
        self._db = db
        self._clock = clock
        self._platform = platform

    async def get(self, key: str) -> dict[str, Any] | None:
        async with self._db.session() as session:
            row = await session.get(PlatformFlag, (self._platform, key))
            return dict(row.value) if row is not None else None

    async def set(self, key: str, value: dict[str, Any]) -> None:
        async with self._db.session() as session:
            row = await session.get(PlatformFlag, (self._platform, key))
            if row is None:
                row = PlatformFlag(platform=self._platform, key=key)
            row.value = dict(value)
            row.updated_at = self._clock.now()
            session.add(row)

    async def clear(self, key: str) -> bool:
        async with self._db.session() as session:
            result = await session.exec(sa.delete(PlatformFlag).where(
                col(PlatformFlag.platform) == self._platform, col(PlatformFlag.key) == key))
            return bool(result.rowcount)


FREE_REPLIES = 8
FREE_WINDOW = timedelta(hours=48)


class DbOAWindows:
    """The OA's one-to-one windows and the month's counts of replies and proactive sends."""

    def __init__(self, db: Database, clock: Clock, timezone: Any) -> None:
        self._db = db
        self._clock = clock
        self._tz = timezone

    def _month(self, when: datetime | None = None) -> str:
        return (when or self._clock.now()).astimezone(self._tz).strftime("%Y-%m")

    async def heard_from(self, user_id: str) -> None:
        """The resident wrote: a new 48-hour window of 8 free replies opens."""
        async with self._db.session() as session:
            row = await session.get(OAConversation, user_id)
            if row is None:
                row = OAConversation(user_id=user_id)
            row.last_in_at = self._clock.now()
            row.replies = 0
            session.add(row)

    async def classify(self, user_id: str) -> str:
        """"reply" if a free reply is left in the window, else "proactive"."""
        async with self._db.session() as session:
            row = await session.get(OAConversation, user_id)
        if row is None or self._clock.now() - row.last_in_at > FREE_WINDOW:
            return "proactive"
        return "reply" if row.replies < FREE_REPLIES else "proactive"

    async def count(self, user_id: str, kind: str) -> None:
        """One message sent (`reply`, `proactive`) or not sent for want of budget (`refused`)."""
        async with self._db.session() as session:
            if kind == "reply":
                row = await session.get(OAConversation, user_id)
                if row is not None:
                    row.replies += 1
                    session.add(row)
            month = self._month()
            counter = await session.get(OAMessageCount, (month, kind))
            if counter is None:
                counter = OAMessageCount(month=month, kind=kind, count=0)
            counter.count += 1
            session.add(counter)

    async def counts(self, month: str | None = None) -> OACounts:
        month = month or self._month()
        async with self._db.session() as session:
            rows = (await session.exec(
                select(OAMessageCount).where(OAMessageCount.month == month))).all()
        by_kind = {r.kind: r.count for r in rows}
        return OACounts(month, by_kind.get("reply", 0), by_kind.get("proactive", 0),
                        by_kind.get("refused", 0))
