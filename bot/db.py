"""Async engine, sessions and migrations for SQLite (default) and PostgreSQL."""

from __future__ import annotations

import asyncio
import functools
import os
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

# Other processes (the running bot, a second instance) cache who people are; a transaction
# that changed it (a grant or revocation, a place, a member's link to a person or language)
# tells them when it commits, whatever process made it (the CLI, the dashboard): NOTIFY on
# this channel on PostgreSQL, one byte appended to a file beside the database on SQLite.
IDENTITY_CHANNEL = "cds_identity"
_IDENTITY_TABLES = frozenset({"role_grant", "ward", "residential_group"})


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
        # SQLite file: the file other processes append to when they change identities.
        path = sa.make_url(url).database if self.is_sqlite else None
        self.identity_file: Path | None = (
            Path(f"{path}.identity") if path and path != ":memory:" else None
        )
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

    def identity_stamp(self) -> tuple[int, int, int] | None:
        """Changes whenever any process commits a change of identity to this SQLite file
        (a `stat`, no SQL); None on PostgreSQL (NOTIFY instead) and in-memory databases."""
        if self.identity_file is None:
            return None
        try:
            st = os.stat(self.identity_file)
        except FileNotFoundError:
            return (0, 0, 0)
        return (st.st_ino, st.st_size, st.st_mtime_ns)

    def _announce_identity(self) -> None:
        if self.identity_file is not None:
            # Appending (never rewriting) makes the size grow with each change, so two
            # changes within one tick of the file system's clock still differ.
            with open(self.identity_file, "ab") as f:
                f.write(b".")

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
        all heads costs one query and never imports alembic (its import and its template
        engine are ~0.1 s and ~10 MB of a bot that only needed to check: a fast start)."""
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


def insert_or_skip(dialect_name: str, table: Any) -> Any:
    """`INSERT` with `ON CONFLICT` for this database's dialect; the dialect's module is
    imported on first use, so a bot on SQLite never loads PostgreSQL's (~2 MB idle)."""
    if dialect_name == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql.insert(table)
    from sqlalchemy.dialects import sqlite

    return sqlite.insert(table)


def changes_identity(tables: set[str], objects: list[object]) -> bool:
    """Whether a write changes who someone is (their grants, the places they are named in,
    the person their account belongs to, their language). A member's "last seen" or name
    does not: that is written all day."""
    if tables & _IDENTITY_TABLES:
        return True
    if "member" not in tables:
        return False
    if not objects:  # a bulk statement on members: cannot tell, so yes
        return True
    for o in objects:
        if getattr(o, "__tablename__", None) != "member":
            continue
        state = sa.inspect(o)
        if state.pending:  # a new account: nobody has it cached
            continue
        if state.deleted or state.was_deleted or any(
            state.attrs[name].history.has_changes() for name in ("person_id", "locale")
        ):
            return True
    return False


def _has_writes(session: AsyncSession) -> bool:
    return bool(session.info.get("wrote") or session.new or session.dirty or session.deleted)


def _note_writes(session: Any, tables: set[str], objects: list[object]) -> None:
    session.info["wrote"] = True
    if changes_identity(tables, objects):
        session.info["announce_identity"] = True
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


@sa.event.listens_for(_Session, "before_commit")
def _before_commit(session: _Session) -> None:
    db = session.info.get("db")
    if session.info.get("announce_identity") and isinstance(db, Database) and not db.is_sqlite:
        # Delivered to every listener when (and only if) this transaction commits.
        session.connection().execute(sa.select(sa.func.pg_notify(IDENTITY_CHANNEL, "")))


@sa.event.listens_for(_Session, "after_commit")
def _after_commit(session: _Session) -> None:
    db = session.info.get("db")
    if session.info.pop("announce_identity", False) and isinstance(db, Database):
        db._announce_identity()  # after the commit: a reader that sees it sees the rows


@sa.event.listens_for(_Session, "after_rollback")
def _after_rollback(session: _Session) -> None:
    session.info.pop("announce_identity", None)


def alembic_config() -> AlembicConfig:
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return cfg


@functools.cache
def head_revisions() -> frozenset[str]:
    """The revision ids of every head, read from the migration files' `revision` and
    `down_revision` once per process (alembic's ScriptDirectory gives the same, tested)."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in sorted((MIGRATIONS_DIR / "versions").glob("*.py")):
        found = _revision_of(path)
        if found is None:
            continue
        revision, down = found
        revisions.add(revision)
        parents.update(down)
    return frozenset(revisions - parents)


def _revision_of(path: Path) -> tuple[str, tuple[str, ...]] | None:
    import ast

    values: dict[str, Any] = {}
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        target: ast.expr | None = None
        value: ast.expr | None = None
        if isinstance(node, ast.AnnAssign):
            target, value = node.target, node.value
        elif isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
        if isinstance(target, ast.Name) and value is not None and target.id in (
            "revision", "down_revision"
        ):
            values[target.id] = ast.literal_eval(value)
    revision = values.get("revision")
    if not isinstance(revision, str):
        return None
    down = values.get("down_revision")
    if down is None:
        return revision, ()
    return revision, (down,) if isinstance(down, str) else tuple(down)


def _current_heads(connection: sa.Connection) -> frozenset[str]:
    """The revisions this database is at (alembic's own table), without importing alembic."""
    if not sa.inspect(connection).has_table("alembic_version"):
        return frozenset()
    rows = connection.execute(sa.text("SELECT version_num FROM alembic_version"))
    return frozenset(str(r[0]) for r in rows)


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
