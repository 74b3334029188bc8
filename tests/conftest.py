"""Shared fixtures: real databases (SQLite file, PostgreSQL), a frozen clock, a harness
that runs the real router and handlers against a recording platform.

Speed: migrations run once per session into a template (a SQLite file, a PostgreSQL
database), and each test gets a copy (`sqlite_url`, `db`, `db_url`, `pg_url`); only
`empty_db_url` starts from nothing, for the tests of the migrations themselves.
Isolation: a test that opens a network connection anywhere but this machine fails.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import os
import secrets
import shutil
import socket
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import sqlalchemy as sa
from sqlalchemy import make_url

from bot.clock import FrozenClock, VirtualSleeper
from bot.config import Config
from bot.context import AppContext, Content, build_context, load_content
from bot.core import Incoming
from bot.db import Database
from bot.roles import Role
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


# --- no network but this machine ------------------------------------------------------------
LOCAL_NAMES = {"localhost", "localhost.localdomain", ""}


def _is_local(host: object) -> bool:
    if host is None or (isinstance(host, str) and host.lower() in LOCAL_NAMES):
        return True
    text = host.decode() if isinstance(host, bytes) else str(host)
    try:
        return ipaddress.ip_address(text.split("%")[0]).is_loopback
    except ValueError:
        return False


@pytest.fixture(scope="session")
def _network_attempts() -> Iterator[list[str]]:
    """Refuse, and remember, every connection or name lookup beyond this machine (a real
    Bot API, Zalo, a DNS server); unix sockets and 127.0.0.1/::1/localhost pass."""
    attempts: list[str] = []
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex
    real_getaddrinfo = socket.getaddrinfo

    def check(address: Any) -> None:
        if isinstance(address, tuple) and not _is_local(address[0]):
            attempts.append(repr(address[:2]))
            raise ConnectionRefusedError(f"tests may not reach {address[0]!r}")

    def connect(self: socket.socket, address: Any) -> None:
        check(address)
        real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        check(address)
        return real_connect_ex(self, address)

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        check((host, None))
        return real_getaddrinfo(host, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(socket.socket, "connect", connect)
        patch.setattr(socket.socket, "connect_ex", connect_ex)
        patch.setattr(socket, "getaddrinfo", getaddrinfo)
        yield attempts


@pytest.fixture(autouse=True)
def _no_network(_network_attempts: list[str]) -> Iterator[None]:
    """Fail the test even when the code under test swallowed the refused connection."""
    before = len(_network_attempts)
    yield
    reached = _network_attempts[before:]
    if reached:
        pytest.fail(f"the test tried to reach the network: {', '.join(reached)}")


# --- databases: migrated once, copied per test ----------------------------------------------
def _run_aside(work: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run a coroutine on its own loop in its own thread: session fixtures are set up while
    a test's loop is current, and must leave it alone."""
    with ThreadPoolExecutor(1) as pool:
        pool.submit(lambda: asyncio.run(work())).result()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated to head once per session."""
    path = tmp_path_factory.mktemp("template") / "bot.db"

    async def migrate() -> None:
        db = Database(f"sqlite+aiosqlite:///{path}")
        await db.upgrade()
        async with db.engine.connect() as conn:  # everything into the main file
            await conn.execute(sa.text("PRAGMA wal_checkpoint(TRUNCATE)"))
        await db.dispose()

    _run_aside(migrate)
    return path


@pytest.fixture
def sqlite_url(tmp_path: Path, sqlite_template: Path) -> str:
    """A migrated SQLite database of this test's own, at `<tmp_path>/bot.db`."""
    target = tmp_path / "bot.db"
    shutil.copyfile(sqlite_template, target)
    return f"sqlite+aiosqlite:///{target}"


