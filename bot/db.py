"""Async engine, sessions and migrations for SQLite (default) and PostgreSQL."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.orm import ORMExecuteState, UOWTransaction
from sqlmodel import Session as SQLModelSession
from sqlmodel.ext.asyncio.session import AsyncSession

if TYPE_CHECKING:  # alembic (and its template engine) only when migrating: a fast CLI
    from alembic.config import Config as AlembicConfig

MIGRATIONS_DIR = Path(__file__).parent / "migrations"

# Told which tables a flush or a bulk statement wrote, with the ORM objects involved (empty
# for bulk statements): caches drop what went stale (identity on grants, memos).
WriteListener = Callable[[set[str], list[object]], None]


class _Session(SQLModelSession):
    """Our sessions' class, so write tracking listens to our sessions only."""


@dataclass
class _Unit:
    """One update's session: every `Database.session()` of the task that opened it joins it."""

    db: Database
    session: AsyncSession
    task: asyncio.Task[Any] | None
    depth: int = 0


_UNIT: ContextVar[_Unit | None] = ContextVar("cds_unit_of_work", default=None)


class Database:
    """Owns the engine; hands out sessions that commit on success and roll back on error."""

    def __init__(self, url: str, *, echo: bool = False, pool_size: int = 24) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        # Errors name the SQL but never its values (names, addresses, phones) in logs.
        kwargs: dict[str, Any] = {"echo": echo, "hide_parameters": True}
        if self.is_sqlite:
            _ensure_sqlite_dir(url)
            kwargs["connect_args"] = {"timeout": 30}
            # One connection per update being handled (bot.concurrent_updates, default 16).
            kwargs.update(pool_size=pool_size, max_overflow=16)
        else:
            # No ping on every checkout (a round trip per transaction): connections are
            # recycled before servers or firewalls drop idle ones, and a dead one fails one
            # update, which is answered with an apology (docs/performance.md).
            # The pool keeps a connection for each update handled at a time
            # (bot.concurrent_updates, 16), the outbox workers and the jobs: a smaller pool
            # opens and closes "overflow" connections all the time (~30 ms each, bench/).
            kwargs.update(pool_size=pool_size, max_overflow=10, pool_pre_ping=False,
                          pool_recycle=1800)
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        if self.is_sqlite:
            sa.event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        self._sessions = async_sessionmaker(
            self.engine, class_=AsyncSession, sync_session_class=_Session,
            expire_on_commit=False, info={"db": self},
        )
        self._write_listeners: list[WriteListener] = []
        self.statements = 0  # SQL statements and transactions since start (/metrics, bench)
        self.transactions = 0
        sa.event.listen(self.engine.sync_engine, "before_cursor_execute", self._count_statement)
        sa.event.listen(self.engine.sync_engine, "begin", self._count_transaction)

    def _count_statement(self, *_: Any) -> None:
        self.statements += 1

    def _count_transaction(self, *_: Any) -> None:
        self.transactions += 1

    def on_write(self, listener: WriteListener) -> None:
        """Call `listener` whenever a session of this database writes (caches, memos)."""
        self._write_listeners.append(listener)

    def _written(self, tables: set[str], objects: list[object]) -> None:
        for listener in self._write_listeners:
            listener(tables, objects)

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session that commits on success and rolls back on error.

        Inside `unit_of_work()` (one per update, opened by the router) it is the update's
        own session instead: reads share one transaction, and a block that wrote commits
        when it ends, exactly as its own session would have (docs/performance.md)."""
        unit = _UNIT.get()
        if unit is not None and unit.db is self and unit.task is asyncio.current_task():
            async with self._joined(unit) as session:
                yield session
            return
        async with self._sessions() as session:
            try:
                yield session
                await session.commit()
            except BaseException:
                await session.rollback()
                raise

    @asynccontextmanager
    async def unit_of_work(self) -> AsyncIterator[AsyncSession]:
        """One session for everything this task does until the block ends (one update)."""
        outer = _UNIT.get()
        if outer is not None and outer.db is self and outer.task is asyncio.current_task():
            async with self.session() as session:  # already inside one: join it
                yield session
            return
        async with self._sessions() as session:
            token = _UNIT.set(_Unit(self, session, asyncio.current_task()))
            try:
                yield session
                if _has_writes(session):
                    await session.commit()
            except BaseException:
                await session.rollback()
                raise
            finally:
                _UNIT.reset(token)

    @asynccontextmanager
    async def _joined(self, unit: _Unit) -> AsyncIterator[AsyncSession]:
        session = unit.session
        unit.depth += 1
        try:
            yield session
        except BaseException:
            unit.depth -= 1
            if unit.depth == 0:
                # Undo this block's writes, as its own session would have; earlier blocks'
                # writes were committed when they ended.
                await session.rollback()
                session.info.pop("wrote", None)
            raise
        unit.depth -= 1
        if unit.depth == 0 and _has_writes(session):
            # Written: commit now (as before) so no lock is held while the reply is sent,
            # and forget loaded rows so later reads see the writes, bulk ones included.
            await session.commit()
            session.info.pop("wrote", None)
            session.expunge_all()

    async def upgrade(self) -> None:
        """Apply Alembic migrations up to every head on this database (migrations are
        branched: features add theirs side by side on one parent). A database already at
        all heads costs one query; alembic itself is imported only here, so a CLI that
        never migrates (`cds-bot --help`) does not load it."""
        async with self.engine.connect() as conn:
            current = await conn.run_sync(_current_heads)
        if current == head_revisions():
            return
        async with self.engine.begin() as conn:
            await conn.run_sync(_upgrade_sync)

    async def ping(self) -> bool:
        try:
            async with self.engine.connect() as conn:
                await conn.execute(sa.text("SELECT 1"))
        except Exception:  # noqa: BLE001 - any failure means "not reachable"
            return False
        return True

    async def dispose(self) -> None:
        await self.engine.dispose()


def memo(session: AsyncSession, table: str) -> dict[Any, Any]:
    """Rows already read in this session (one update inside a unit of work), by key;
    emptied whenever `table` is written. For plain data read twice in one update."""
    memos: dict[str, dict[Any, Any]] = session.info.setdefault("memos", {})
    return memos.setdefault(table, {})


def _has_writes(session: AsyncSession) -> bool:
    return bool(session.info.get("wrote") or session.new or session.dirty or session.deleted)


def _note_writes(session: Any, tables: set[str], objects: list[object]) -> None:
    session.info["wrote"] = True
    memos = session.info.get("memos")
    if memos:
        for table in tables:
            memos.pop(table, None)
    db = session.info.get("db")
    if isinstance(db, Database):
        db._written(tables, objects)


@sa.event.listens_for(_Session, "after_flush")
def _after_flush(session: _Session, _flush: UOWTransaction) -> None:
    objects = [*session.new, *session.dirty, *session.deleted]
    if objects:
        tables = {t.name for o in objects for t in sa.inspect(o).mapper.tables}
        _note_writes(session, tables, objects)


@sa.event.listens_for(_Session, "do_orm_execute")
def _bulk_write(state: ORMExecuteState) -> None:
    if state.is_insert or state.is_update or state.is_delete:
        table = getattr(state.statement, "table", None)
        name = getattr(table, "name", "")
        _note_writes(state.session, {name} if name else set(), [])


def alembic_config() -> AlembicConfig:
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return cfg


@functools.cache
def head_revisions() -> frozenset[str]:
    """The revision ids of every head (read from the files once per process)."""
    from alembic.script import ScriptDirectory

    return frozenset(ScriptDirectory.from_config(alembic_config()).get_heads())


def _current_heads(connection: sa.Connection) -> frozenset[str]:
    from alembic.runtime.migration import MigrationContext

    return frozenset(MigrationContext.configure(connection).get_current_heads())


def _upgrade_sync(connection: sa.Connection) -> None:
    from alembic import command

    cfg = alembic_config()
    cfg.attributes["connection"] = connection
    # "heads": features developed side by side may each add a migration on the same parent;
    # they touch different tables, so every branch is applied (Alembic orders them itself).
    command.upgrade(cfg, "heads")


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _ensure_sqlite_dir(url: str) -> None:
    path = sa.make_url(url).database
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
