"""The tables of issue #13 on both databases (SQLite file and PostgreSQL): seen message ids,
platform flags, OA windows and counts, and relay tasks with their reminders."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from bot.clock import FrozenClock
from bot.context import build_context
from bot.core import Role, Sender
from bot.db import Database
from bot.services.platform_state import DbFlags, DbOAWindows, DbSeenIds
from tests.conftest import make_config


@pytest.fixture
async def database(db_url: str) -> AsyncIterator[Database]:
    db = Database(db_url)
    await db.upgrade()
    yield db
    await db.dispose()


async def test_seen_ids_flags_and_oa_windows(database: Database, clock: FrozenClock) -> None:
    seen = DbSeenIds(database, clock, "zalo", max_rows=3)
    other = DbSeenIds(database, clock, "zalo_oa")
    assert not await seen.seen_before("m1") and await seen.seen_before("m1")
    assert not await other.seen_before("m1")  # per platform
    for n in range(2, 6):
        await seen.seen_before(f"m{n}")
    assert await seen.prune() == 2 and await seen.count() == 3
    flags = DbFlags(database, clock, "zalo")
    assert await flags.get("quota_exceeded") is None
    await flags.set("quota_exceeded", {"since": "x"})
    await flags.set("quota_exceeded", {"since": "y"})
    assert await flags.get("quota_exceeded") == {"since": "y"}
    assert await flags.clear("quota_exceeded") and not await flags.clear("quota_exceeded")
    windows = DbOAWindows(database, clock, make_config("sqlite+aiosqlite:///x").bot.tz)
    assert await windows.classify("u") == "proactive"
    await windows.heard_from("u")
    for _ in range(8):
        assert await windows.classify("u") == "reply"
        await windows.count("u", "reply")
    assert await windows.classify("u") == "proactive"
    await windows.count("u", "refused")
    counts = await windows.counts()
    assert (counts.month, counts.replies, counts.proactive, counts.refused) == \
        ("2026-11", 8, 0, 1)


async def test_relay_tasks_remind_once_and_confirm(database: Database,
                                                   clock: FrozenClock) -> None:
    ctx = build_context(make_config(database.url), database, clock)
    s = ctx.services
    await s.places.add_ward("P1", "Phường Một")
    for code in ("TDP01", "TDP02"):
        await s.places.add_group("P1", code, code)
    for user, code in (("11", "TDP01"), ("12", "TDP02")):
        await s.access.grant(platform="telegram", user_id=user, role=Role.LEADER,
                             ward_code="P1", group_code=code)
    leader = await s.access.identify("telegram", Sender("11"))
    ward_id = leader.ward_id
    assert ward_id is not None
    reaches = list((await s.relays.reach(ward_id)).values())
    assert [r.mode for r in reaches] == ["relay", "relay"]
    tasks = await s.relays.create_tasks(kind="notice", ref_id=7, ward_id=ward_id,
                                        author_member_id=None, reaches=reaches, text="x")
    for task in tasks:
        await s.relays.delivered(task.id, True)
    done = await s.relays.confirm(leader, tasks[0].id)
    assert not done.already and (await s.relays.confirm(leader, tasks[0].id)).already
    clock.advance(timedelta(hours=4))
    due = await s.relays.to_remind(clock.now() - timedelta(hours=3))
    assert [t.group_code for t in due] == ["TDP02"]
    assert await s.relays.to_remind(clock.now()) == []  # once
    summary = await s.relays.summary("notice", 7, [r.group_id for r in reaches])
    assert (summary.relayed, summary.waiting, summary.waiting_groups) == (1, 1, ["TDP02"])
