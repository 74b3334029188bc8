"""Relay at ward scale, and what remembering Zalo message ids costs.

1. relay: a ward of 300 residential groups, 100 bound on Telegram, 200 reached only through
   their leaders (200 leaders on Telegram). One notice to the whole ward through
   `Notices.create` on a real `BotApp` (Telegram on the fake Bot API server, temporary SQLite
   file, `[outbox] per_second = 500`): timed until every direct row is sent and every leader
   has both relay messages (the text to forward, then the question with its button); then
   `Relays.reach` for the ward and `Relays.summary` for the notice, 50 runs each.
2. seen ids: `DbSeenIds.seen_before` (one INSERT … ON CONFLICT DO NOTHING per update) for
   10,000 fresh ids and 10,000 repeats on SQLite, and one `prune()` down to 5,000 rows.

Run from the project root: `.venv/bin/python bench/bench_relay.py [--groups 300 --relay 200]`.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.app import BotApp  # noqa: E402
from bot.clock import FrozenClock  # noqa: E402
from bot.config import Config  # noqa: E402
from bot.core import Chat, Role, Sender  # noqa: E402
from bot.db import Database  # noqa: E402
from bot.services.platform_state import DbSeenIds  # noqa: E402
from tests.fake_telegram import FakeTelegram  # noqa: E402

TOKEN = "123456:BENCH-TOKEN"
BOSS = 901
START = datetime(2026, 11, 24, 4, 0, tzinfo=UTC)


async def relay(groups: int, relayed: int, tmp: Path) -> None:
    async with FakeTelegram(token=TOKEN) as tg:
        config = Config.model_validate({
            "database": {"url": f"sqlite+aiosqlite:///{tmp}/relay.db"},
            "telegram": {"token": TOKEN, "api_base_url": tg.base_url},
            "outbox": {"per_second": 500, "group_per_minute": 600},
            "web": {"port": 0},
        })
        app = BotApp(config, clock=FrozenClock(START))
        await app.db.upgrade()
        s = app.context.services
        ward = await s.places.add_ward("HB", "Phường Hòa Bình")
        await s.access.grant(platform="telegram", user_id=str(BOSS), role=Role.COORDINATOR,
                             ward_code="HB")
        boss = await s.access.identify("telegram", Sender(str(BOSS), "Cán bộ Hoa"))
        ids = []
        for n in range(1, groups + 1):
            code = f"TDP{n:03d}"
            ids.append((await s.places.add_group("HB", code, f"Tổ {n}")).id)
            if n <= groups - relayed:
                await s.chats.bind(boss, "telegram", Chat(str(-100000 - n), "group", code), code)
            else:
                await s.access.grant(platform="telegram", user_id=str(20000 + n),
                                     role=Role.LEADER, ward_code="HB", group_code=code)
        await app.start()
        try:
            started = time.perf_counter()
            created = await s.notices.create(boss, ward.id, raw_text="Họp tổ tối thứ Bảy",
                                             rendered="📢 THÔNG BÁO\n\nHọp tổ tối thứ Bảy",
                                             group_ids=ids)
            queued = time.perf_counter() - started
            leaders = [20000 + n for n in range(groups - relayed + 1, groups + 1)]
            while True:
                direct = sum(1 for c in range(1, groups - relayed + 1)
                             if tg.sent_to(-100000 - c))
                asked = sum(1 for u in leaders if len(tg.sent_to(u)) >= 2)
                if direct == groups - relayed and asked == relayed:
                    break
                await asyncio.sleep(0.01)
            done = time.perf_counter() - started
            print(f"relay: notice to {groups} groups ({groups - relayed} direct, {relayed} "
                  f"relayed): queued in {queued * 1000:.0f} ms, all delivered and asked in "
                  f"{done:.2f} s ({len(created.relayed)} relay tasks)")
            for name, call in (
                ("reach(ward)", lambda: s.relays.reach(ward.id)),
                ("summary(notice)", lambda: s.relays.summary("notice", created.notice_id, ids)),
            ):
                times = []
                for _ in range(50):
                    t0 = time.perf_counter()
                    await call()
                    times.append(time.perf_counter() - t0)
                print(f"relay: {name} over {groups} groups: median "
                      f"{statistics.median(times) * 1000:.1f} ms, max {max(times) * 1000:.1f} ms")
        finally:
            await app.stop()


async def seen(tmp: Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp}/seen.db")
    await db.upgrade()
    clock = FrozenClock(START)
    store = DbSeenIds(db, clock, "zalo", max_rows=5000)
    try:
        for label, offset in (("fresh", 0), ("repeat", 0)):
            t0 = time.perf_counter()
            for i in range(10_000):
                await store.seen_before(f"msg-{offset + i}")
            elapsed = time.perf_counter() - t0
            print(f"seen ids: 10,000 {label} ids in {elapsed:.2f} s "
                  f"({elapsed / 10_000 * 1e6:.0f} µs each)")
            clock.advance(timedelta(seconds=1))
        t0 = time.perf_counter()
        removed = await store.prune()
        print(f"seen ids: prune to 5,000 rows removed {removed} in "
              f"{(time.perf_counter() - t0) * 1000:.0f} ms")
    finally:
        await db.dispose()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--groups", type=int, default=300)
    parser.add_argument("--relay", type=int, default=200)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    with tempfile.TemporaryDirectory() as tmp:
        await relay(args.groups, args.relay, Path(tmp))
        await seen(Path(tmp))


if __name__ == "__main__":
    asyncio.run(main())