def _pg_unreachable(exc: Exception) -> None:
    if IN_CI:
        pytest.fail(f"PostgreSQL must be reachable in CI at {POSTGRES_URL}: {exc}")
    pytest.skip(f"no PostgreSQL server reachable at {POSTGRES_URL} ({exc})")


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str | Exception]:
    """A PostgreSQL database migrated once per session, for `CREATE DATABASE … TEMPLATE`;
    the error instead when there is no server (the tests that need one then skip)."""
    base = make_url(POSTGRES_URL)
    name = f"cds_template_{secrets.token_hex(6)}"

    async def create() -> None:
        admin = await _pg_connect(base.database or "test")
        try:
            await admin.execute(f'CREATE DATABASE "{name}"')
        finally:
            await admin.close()
        db = Database(base.set(database=name).render_as_string(hide_password=False))
        try:
            await db.upgrade()
        finally:
            await db.dispose()

    async def drop() -> None:
        admin = await _pg_connect(base.database or "test")
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()

    try:
        _run_aside(create)
    except (OSError, asyncpg.PostgresError) as exc:
        yield exc
        return
    try:
        yield name
    finally:
        _run_aside(drop)


async def _fresh_postgres_url(template: str | Exception | None) -> AsyncIterator[str]:
    """A database of its own per test on the PostgreSQL server (a copy of the migrated
    template, or empty without one), dropped afterwards."""
    if isinstance(template, Exception):
        _pg_unreachable(template)
    base = make_url(POSTGRES_URL)
    try:
        admin = await _pg_connect(base.database or "test")
    except (OSError, asyncpg.PostgresError) as exc:
        _pg_unreachable(exc)
    name = f"cds_test_{secrets.token_hex(6)}"
    copy = f' TEMPLATE "{template}"' if template else ""
    try:
        await admin.execute(f'CREATE DATABASE "{name}"{copy}')
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def db_url(
    request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path,
    pg_template: str | Exception,
) -> AsyncIterator[str]:
    """A migrated database of this test's own, on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        shutil.copyfile(sqlite_template, tmp_path / "bot.db")
        yield f"sqlite+aiosqlite:///{tmp_path}/bot.db"
        return
    async for url in _fresh_postgres_url(pg_template):
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def empty_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A database with no tables at all, for the tests of the migrations."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path}/empty.db"
        return
    async for url in _fresh_postgres_url(None):
        yield url


@pytest.fixture
async def pg_url(pg_template: str | Exception) -> AsyncIterator[str]:
    """A migrated PostgreSQL database of this test's own."""
    async for url in _fresh_postgres_url(pg_template):
        yield url


@functools.cache
def shared_content() -> Content:
    """The guides, intents, contest banks and glossary, read and indexed once per test run
    (read-only; indexing the guides is the costliest part of building a context). For code
    that is no fixture: `BotApp(config, content=shared_content())`."""
    return load_content("vi")


@pytest.fixture(scope="session")
def content() -> Content:
    return shared_content()


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(datetime(2026, 11, 24, 3, 0, tzinfo=UTC))


@pytest.fixture
async def db(sqlite_url: str) -> AsyncIterator[Database]:
    database = Database(sqlite_url)
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
        await self.deliver_urgent()
        return self.platform

    async def deliver_urgent(self) -> None:
        """Send what the handlers queued for other people (not bulk), as the running
        bot's outbox would a moment later."""
        while await self.ctx.services.outbox.run_once(urgent=True):
            pass

    async def say(self, text: str, **kw: object) -> str:
        """Send a message and return everything the bot answered, as plain text."""
        before = len(self.platform.said)
        await self.router.dispatch(self.platform, message(text, **kw))  # type: ignore[arg-type]
        await self.deliver_urgent()
        return "\n".join(s.text for s in self.platform.said[before:])

    async def deliver(self) -> int:
        """Send the outbox rows due now (the harness runs no outbox workers)."""
        outbox, claimed = self.ctx.services.outbox, 0
        while found := await outbox.run_once():
            claimed += found
        return claimed

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
async def harness(db: Database, clock: FrozenClock, content: Content) -> Harness:
    ctx = build_context(make_config(db.url, telegram=[999]), db, clock,
                        sleeper=VirtualSleeper(), content=content)  # pacing without real waits
    router = Router(ctx)
    register_all(router)
    h = Harness(ctx, router, RecordingPlatform(), clock)
    router.attach(h.platform)
    await h.seed()
    return h
