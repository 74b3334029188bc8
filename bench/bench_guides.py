"""Guides in the group chats at ward scale, on a SQLite file.

One ward with 300 groups, each with a Telegram group chat, 36 guides already posted to every
group (10,800 posts, delivered) and 30,000 reads spread over them, then:

1. `Guides.stats(ward)` — what `/hoidap thongke` and the dashboard run;
2. `Guides.record_read` — one deep-link start (lookup + insert);
3. one guide shared to all 300 groups: `Notices.create(compose=…)` with each chat's own
   link, plus `record_posts` — what "📤 Gửi ngay" costs before the outbox sends;
4. `Series.due()` with 200 active series: a quiet minute (nothing due) and the minute
   all of them come due (with `mark_sent` for each), i.e. the series job's own cost per tick.

Run from the project root: `.venv/bin/python bench/bench_guides.py [--groups 300 --reads
30000 --series 200 --runs 20]`.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.clock import FrozenClock  # noqa: E402
from bot.config import Config  # noqa: E402
from bot.context import build_context  # noqa: E402
from bot.core import Chat, Role, Sender  # noqa: E402
from bot.db import Database  # noqa: E402
from bot.models import Delivery, GuidePost, GuideRead, Member  # noqa: E402
from bot.services.guides import PostTarget, link_payload  # noqa: E402
from bot.services.notices import delivery_key  # noqa: E402

START = datetime(2026, 11, 24, 4, 0, tzinfo=UTC)  # Tuesday 11:00 in Hà Nội


async def timed(runs: int, work: Callable[[], Awaitable[Any]]) -> list[float]:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        await work()
        times.append((time.perf_counter() - started) * 1000)
    return times


def line(name: str, times: list[float]) -> None:
    q = statistics.quantiles(times, n=20) if len(times) >= 2 else times * 19
    print(f"{name}: median {statistics.median(times):.1f} ms, p95 {q[-1]:.1f} ms "
          f"({len(times)} runs)")


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{tmp}/bench.db"
        db = Database(url)
        await db.upgrade()
        clock = FrozenClock(START)
        ctx = build_context(Config.model_validate({"database": {"url": url}}), db, clock)
        services = ctx.services
        await services.places.add_ward("HB", "Phường Hòa Bình")
        await services.access.grant(platform="telegram", user_id="1", role=Role.COORDINATOR,
                                    ward_code="HB")
        boss = await services.access.identify("telegram", Sender("1", "Cán bộ Hoa"))
        groups = []
        for n in range(args.groups):
            group = await services.places.add_group("HB", f"TDP{n + 1:03d}", f"Tổ {n + 1}")
            groups.append(group.id)
            await services.chats.bind(boss, "telegram", Chat(str(-10_000 - n), "group"),
                                      group.code)
        keys = list(services.explanations.library.topics)
        print(f"ward: {args.groups} groups, {len(keys)} guides")
        started = time.perf_counter()
        async with db.session() as session:
            deliveries, posts = [], []
            for i, key in enumerate(keys):
                for n, group_id in enumerate(groups):
                    dedupe = f"notice:{i + 1}:telegram:{-10_000 - n}"
                    deliveries.append({
                        "kind": "notice", "ref_id": i + 1, "dedupe": dedupe, "ward_id": 1,
                        "group_id": group_id, "platform": "telegram",
                        "chat_id": str(-10_000 - n), "is_group": True, "text": key,
                        "buttons": [], "attachment": {}, "pin": False, "priority": 5,
                        "state": "sent", "attempts": 0, "parts_sent": 1, "not_before": START,
                        "claimed_by": "", "message_id": "1", "error": "", "created_at": START})
                    posts.append({
                        "ward_id": 1, "topic_key": key, "group_id": group_id,
                        "platform": "telegram", "chat_id": str(-10_000 - n), "source": "share",
                        "source_id": i + 1, "dedupe": dedupe, "created_at": START})
            await session.exec(sa.insert(Delivery), params=deliveries)  # type: ignore[call-overload]
            await session.exec(sa.insert(GuidePost), params=posts)  # type: ignore[call-overload]
            readers = args.reads // 3
            await session.exec(sa.insert(Member), params=[  # type: ignore[call-overload]
                {"platform": "telegram", "platform_user_id": str(100_000 + r),
                 "display_name": f"Cư dân {r}", "username": "", "locale": "",
                 "created_at": START, "last_seen_at": START} for r in range(readers)])
            rng = random.Random(7)
            seen: set[tuple[str, int, int]] = set()
            rows = []
            while len(rows) < args.reads:
                key, member = rng.choice(keys[:12]), rng.randrange(readers) + 2
                group_id = groups[(member * 7) % len(groups)]
                if (key, member, group_id) in seen:
                    continue
                seen.add((key, member, group_id))
                rows.append({"ward_id": 1, "group_id": group_id, "topic_key": key,
                             "member_id": member, "via": "link", "at": START})
            await session.exec(sa.insert(GuideRead), params=rows)  # type: ignore[call-overload]
        print(f"seeded {len(posts):,} posts and {len(rows):,} reads in "
              f"{time.perf_counter() - started:.1f} s")

        stats = await services.guides.stats(1)
        line(f"stats(ward): {len(stats)} guides x {args.groups} groups",
             await timed(args.runs, lambda: services.guides.stats(1)))

        reader = await services.access.identify("telegram", Sender("555555", "Bà Tư"))
        picks = iter(range(10_000))

        async def one_read() -> None:
            n = next(picks)
            await services.guides.record_read(reader, keys[n % len(keys)],
                                              groups[n % len(groups)], "link")
        line("record_read (deep-link start)", await timed(args.runs * 10, one_read))

        topic = services.explanations.topic("vneid_what")
        assert topic is not None

        def compose(target: Any) -> tuple[str, tuple[()]]:
            return f"{topic.title} {link_payload(topic.key, target.group_id)}", ()

        async def share() -> None:
            created = await services.notices.create(
                boss, 1, raw_text=topic.title, rendered="", group_ids=groups,
                compose=compose, wake=False)
            await services.guides.record_posts(1, topic.key, "share", created.notice_id, [
                PostTarget(t.group_id, t.platform, t.chat_id,
                           delivery_key(created.notice_id, t.platform, t.chat_id))
                for t in created.targets])
        line(f"share one guide to {args.groups} group chats (queued)",
             await timed(max(args.runs // 4, 2), share))

        for n in range(args.series):
            await services.series.create(
                boss, 1, title=f"Chuyên đề {n}", topic_keys=keys[:3],
                group_ids=groups[n % 10: n % 10 + 30], days=["tue", "fri"], at_time="19:00",
                starts_on=START.date(), ends_on=None)
        line(f"Series.due(), {args.series} series, nothing due",
             await timed(args.runs, services.series.due))
        clock.set(START + timedelta(hours=8))  # Tuesday 19:00: every series is due
        started = time.perf_counter()
        runs = await services.series.due()
        for run in runs:
            await services.series.mark_sent(run)
        print(f"Series.due() + mark_sent, all {len(runs)} due: "
              f"{(time.perf_counter() - started) * 1000:.0f} ms")
        await db.dispose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--groups", type=int, default=300)
    parser.add_argument("--reads", type=int, default=30_000)
    parser.add_argument("--series", type=int, default=200)
    parser.add_argument("--runs", type=int, default=20)
    asyncio.run(main(parser.parse_args()))
