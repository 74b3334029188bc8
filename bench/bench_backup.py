"""`cds-bot db backup` on a district-sized SQLite database, with and without a writer.

Builds a SQLite file with one ward of N households (default 100,000, through the real
`Registry.import_table`), then measures `bot.backup.backup` (SQLite's online backup API, one
step, integrity-checked copy) idle, and again while small write transactions keep
coming (as the bot's own); then `restore` into an empty file. One line per figure.

    .venv/bin/python bench/bench_backup.py [--households 100000]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.backup import backup, restore  # noqa: E402
from bot.clock import SystemClock  # noqa: E402
from bot.config import Config  # noqa: E402
from bot.context import build_context  # noqa: E402
from bot.db import Database  # noqa: E402
from bot.services.tables import read_table  # noqa: E402

GROUPS = 400


def households_csv(start: int, count: int) -> bytes:
    lines = ["code,group,head_name,address,members,phone"]
    for n in range(start, start + count):
        group = f"TDP{n % GROUPS + 1:03d}"
        lines.append(f"{group}-{n:06d},{group},Nguyễn Văn Hộ {n},{n % 300 + 1} Đường Lê Lợi,"
                     f"{n % 6 + 1},09{n:08d}")
    return ("\n".join(lines) + "\n").encode()


async def main(households: int) -> None:
    folder = Path(tempfile.mkdtemp(prefix="cds-bench-backup-"))
    url = f"sqlite+aiosqlite:///{folder}/bot.db"
    db = Database(url)
    await db.upgrade()
    ctx = build_context(Config.model_validate({"database": {"url": url}}), db, SystemClock())
    await ctx.services.places.add_ward("HB", "Phường Hòa Bình")
    ward = await ctx.services.places.ward_by_code("HB")
    assert ward is not None
    started = time.perf_counter()
    await ctx.services.registry.import_table(
        ward.id, read_table(households_csv(0, households)), create_groups=True)
    print(f"seed {households:,} households: {time.perf_counter() - started:.1f} s")
    size = (folder / "bot.db").stat().st_size / 1_048_576

    started = time.perf_counter()
    info = await asyncio.to_thread(backup, url, folder / "idle.db", datetime.now(UTC))
    print(f"backup idle ({size:.0f} MB database): {time.perf_counter() - started:.2f} s, "
          f"copy {info.size / 1_048_576:.0f} MB")

    writes: list[float] = []
    stop = asyncio.Event()

    async def writer() -> None:
        """Small writes, as the bot makes them all day (here: one new group per transaction)."""
        n = 0
        while not stop.is_set():
            began = time.perf_counter()
            await ctx.services.places.add_group("HB", f"W{n:05d}", f"Ghi thử {n}")
            writes.append(time.perf_counter() - began)
            n += 1

    task = asyncio.create_task(writer())
    await asyncio.sleep(0.5)
    before = len(writes)
    started = time.perf_counter()
    await asyncio.to_thread(backup, url, folder / "busy.db", datetime.now(UTC))
    took = time.perf_counter() - started
    during = len(writes) - before
    stop.set()
    await task
    await db.dispose()
    slowest = max(writes[before:before + during] or [0.0])
    print(f"backup while the bot writes: {took:.2f} s; {during} write transactions committed "
          f"during the copy, slowest {slowest * 1000:.0f} ms")

    started = time.perf_counter()
    await asyncio.to_thread(restore, folder / "busy.db",
                            f"sqlite+aiosqlite:///{folder}/restored/bot.db")
    print(f"restore into an empty database: {time.perf_counter() - started:.2f} s")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--households", type=int, default=100_000)
    asyncio.run(main(parser.parse_args().households))
