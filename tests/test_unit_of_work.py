"""One session per update (`Database.unit_of_work`): services' `db.session()` blocks join it,
yet each block keeps its own meaning — a block that wrote is committed when it ends, a block
that raised loses only its own writes, and other tasks never share the update's session."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from sqlmodel import select

from bot.db import Database
from bot.models import Ward

NOW = datetime(2026, 11, 24, tzinfo=UTC)


async def ward_codes(db: Database) -> list[str]:
    async with db.session() as session:
        return sorted((await session.exec(select(Ward.code))).all())


async def test_blocks_share_one_session_and_other_tasks_do_not(db: Database) -> None:
    async with db.unit_of_work() as unit:
        async with db.session() as first:
            pass
        async with db.session() as second:
            pass

        async def elsewhere() -> object:
            async with db.session() as own:
                return own

        other = await asyncio.create_task(elsewhere())
    assert first is unit and second is unit
    assert other is not unit


async def test_a_write_is_committed_when_its_block_ends(db: Database) -> None:
    async with db.unit_of_work():
        async with db.session() as session:
            session.add(Ward(code="HB", name="Phường Hòa Bình", created_at=NOW))
        # Visible to another connection before the update is over (the reply goes out
        # after the write is durable, and no write lock is held meanwhile).
        seen = await asyncio.create_task(ward_codes(db))
    assert seen == ["HB"]


async def test_a_failing_block_loses_only_its_own_writes(db: Database) -> None:
    async with db.unit_of_work():
        async with db.session() as session:
            session.add(Ward(code="A1", name="Phường Một", created_at=NOW))
        with pytest.raises(ValueError):
            async with db.session() as session:
                session.add(Ward(code="B2", name="Phường Hai", created_at=NOW))
                await session.flush()
                raise ValueError("refused after writing")
        async with db.session() as session:
            session.add(Ward(code="C3", name="Phường Ba", created_at=NOW))
    assert await ward_codes(db) == ["A1", "C3"]


async def test_read_only_update_is_one_transaction(db: Database) -> None:
    async with db.session() as session:
        session.add(Ward(code="HB", name="Phường Hòa Bình", created_at=NOW))
    before = db.transactions
    async with db.unit_of_work():
        for _ in range(3):
            assert await ward_codes(db) == ["HB"]
    assert db.transactions - before == 1
