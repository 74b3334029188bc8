"""Storage on both backends: migrations, services, restarts, races. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from bot.clock import FrozenClock
from bot.context import Content, build_context
from bot.core import Sender
from bot.db import Database
from bot.roles import Role
from bot.services.conversations import Who
from bot.services.errors import ServiceError
from tests.conftest import make_config

ROOT = Path(__file__).resolve().parent.parent
TABLES = {
    "ward", "residential_group", "member", "role_grant", "chat_binding", "invite",
    "conversation_state", "audit_log", "alembic_version",
}


async def test_migrations_create_every_table_and_are_idempotent(empty_db_url: str) -> None:
    db = Database(empty_db_url)
    try:
        await db.upgrade()
        await db.upgrade()
        async with db.engine.connect() as conn:
            names = await conn.run_sync(lambda c: set(sa.inspect(c).get_table_names()))
        assert names >= TABLES
        assert await db.ping()
    finally:
        await db.dispose()


def test_the_heads_a_start_checks_are_alembics_heads() -> None:
    """A start at all heads skips alembic: the heads it reads must be the ones alembic would
    migrate to, or a pending migration would never be applied."""
    from alembic.script import ScriptDirectory

    from bot.db import alembic_config, head_revisions

    script = ScriptDirectory.from_config(alembic_config())
    assert head_revisions() == frozenset(script.get_heads())
    assert len(head_revisions()) >= 1


async def test_a_start_at_all_heads_does_not_import_alembic(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/x.db"
    db = Database(url)
    await db.upgrade()
    await db.dispose()
    script = (
        "import asyncio, sys\n"
        "from bot.db import Database\n"
        f"db = Database({url!r})\n"
        "asyncio.run(db.upgrade())\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('alembic', 'mako')))\n"
    )
    done = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-c", script], capture_output=True, text=True,
        check=True, cwd=ROOT)
    assert done.stdout.strip() == "[]", done.stdout


async def test_sqlite_runs_in_wal_with_foreign_keys(tmp_path: object) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path}/x.db")
    try:
        await db.upgrade()
        async with db.engine.connect() as conn:
            assert (await conn.execute(sa.text("PRAGMA journal_mode"))).scalar() == "wal"
            assert (await conn.execute(sa.text("PRAGMA foreign_keys"))).scalar() == 1
    finally:
        await db.dispose()


async def test_places_grants_and_identity(db_url: str, content: Content, clock: FrozenClock) -> None:
    db = Database(db_url)
    await db.upgrade()
    try:
        ctx = build_context(make_config(db_url), db, clock, content=content)
        places, access = ctx.services.places, ctx.services.access
        await places.add_ward("p7", "Phường 7")
        group = await places.add_group("P7", "tdp05", "Tổ 5")
        assert group.code == "TDP05"
        with pytest.raises(ServiceError) as dup:
            await places.add_group("P7", "TDP05", "Tổ 5 lần hai")
        assert dup.value.reason == "group_exists"
        with pytest.raises(ServiceError):
            await access.grant(platform="telegram", user_id="1", role=Role.LEADER, ward_code="P7")
        await access.grant(
            platform="telegram", user_id="1", role=Role.LEADER, ward_code="P7", group_code="TDP05"
        )
        # Granting twice changes nothing.
        await access.grant(
            platform="telegram", user_id="1", role=Role.LEADER, ward_code="P7", group_code="TDP05"
        )
        identity = await access.identify("telegram", Sender("1", "Chú Tư"))
        assert identity.role == Role.LEADER
        assert len(identity.grants) == 1
        assert identity.role_in_group(group.ward_id, group.id) == Role.LEADER
        assert identity.name == "Chú Tư"
    finally:
        await db.dispose()


async def test_a_form_survives_a_restart(db_url: str, content: Content, clock: FrozenClock) -> None:
    who = Who("telegram", "5", "5")
    first = Database(db_url)
    await first.upgrade()
    ctx = build_context(make_config(db_url), first, clock, content=content)
    await ctx.services.conversations.save(who, "invite", "uses", {"role": "helper", "n": [1, 2]})
    await first.dispose()

    second = Database(db_url)
    try:
        ctx = build_context(make_config(db_url), second, clock, content=content)
        state = await ctx.services.conversations.get(who)
        assert state is not None and state.step == "uses"
        assert state.data == {"role": "helper", "n": [1, 2]}
        clock.advance(timedelta(hours=1))
        expired = await ctx.services.conversations.get(who)
        assert expired is not None and expired.expired
        assert await ctx.services.conversations.get(who) is None
    finally:
        await second.dispose()


async def test_last_use_of_an_invite_goes_to_one_person_only(
    content: Content, db_url: str, clock: FrozenClock
) -> None:
    db = Database(db_url)
    await db.upgrade()
    try:
        ctx = build_context(make_config(db_url), db, clock, content=content)
        await ctx.services.places.add_ward("P1", "Phường 1")
        group = await ctx.services.places.add_group("P1", "TDP01", "Tổ 1")
        await ctx.services.access.grant(
            platform="telegram", user_id="1", role=Role.COORDINATOR, ward_code="P1"
        )
        boss = await ctx.services.access.identify("telegram", Sender("1"))
        invite = await ctx.services.invites.create(
            boss, role=Role.RESIDENT, ward_id=group.ward_id, group_id=group.id, max_uses=1
        )
        people = [await ctx.services.access.identify("telegram", Sender(str(i))) for i in (2, 3, 4)]
        results = await asyncio.gather(
            *(ctx.services.invites.redeem(p, invite.code) for p in people), return_exceptions=True
        )
        won = [r for r in results if not isinstance(r, BaseException)]
        lost = [r for r in results if isinstance(r, ServiceError)]
        assert len(won) == 1
        assert len(lost) == 2 and all(e.reason == "used_up" for e in lost)
    finally:
        await db.dispose()


async def test_times_come_back_aware_utc(db_url: str, content: Content) -> None:
    db = Database(db_url)
    await db.upgrade()
    try:
        clock = FrozenClock(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC))
        ctx = build_context(make_config(db_url), db, clock, content=content)
        saved = await ctx.services.conversations.save(Who("x", "1", "1"), "f", "s", {})
        loaded = await ctx.services.conversations.get(Who("x", "1", "1"))
        assert loaded is not None and loaded.expires_at == saved.expires_at
        assert loaded.expires_at is not None and loaded.expires_at.tzinfo is not None
    finally:
        await db.dispose()
