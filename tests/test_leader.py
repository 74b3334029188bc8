"""Only one instance runs the scheduled jobs when several share PostgreSQL."""

from __future__ import annotations

import asyncio

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


@pytest.mark.postgres
async def test_the_successor_leads_once_the_leader_dies(pg_url: str) -> None:
    """The leader's process dies (its connection is cut): the next look by the other
    instance — every 5 s — finds the lock free; the dead one, asked again, says no
    instead of recursing."""
    import asyncpg
    from sqlalchemy import make_url

    first_db, second_db = Database(pg_url), Database(pg_url)
    first, second = Leadership(first_db), Leadership(second_db)
    url = make_url(pg_url)
    admin = await asyncpg.connect(host=url.host, port=url.port, user=url.username,
                                  database=url.database)
    try:
        assert await first.is_leader()
        assert not await second.is_leader()
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_locks "
            "WHERE locktype = 'advisory' AND granted AND pid <> pg_backend_pid() AND database = "
            "(SELECT oid FROM pg_database WHERE datname = current_database())")
        # pg_terminate_backend only signals: the dead session lets go a moment later.
        for _ in range(100):
            if await second.is_leader():
                break
            await asyncio.sleep(0.05)
        assert await second.is_leader()
        assert not await first.is_leader()
    finally:
        await admin.close()
        await first.release()
        await second.release()
        await first_db.dispose()
        await second_db.dispose()


async def test_a_new_leader_runs_the_interval_jobs_at_once() -> None:
    import asyncio
    from zoneinfo import ZoneInfo

    ran: list[str] = []
    leads = False

    async def job() -> None:
        ran.append("ran")

    async def leader() -> bool:
        return leads

    scheduler = Scheduler(ZoneInfo("Asia/Ho_Chi_Minh"), leader=leader)
    scheduler.add(Job("tick", job, every_seconds=3600))
    scheduler.start()
    try:
        assert not await scheduler.watch()
        leads = True  # the old leader is gone; this instance got the lock
        assert await scheduler.watch()
        for _ in range(100):
            if ran:
                break
            await asyncio.sleep(0.02)
        assert ran == ["ran"]  # now, not in an hour
        assert await scheduler.watch()  # still the leader: nothing runs again
        await asyncio.sleep(0.1)
        assert ran == ["ran"]
    finally:
        scheduler.stop()
