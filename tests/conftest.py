"""Shared fixtures: real databases (SQLite file, PostgreSQL), a frozen clock, a harness
that runs the real router and handlers against a recording platform."""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy import make_url

from bot.clock import FrozenClock, VirtualSleeper
from bot.config import Config
from bot.context import AppContext, build_context
from bot.core import Incoming, Role
from bot.db import Database
from bot.router import Router
from handlers import register_all
from tests.recording import RecordingPlatform, message

POSTGRES_URL = os.environ.get(
    "CDS_TEST_POSTGRES_URL", "postgresql+asyncpg://127.0.0.1:5432/test"
)
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


async def _pg_connect(database: str) -> asyncpg.Connection:
    url = make_url(POSTGRES_URL)
    return await asyncpg.connect(
        host=url.host or "127.0.0.1", port=url.port or 5432, user=url.username,
        password=url.password, database=database, timeout=5,
    )


async def _fresh_postgres_url() -> AsyncIterator[str]:
    """A brand-new database per test on the PostgreSQL server, dropped afterwards."""
    base = make_url(POSTGRES_URL)
    try:
        admin = await _pg_connect(base.database or "test")
    except (OSError, asyncpg.PostgresError) as exc:
        if IN_CI:
            pytest.fail(f"PostgreSQL must be reachable in CI at {POSTGRES_URL}: {exc}")
        pytest.skip(f"no PostgreSQL server reachable at {POSTGRES_URL} ({exc})")
    name = f"cds_test_{secrets.token_hex(6)}"
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path}/bot.db"
        return
    async for url in _fresh_postgres_url():
        yield url


@pytest.fixture
async def pg_url() -> AsyncIterator[str]:
    async for url in _fresh_postgres_url():
        yield url


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(datetime(2026, 11, 24, 3, 0, tzinfo=UTC))


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite+aiosqlite:///{tmp_path}/bot.db")
    await database.upgrade()
    yield database
    await database.dispose()


def make_config(url: str, **admins: list[int]) -> Config:
    return Config.model_validate(
        {"database": {"url": url}, "admins": {"telegram": admins.get("telegram", [])}}
    )


@dataclass
class Harness:
    """The real router and handlers over a real database, talking to a recording platform."""

    ctx: AppContext
    router: Router
    platform: RecordingPlatform
    clock: FrozenClock

    async def send(self, incoming: Incoming) -> RecordingPlatform:
        await self.router.dispatch(self.platform, incoming)
        await self.deliver()
        return self.platform

    async def deliver(self) -> None:
        """Send what the handlers queued for other people (not bulk), as the running
        bot's outbox would a moment later."""
        while await self.ctx.services.outbox.run_once(urgent=True):
            pass

    async def say(self, text: str, **kw: object) -> str:
        """Send a message and return everything the bot answered, as plain text."""
        before = len(self.platform.said)
        await self.router.dispatch(self.platform, message(text, **kw))  # type: ignore[arg-type]
        await self.deliver()
        return "\n".join(s.text for s in self.platform.said[before:])

    async def seed(self) -> None:
        places = self.ctx.services.places
        await places.add_ward("P1", "Phường Hòa Bình")
        await places.add_group("P1", "TDP01", "Tổ dân phố 1")
        await places.add_group("P1", "TDP02", "Tổ dân phố 2")
        await places.add_ward("P2", "Phường Bên Cạnh")
        await places.add_group("P2", "TDP01", "Tổ 1 phường bên")

    async def grant(self, user: str, role: Role, group: str | None = None, ward: str = "P1") -> None:
        await self.ctx.services.access.grant(
            platform="telegram", user_id=user, role=role, ward_code=ward, group_code=group
        )


@pytest.fixture
async def harness(db: Database, clock: FrozenClock) -> Harness:
    ctx = build_context(make_config(db.url, telegram=[999]), db, clock,
                        sleeper=VirtualSleeper())  # pacing without real waits
    router = Router(ctx)
    register_all(router)
    h = Harness(ctx, router, RecordingPlatform(), clock)
    router.attach(h.platform)
    await h.seed()
    return h
