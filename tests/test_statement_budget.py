"""The database work of one update, counted at the driver (every SQL statement and every
transaction begun), so the budget of the hot paths cannot silently grow again (#16):
#16 asks `/trogiup` ≤ 2 statements in 1 transaction and `/ghi CODE vneid` ≤ 6 in 1-2, a
person's identity being cached for a few seconds; the cache must never outlive a grant or
a revocation, made here or by another process (the CLI, the dashboard)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.clock import FrozenClock
from bot.context import AppContext, Content, build_context
from bot.core import Role
from bot.db import Database
from bot.router import Router
from bot.services.tables import read_table
from handlers import register_all
from tests.conftest import make_config
from tests.recording import RecordingPlatform, message

HELPER = "801"
LIST = (
    "mã hộ,tổ,chủ hộ,địa chỉ,số nhân khẩu,số người lớn\n"
    + "".join(f"TDP01-{i:03d},TDP01,Nguyễn Văn {i},{i} Lê Lợi,3,2\n" for i in range(1, 41))
)


@dataclass
class Counted:
    statements: int
    transactions: int
    said: str


@dataclass
class Bot:
    ctx: AppContext
    router: Router
    platform: RecordingPlatform
    db: Database

    async def send(self, text: str, user: str = HELPER) -> Counted:
        before = (self.db.statements, self.db.transactions, len(self.platform.said))
        await self.router.dispatch(self.platform, message(text, user=user))
        said = "\n".join(s.text for s in self.platform.said[before[2]:])
        return Counted(self.db.statements - before[0], self.db.transactions - before[1], said)


@pytest.fixture
async def bot(tmp_path: Path, clock: FrozenClock, content: Content) -> AsyncIterator[Bot]:
    # SQLite: on PostgreSQL, since delivery's cross-instance sender, a reply made without a
    # running outbox is handed over through the database instead of reaching this platform.
    db_url = f"sqlite+aiosqlite:///{tmp_path}/budget.db"
    db = Database(db_url)
    await db.upgrade()
    ctx = build_context(make_config(db_url), db, clock, content=content)
    router = Router(ctx)
    register_all(router)
    platform = RecordingPlatform()
    router.attach(platform)
    ward = await ctx.services.places.add_ward("HB", "Phường Hòa Bình")
    await ctx.services.places.add_group("HB", "TDP01", "Tổ dân phố 1")
    await ctx.services.registry.import_table(ward.id, read_table(LIST.encode()))
    await ctx.services.access.grant(platform="telegram", user_id=HELPER, role=Role.HELPER,
                                    ward_code="HB", group_code="TDP01")
    try:
        yield Bot(ctx, router, platform, db)
    finally:
        await db.dispose()


async def test_help_is_at_most_two_statements_in_one_transaction(bot: Bot) -> None:
    first = await bot.send("/trogiup")  # the person's identity is read once
    assert "/ghi" in first.said
    again = await bot.send("/trogiup")
    assert again.said == first.said
    assert again.statements <= 2, again
    assert again.transactions <= 1, again


async def test_logging_a_step_is_at_most_six_statements_in_two_transactions(bot: Bot) -> None:
    await bot.send("/trogiup")
    for number in (1, 2, 3):
        code = f"TDP01-{number:03d}"
        logged = await bot.send(f"/ghi {code} vneid")
        assert code in logged.said and "VNeID" in logged.said, logged.said
        assert logged.statements <= 6, logged
        assert 1 <= logged.transactions <= 2, logged
    # The step really was written: showing the household again reads it back as done.
    shown = await bot.send("/ghi TDP01-002")
    assert shown.said.count("✅") >= 1 or "2/2" in shown.said, shown.said


async def test_a_grant_is_seen_at_once_despite_the_identity_cache(bot: Bot) -> None:
    stranger = "802"
    before = await bot.send("/ghi TDP01-001 vneid", user=stranger)
    assert "TDP01-001" not in before.said
    await bot.ctx.services.access.grant(platform="telegram", user_id=stranger,
                                        role=Role.HELPER, ward_code="HB", group_code="TDP01")
    after = await bot.send("/ghi TDP01-001 vneid", user=stranger)
    assert "TDP01-001" in after.said, after.said


async def test_past_the_identity_cache_who_someone_is_costs_one_statement(
    bot: Bot, clock: FrozenClock,
) -> None:
    from datetime import timedelta

    await bot.send("/trogiup")
    clock.advance(timedelta(seconds=6))  # past bot.identity_cache_seconds (5)
    again = await bot.send("/trogiup")
    assert "/ghi" in again.said
    assert again.statements <= 2 and again.transactions <= 1, again  # member + grants, form
    clock.advance(timedelta(seconds=6))
    logged = await bot.send("/ghi TDP01-005 vneid")
    assert "TDP01-005" in logged.said and "VNeID" in logged.said, logged.said
    assert logged.statements <= 7 and logged.transactions <= 2, logged
