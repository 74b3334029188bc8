"""Who someone is, cached for a few seconds (#16), never outlives a revocation: one made by
another process (the operator's `cds-bot revoke`, the dashboard, a second instance) takes
the role away at the person's next message — at once when it is announced (a file beside
the SQLite database, NOTIFY on PostgreSQL), and within `bot.identity_cache_seconds` when
it is not (a change written by hand in the database)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from bot.clock import FrozenClock
from bot.context import AppContext, build_context
from bot.core import Role, Sender
from bot.db import Database
from bot.router import Router
from bot.services.staff import Staff
from handlers import register_all
from tests.conftest import make_config, shared_content
from tests.recording import RecordingPlatform, message

COORDINATOR = "901"


@dataclass
class Running:
    """The running bot, and a second process's view of the same database (the CLI)."""

    ctx: AppContext
    router: Router
    platform: RecordingPlatform
    clock: FrozenClock
    other: Database

    async def say(self, text: str) -> str:
        before = len(self.platform.said)
        await self.router.dispatch(self.platform, message(text, user=COORDINATOR))
        return "\n".join(s.text for s in self.platform.said[before:])

    async def role(self) -> Role:
        who = await self.ctx.services.access.identify("telegram", Sender(COORDINATOR, "Nguyễn Văn An"))
        return who.role

    async def cli_revoke(self) -> None:
        revoked = await Staff(self.other, self.clock).revoke_by_user(
            platform="telegram", user_id=COORDINATOR, role=Role.COORDINATOR, ward_code="HB")
        assert len(revoked) == 1


@asynccontextmanager
async def running(url: str, clock: FrozenClock) -> AsyncIterator[Running]:
    """The bot on `url` with a coordinator, and a second connection pool (the CLI's); both
    closed on leaving."""
    db = Database(url)
    await db.upgrade()
    ctx = build_context(make_config(url), db, clock, content=shared_content())
    router = Router(ctx)
    register_all(router)
    platform = RecordingPlatform()
    router.attach(platform)
    await ctx.services.places.add_ward("HB", "Phường Hòa Bình")
    await ctx.services.access.grant(platform="telegram", user_id=COORDINATOR,
                                    role=Role.COORDINATOR, ward_code="HB")
    bot = Running(ctx, router, platform, clock, Database(url))
    try:
        yield bot
    finally:
        await bot.other.dispose()
        await db.dispose()


@pytest.fixture
async def on_sqlite(tmp_path: Path, clock: FrozenClock) -> AsyncIterator[Running]:
    async with running(f"sqlite+aiosqlite:///{tmp_path}/bot.db", clock) as bot:
        yield bot


async def test_a_revocation_by_the_cli_applies_at_the_next_message_on_sqlite(
    on_sqlite: Running,
) -> None:
    bot = on_sqlite
    assert "Cán bộ phường HB" in await bot.say("/canbo")
    statements = bot.ctx.db.statements
    assert await bot.role() == Role.COORDINATOR
    assert bot.ctx.db.statements == statements  # cached: not read again
    await bot.cli_revoke()  # another Database, as `cds-bot revoke` in another process
    assert "dành cho người đã tham gia tổ" in await bot.say("/canbo")  # no clock moved


async def test_a_change_nobody_announced_applies_within_the_cache_seconds(
    on_sqlite: Running,
) -> None:
    bot = on_sqlite
    assert await bot.role() == Role.COORDINATOR
    async with bot.other.engine.begin() as conn:  # by hand, past every service
        await conn.execute(sa.text("UPDATE role_grant SET revoked_at = CURRENT_TIMESTAMP"))
    bot.clock.advance(timedelta(seconds=4))
    assert await bot.role() == Role.COORDINATOR  # cached: the default is 5 seconds
    bot.clock.advance(timedelta(seconds=1))
    assert await bot.role() == Role.GUEST
    assert "dành cho người đã tham gia tổ" in await bot.say("/canbo")


async def test_a_revocation_in_this_process_applies_at_once(on_sqlite: Running) -> None:
    bot = on_sqlite
    assert await bot.role() == Role.COORDINATOR
    await Staff(bot.ctx.db, bot.clock).revoke_by_user(
        platform="telegram", user_id=COORDINATOR, role=Role.COORDINATOR, ward_code="HB")
    assert await bot.role() == Role.GUEST


async def test_cache_seconds_zero_reads_every_time(tmp_path: Path, clock: FrozenClock) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/bot.db"
    config = make_config(url).model_copy(deep=True)
    async with running(url, clock) as bot:
        ctx = build_context(
            config.model_copy(update={"bot": config.bot.model_copy(
                update={"identity_cache_seconds": 0.0})}), bot.ctx.db, clock,
            content=shared_content())
        access = ctx.services.access
        await access.identify("telegram", Sender(COORDINATOR, "Nguyễn Văn An"))
        before = bot.ctx.db.statements
        await access.identify("telegram", Sender(COORDINATOR, "Nguyễn Văn An"))
        assert bot.ctx.db.statements > before


@pytest.mark.postgres
async def test_a_revocation_by_the_cli_is_heard_at_once_on_postgres(
    pg_url: str, clock: FrozenClock,
) -> None:
    async with running(pg_url, clock) as bot:
        access = bot.ctx.services.access
        try:
            await access.start()
            await asyncio.wait_for(access._listener.listening.wait(), timeout=10)
            assert await bot.role() == Role.COORDINATOR
            before = bot.ctx.db.statements
            assert await bot.role() == Role.COORDINATOR
            assert bot.ctx.db.statements == before  # cached: no statement at all
            generation = access._generation
            await bot.cli_revoke()
            for _ in range(500):  # the NOTIFY travels over the listening connection
                if access._generation != generation:
                    break
                await asyncio.sleep(0.01)
            assert await bot.role() == Role.GUEST  # the clock did not move
        finally:
            await access.stop()


@pytest.mark.postgres
async def test_nothing_is_cached_on_postgres_while_not_listening(
    pg_url: str, clock: FrozenClock,
) -> None:
    async with running(pg_url, clock) as bot:
        assert await bot.role() == Role.COORDINATOR
        await bot.cli_revoke()
        assert await bot.role() == Role.GUEST
