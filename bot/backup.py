"""`cds-bot db backup` and `cds-bot db restore` for SQLite databases.

The backup uses SQLite's online backup API: a consistent copy of the whole database taken in
one step while the bot keeps running (in WAL mode writers are not blocked). PostgreSQL has
its own tools (`pg_dump`, `pg_restore`); the CLI says so.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import make_url

BACKUP_PATTERN = re.compile(r"^cds-\d{8}-\d{6}\.db$")
# Tables that hold the ward's data: a database with rows in any of them is not "empty".
DATA_TABLES = ("ward", "member", "household", "feedback")


class BackupError(Exception):
    """Why a backup or restore cannot be done; `reason` names a message label."""

    def __init__(self, reason: str, **details: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.details = details


@dataclass(frozen=True)
class BackupInfo:
    path: Path
    size: int
    removed: tuple[Path, ...] = ()


def sqlite_path(url: str) -> Path:
    """The file behind a SQLite URL; PostgreSQL (or an in-memory database) is refused."""
    parsed = make_url(url)
    if not parsed.drivername.startswith("sqlite"):
        raise BackupError("postgres")
    if not parsed.database or parsed.database == ":memory:":
        raise BackupError("memory")
    return Path(parsed.database)


def default_target(db_file: Path, now: datetime) -> Path:
    return db_file.parent / "backups" / f"cds-{now:%Y%m%d-%H%M%S}.db"


def backup(url: str, target: Path | None, now: datetime, keep: int = 0) -> BackupInfo:
    """Copy the live database to `target` (default: backups/ next to it) and check the copy;
    with `keep`, only the newest `keep` backups in that folder stay."""
    source_file = sqlite_path(url)
    if not source_file.exists():
        raise BackupError("no_database", file=str(source_file))
    target = target or default_target(source_file, now)
    if target.exists():
        raise BackupError("target_exists", file=str(target))
    if not target.parent.is_dir():
        if target.parent == default_target(source_file, now).parent:
            target.parent.mkdir(parents=True)
        else:
            raise BackupError("no_folder", folder=str(target.parent))
    partial = target.with_name(target.name + ".part")
    # Not read-only: a WAL database needs its shared-memory file, which a read-only
    # connection may not create when the bot is stopped. Nothing is written to it.
    source = sqlite3.connect(source_file, timeout=30)
    try:
        copy = sqlite3.connect(partial)
        try:
            source.backup(copy)  # all pages in one step: one consistent snapshot
            copy.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
            _check(copy)
        finally:
            copy.close()
    except sqlite3.Error as exc:
        partial.unlink(missing_ok=True)
        raise BackupError("failed", error=_first_line(exc)) from None
    finally:
        source.close()
    partial.rename(target)
    removed = _prune(target.parent, keep) if keep else ()
    return BackupInfo(target, target.stat().st_size, removed)


def restore(source: Path, url: str) -> Path:
    """Copy a backup into the configured database, which must hold no data yet (a restore
    never overwrites a ward's work). Returns the database file."""
    target_file = sqlite_path(url)
    if not source.is_file():
        raise BackupError("no_backup", file=str(source))
    try:
        backup_db = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
        try:
            _check(backup_db)
            tables = {r[0] for r in backup_db.execute(
                "SELECT name FROM sqlite_master WHERE type='table'")}
        finally:
            backup_db.close()
    except sqlite3.DatabaseError:
        raise BackupError("not_a_backup", file=str(source)) from None
    if "alembic_version" not in tables:
        raise BackupError("not_a_backup", file=str(source))
    if target_file.exists() and _has_data(target_file):
        raise BackupError("not_empty", file=str(target_file))
    target_file.parent.mkdir(parents=True, exist_ok=True)
    for leftover in (target_file, *_sidecars(target_file)):
        leftover.unlink(missing_ok=True)
    origin = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    try:
        copy = sqlite3.connect(target_file)
        try:
            origin.backup(copy)
            _check(copy)
        finally:
            copy.close()
    finally:
        origin.close()
    return target_file


def _check(connection: sqlite3.Connection) -> None:
    result = connection.execute("PRAGMA integrity_check").fetchone()
    if not result or result[0] != "ok":
        raise sqlite3.DatabaseError("integrity check failed")


def _has_data(path: Path) -> bool:
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        tables = {r[0] for r in connection.execute(
            "SELECT name FROM sqlite_master WHERE type='table'")}
        for table in DATA_TABLES:
            if table in tables and connection.execute(
                    f'SELECT 1 FROM "{table}" LIMIT 1').fetchone():  # noqa: S608 - fixed names
                return True
        return False
    finally:
        connection.close()


def _sidecars(path: Path) -> list[Path]:
    return [path.with_name(path.name + suffix) for suffix in ("-wal", "-shm", "-journal")]


def _prune(folder: Path, keep: int) -> tuple[Path, ...]:
    backups = sorted(p for p in folder.iterdir() if BACKUP_PATTERN.match(p.name))
    old = backups[:-keep] if len(backups) > keep else []
    for path in old:
        path.unlink()
    return tuple(old)


def _first_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0]
