"""Only one instance runs the scheduled jobs when several share PostgreSQL."""

from __future__ import annotations

import pytest

from bot.db import Database
from bot.jobs.leader import Leadership
from bot.jobs.scheduler import Job, Scheduler


@pytest.mark.postgres
async def test_one_leader_at_a_time_and_a_successor(pg_url: str) -> None:
    first_db, second_db = Database(pg_url), Database(pg_url)
    first, second = Leadership(first_db), Leadership(second_db)
    try:
        assert await first.is_leader()
        assert not await second.is_leader()
        assert await first.is_leader()  # keeps it
        await first.release()  # the instance stops (or its connection drops)
        assert await second.is_leader()
    finally:
        await first.release()
        await second.release()
        await first_db.dispose()
        await second_db.dispose()


async def test_sqlite_is_always_its_own_leader(tmp_path: object) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path}/bot.db")
    try:
        assert await Leadership(db).is_leader()
    finally:
        await db.dispose()


async def test_a_follower_skips_the_jobs() -> None:
    from zoneinfo import ZoneInfo

    ran: list[str] = []

    async def job() -> None:
        ran.append("ran")

    async def follower() -> bool:
        return False

    scheduler = Scheduler(ZoneInfo("Asia/Ho_Chi_Minh"), leader=follower)
    scheduler.add(Job("tick", job, every_seconds=60))
    await scheduler._guarded(Job("tick", job, every_seconds=60))
    assert ran == []
