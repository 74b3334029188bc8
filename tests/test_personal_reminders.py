"""Personal reminders over Telegram: a household still missing a running campaign's step is
reminded in its residents' private chats, at most once a week, never at night; the reminder
cancels itself once the step is logged; /tatnhac stops them; "Nhờ tổ công nghệ số đến giúp"
tells the group's helpers and marks the household in their "not done yet" list."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import select

from bot.app import BotApp
from bot.clock import FrozenClock
from bot.config import Config
from bot.core import Sender
from bot.db import Database
from bot.jobs.personal_reminders import send_personal_reminders
from bot.models import PersonalReminder, VisitRequest
from bot.roles import Role
from bot.services.reminders import Effect, step_done
from bot.services.tables import read_table
from tests.conftest import shared_content
from tests.fake_telegram import FakeTelegram
from tests.telegram_people import Ward, labels

TOKEN = "123456:TEST-TOKEN"
HELPER, LEADER, BOSS, RESIDENT, NEIGHBOUR = 701, 703, 704, 705, 706
START = datetime(2026, 11, 24, 3, 0, tzinfo=UTC)  # 10:00 in Hà Nội
LIST = (
    "mã hộ,tổ,chủ hộ,địa chỉ,số nhân khẩu,số người lớn\n"
    "TDP01-001,TDP01,Nguyễn Văn An,12 Lê Lợi,4,3\n"
    "TDP01-002,TDP01,Trần Thị Bình,14 Lê Lợi,2,2\n"
    "TDP02-001,TDP02,Phạm Thị Dung,3 Hùng Vương,3,2\n"
)


@pytest.fixture
async def ward(tmp_path: Path, sqlite_url: str) -> AsyncIterator[Ward]:
    # sqlite_url: <tmp_path>/bot.db starts as a copy of the migrated template
    async with FakeTelegram(token=TOKEN, bot_username="cds_test_bot") as tg:
        config = Config.model_validate({
            "database": {"url": f"sqlite+aiosqlite:///{tmp_path}/bot.db"},
            "telegram": {"token": TOKEN, "api_base_url": tg.base_url},
            "web": {"port": 0}, "outbox": {"private_per_second": 100},
        })
        app = BotApp(config, clock=FrozenClock(START), content=shared_content())
        await app.db.upgrade()
        services = app.context.services
        hb = await services.places.add_ward("HB", "Phường Hòa Bình")
        await services.registry.import_table(hb.id, read_table(LIST.encode()), create_groups=True)
        for user, role, group in ((HELPER, Role.HELPER, "TDP01"), (LEADER, Role.LEADER, "TDP01"),
                                  (BOSS, Role.COORDINATOR, None),
                                  (RESIDENT, Role.RESIDENT, "TDP01"),
                                  (NEIGHBOUR, Role.RESIDENT, "TDP01")):
            await services.access.grant(platform="telegram", user_id=str(user), role=role,
                                        ward_code="HB", group_code=group)
        await app.start()
        try:
            yield Ward(tg, app, app.context.clock)  # type: ignore[arg-type]
        finally:
            await app.stop()


async def campaign(ward: Ward, step: str = "vneid") -> int:
    services = ward.app.context.services
    boss = await services.access.identify("telegram", Sender(str(BOSS), "Chị Hoa"))
    hb = await services.places.ward_by_code("HB")
    assert hb is not None
    info = await services.campaigns.create(
        boss, hb.id, title="Tháng VNeID", step_key=step, target=80,
        starts_on=date(2026, 11, 24), ends_on=date(2026, 12, 31), group_ids=[],
        days=["mon"], at_time="19:00",
    )
    return info.id


async def remind(ward: Ward) -> int:
    queued = await send_personal_reminders(ward.app.context)
    await ward.app.context.services.outbox.drain()
    return queued


def reminders_to(ward: Ward, user: int) -> list[str]:
    return [t for t in ward.inbox(user) if "Nhắc việc cho hộ" in t]


async def test_reminded_once_then_the_logged_step_stops_the_next_one(ward: Ward) -> None:
    await ward.say(RESIDENT, "/cuaho TDP01-002 tran thi binh", count=2)
    campaign_id = await campaign(ward)
    assert await remind(ward) == 1  # only the linked household; TDP01-001 has nobody to tell
    [reminder] = reminders_to(ward, RESIDENT)
    assert "Nhắc việc cho hộ TDP01-002" in reminder and "Tháng VNeID" in reminder
    assert "Tài khoản định danh điện tử VNeID mức 2" in reminder and "/tatnhac" in reminder
    buttons = labels(ward.tg.sent_to(RESIDENT)[-1])
    assert "✅ Tôi đã làm xong" in buttons and "🙋 Nhờ tổ công nghệ số đến giúp" in buttons
    assert any(b.startswith("📖 Cách làm:") for b in buttons)

    ward.clock.advance(timedelta(days=3))
    assert await remind(ward) == 0  # once a week at most
    [logged] = await ward.say(HELPER, "/ghi TDP01-002 vneid")
    assert "TDP01-002" in logged
    ward.clock.advance(timedelta(days=5))
    assert await remind(ward) == 0  # done: never reminded again
    assert len(reminders_to(ward, RESIDENT)) == 1
    assert await ward.app.context.services.reminders.effect(campaign_id) == [
        Effect("TDP01", reminded=1, done_within=1)]


async def test_a_planned_reminder_is_dropped_when_the_step_is_logged(ward: Ward) -> None:
    await ward.say(RESIDENT, "/cuaho TDP01-002 tran thi binh", count=2)
    await campaign(ward)
    services = ward.app.context.services
    assert await services.reminders.plan() == 1
    await ward.say(HELPER, "/ghi TDP01-002 vneid")
    async with ward.app.db.session() as session:
        states = (await session.exec(select(PersonalReminder.state))).all()
    assert states == ["cancelled"]  # dropped with the log, not at sending time
    assert await services.reminders.take_due() == []
    assert await remind(ward) == 0 and reminders_to(ward, RESIDENT) == []


async def test_never_at_night_and_mute_is_respected(ward: Ward) -> None:
    await ward.say(RESIDENT, "/cuaho TDP01-002 tran thi binh", count=2)
    await campaign(ward)
    ward.clock.set(datetime(2026, 11, 24, 15, 0, tzinfo=UTC))  # 22:00
    assert await remind(ward) == 0
    [muted] = await ward.say(RESIDENT, "/tatnhac")
    assert "Đã tắt tin nhắc việc" in muted
    ward.clock.set(datetime(2026, 11, 25, 1, 0, tzinfo=UTC))  # 08:00
    assert await remind(ward) == 0
    [back] = await ward.say(RESIDENT, "/batnhac")
    assert "Đã bật lại" in back
    assert await remind(ward) == 1
    assert len(reminders_to(ward, RESIDENT)) == 1


async def test_asking_for_a_visit_reaches_the_helpers_and_their_list(ward: Ward) -> None:
    await ward.say(RESIDENT, "/cuaho TDP01-002 tran thi binh", count=2)
    await campaign(ward)
    await remind(ward)
    asked = await ward.press(RESIDENT, "🙋 Nhờ tổ công nghệ số đến giúp")
    assert "Đã báo tổ công nghệ số" in asked
    [note] = await ward.told(HELPER, 1)
    assert "Hộ TDP01-002 nhờ tổ công nghệ số đến nhà giúp" in note
    again = await ward.press(RESIDENT, "🙋 Nhờ tổ công nghệ số đến giúp")
    assert "đã nhờ rồi" in again
    assert len(ward.inbox(HELPER)) == 1  # told once
    await ward.say(HELPER, "/tiendo TDP01")
    left = await ward.press(HELPER, "🏠 Hộ chưa xong")
    assert "1 hộ nhờ tổ công nghệ số đến giúp: TDP01-002" in left
    assert "nhờ đến giúp lúc" in left


async def test_an_import_that_marks_the_step_drops_the_reminder(ward: Ward) -> None:
    await ward.say(RESIDENT, "/cuaho TDP01-002 tran thi binh", count=2)
    await campaign(ward)
    services = ward.app.context.services
    assert await services.reminders.plan() == 1
    hb = await services.places.ward_by_code("HB")
    assert hb is not None
    update = ("mã hộ,tổ,chủ hộ,địa chỉ,số nhân khẩu,số người lớn,vneid\n"
              "TDP01-002,TDP01,Trần Thị Bình,14 Lê Lợi,2,2,2\n")
    await services.registry.import_table(hb.id, read_table(update.encode()))
    async with ward.app.db.session() as session:
        assert (await session.exec(select(PersonalReminder.state))).all() == ["cancelled"]


async def test_the_final_report_tells_coordinators_what_reminders_achieved(ward: Ward) -> None:
    await ward.say(RESIDENT, "/cuaho TDP01-002 tran thi binh", count=2)
    await campaign(ward)
    await remind(ward)
    ward.clock.advance(timedelta(days=2))
    await ward.say(HELPER, "/ghi TDP01-002 vneid")
    await ward.say(BOSS, "/chiendich")
    ended = await ward.press(BOSS, "⏹ Kết thúc #1", edit=True)
    assert "đã kết thúc" in ended
    await ward.app.context.services.outbox.drain(within=10)
    final = next(t for t in ward.inbox(BOSS) if "Kết thúc đợt" in t)
    assert "Nhắc riêng từng hộ" in final
    assert "TDP01: 1 hộ được nhắc → 1 hộ làm xong (100%)" in final


async def test_an_import_of_thousands_cancels_every_reminder_in_a_few_statements(
    db: Database,
) -> None:
    """`step_done` takes households a few hundred at a time: 1,200 households done at once
    (an import) cancel all their pending reminders, record the effect of the sent ones and
    close their visit requests, and leave another step's reminders alone."""
    now = datetime(2026, 11, 24, 3, tzinfo=UTC)
    async with db.session() as session:
        # Only these rows matter here: their households, campaign and group are not made.
        await session.exec(sa.text("PRAGMA foreign_keys=OFF"))  # type: ignore[call-overload]
        for household in range(1, 1201):
            for step, state in (("vneid", "pending"), ("app", "pending"), ("vneid", "sent")):
                session.add(PersonalReminder(household_id=household, campaign_id=1, group_id=1,
                                             step_key=step, state=state, due_at=now,
                                             created_at=now))
            session.add(VisitRequest(household_id=household, group_id=1, requested_at=now))
    statements: list[str] = []

    def count(*args: object) -> None:
        statements.append(str(args[2]))

    engine = db.engine.sync_engine
    sa.event.listen(engine, "before_cursor_execute", count)
    try:
        async with db.session() as session:
            await step_done(session, [(h, "vneid") for h in range(1, 1201)], now)
    finally:
        sa.event.remove(engine, "before_cursor_execute", count)
    async with db.session() as session:
        rows = (await session.exec(select(PersonalReminder))).all()
        visits = (await session.exec(select(VisitRequest))).all()
    vneid = [r for r in rows if r.step_key == "vneid"]
    assert sorted({r.state for r in vneid}) == ["cancelled", "sent"]
    assert all(r.done_at is not None for r in vneid if r.state == "sent")
    assert all(r.state == "pending" and r.done_at is None for r in rows if r.step_key == "app")
    assert all(v.done_at is not None for v in visits) and len(visits) == 1200
    assert sum(s.lstrip().upper().startswith("UPDATE") for s in statements) == 3 * 3  # 3 chunks
