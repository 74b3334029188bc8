"""Updates per second through the real router, handlers and a SQLite file, no network."""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.clock import FrozenClock  # noqa: E402
from bot.config import Config  # noqa: E402
from bot.context import build_context  # noqa: E402
from bot.db import Database  # noqa: E402
from bot.router import Router  # noqa: E402
from handlers import register_all  # noqa: E402
from tests.recording import RecordingPlatform, message  # noqa: E402


async def run(n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{tmp}/bench.db"
        db = Database(url)
        await db.upgrade()
        config = Config.model_validate({"database": {"url": url}})
        ctx = build_context(config, db, FrozenClock(datetime(2026, 11, 24, tzinfo=UTC)))
        router = Router(ctx)
        register_all(router)
        platform = RecordingPlatform()
        for label, text in (("/trogiup", "/trogiup"), ("free-text question", "vneid la gi")):
            started = time.perf_counter()
            for i in range(n):
                await router.dispatch(platform, message(text, user=str(1000 + i % 200)))
            elapsed = time.perf_counter() - started
            print(f"{label}: {n / elapsed:.0f} updates/s ({elapsed / n * 1e3:.2f} ms each), "
                  f"200 distinct users, SQLite")
        await db.dispose()


if __name__ == "__main__":
    asyncio.run(run(int(sys.argv[1]) if len(sys.argv) > 1 else 1000))
