"""Backups: a copy taken while the bot writes restores whole; restores only go into an empty
database; old backups are pruned; PostgreSQL is pointed to pg_dump."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.backup import BACKUP_PATTERN, backup
from bot.cli.main import main
from bot.clock import FrozenClock
from bot.context import build_context
from bot.db import Database
from bot.services.tables import read_table
from tests.conftest import make_config

BATCH = 50


def batch(n: int) -> bytes:
    rows = "".join(f"TDP0{1 + i % 2}-{n:03d}{i:02d},TDP0{1 + i % 2},Hộ {n}-{i},{i} Lê Lợi,3,"
                   f"{'x' if i % 3 else ''}\n" for i in range(BATCH))
    return ("code,group,head_name,address,members,smartphone\n" + rows).encode()


def write_config(tmp_path: Path, url: str) -> Path:
    path = tmp_path / f"{abs(hash(url))}.toml"
    path.write_text(f'[database]\nurl = "{url}"\n', encoding="utf-8")
    return path


async def test_a_backup_taken_during_writes_restores_whole(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/live/bot.db"
    db = Database(url)
    await db.upgrade()
    ctx = build_context(make_config(url), db, FrozenClock(datetime(2026, 11, 24, 3, tzinfo=UTC)))
    await ctx.services.places.add_ward("HB", "Phường Hòa Bình")
    for code in ("TDP01", "TDP02"):
        await ctx.services.places.add_group("HB", code, code)
    ward = await ctx.services.places.ward_by_code("HB")
    assert ward is not None
    written = 0
    stop = asyncio.Event()
    three = asyncio.Event()

    async def keep_writing() -> None:
        nonlocal written
        n = 0
        while not stop.is_set():
            report = await ctx.services.registry.import_table(ward.id, read_table(batch(n)))
            assert report.added == BATCH
            written += 1
            n += 1
            if written == 3:
                three.set()

    writer = asyncio.create_task(keep_writing())
    try:
        await three.wait()
        copies = []
        for i in range(3):  # several copies, each in the middle of the writer's transactions
            copies.append(await asyncio.to_thread(
                backup, url, tmp_path / f"copy{i}.db", datetime(2026, 11, 24, 10, 0, i, tzinfo=UTC)))
            await asyncio.sleep(0)  # let the writer go on between copies
    finally:
        stop.set()
        await writer
        await db.dispose()
    assert written >= 3
    for i, info in enumerate(copies):
        restored_url = f"sqlite+aiosqlite:///{tmp_path}/restored{i}/bot.db"
        config = write_config(tmp_path, restored_url)
        code = await asyncio.to_thread(main, ["db", "restore", str(info.path),
                                              "--config", str(config)])
        assert code == 0
        connection = sqlite3.connect(tmp_path / f"restored{i}" / "bot.db")
        try:
            assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
            assert connection.execute("PRAGMA foreign_key_check").fetchall() == []
            households = connection.execute("SELECT count(*) FROM household").fetchone()[0]
        finally:
            connection.close()
        assert households > 0 and households % BATCH == 0  # whole transactions only
        restored = Database(restored_url)
        try:
            rctx = build_context(make_config(restored_url), restored, FrozenClock(
                datetime(2026, 11, 24, 3, tzinfo=UTC)))
            rward = await rctx.services.places.ward_by_code("HB")
            assert rward is not None
            progress = await rctx.services.progress.ward(rward.id)
            # The counters kept for speed agree with the rows they count.
            assert sum(g.households for g in progress.groups) == households
            done = sum(g.steps["smartphone"].households_done for g in progress.groups)
            assert done == households // BATCH * sum(1 for i in range(BATCH) if i % 3)
        finally:
            await restored.dispose()


def test_backup_defaults_keep_and_restore_refusals(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/data/bot.db"
    config = write_config(tmp_path, url)
    assert main(["ward", "add", "HB", "Phường Hòa Bình", "--config", str(config)]) == 0
    folder = tmp_path / "data" / "backups"
    for second in range(3):
        info = backup(url, None, datetime(2026, 11, 24, 2, 0, second, tzinfo=UTC), keep=2)
        assert info.path.parent == folder
    assert sorted(p.name for p in folder.iterdir()) == [
        "cds-20261124-020001.db", "cds-20261124-020002.db"]
    assert all(BACKUP_PATTERN.match(p.name) for p in folder.iterdir())
    capsys.readouterr()
    assert main(["db", "backup", "--keep", "14", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"Đã sao lưu cơ sở dữ liệu vào {folder}/cds-")

    backup_file = folder / "cds-20261124-020002.db"
    assert main(["db", "restore", str(backup_file), "--config", str(config)]) == 1
    assert capsys.readouterr().err.strip().startswith(
        f"cds-bot: Cơ sở dữ liệu {tmp_path}/data/bot.db đã có dữ liệu: chỉ khôi phục vào cơ sở "
        "dữ liệu trống.")
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database at all" * 100)
    empty = write_config(tmp_path, f"sqlite+aiosqlite:///{tmp_path}/empty/bot.db")
    assert main(["db", "restore", str(junk), "--config", str(empty)]) == 1
    assert capsys.readouterr().err.strip() == (
        f"cds-bot: Tệp {junk} không phải bản sao lưu của bot (hoặc đã hỏng).")
    assert main(["db", "backup", str(tmp_path / "nowhere" / "x.db"), "--config",
                 str(config)]) == 1
    assert "Thư mục «" in capsys.readouterr().err
    assert main(["db", "restore", str(backup_file), "--config", str(empty)]) == 0
    assert "Đã khôi phục" in capsys.readouterr().out
    assert main(["ward", "list", "--config", str(empty)]) == 0
    assert "HB" in capsys.readouterr().out


def test_postgres_backups_point_to_pg_dump(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    config = write_config(tmp_path, "postgresql+asyncpg://cds:secret@127.0.0.1/cds")
    assert main(["db", "backup", "--config", str(config)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("cds-bot: Cơ sở dữ liệu là PostgreSQL: sao lưu bằng pg_dump")
    assert "secret" not in err
