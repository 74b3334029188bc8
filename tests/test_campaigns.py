"""Campaigns over Telegram: the coordinator's form, reminders that carry each group's live
figures on schedule (coalesced after downtime, held in quiet hours), congratulations once,
the final ranking, the daily digest. Time moves only when the test moves the clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta

import pytest

from bot.app import BotApp
from bot.clock import FrozenClock
from bot.core import Chat, Sender
from bot.roles import Role
from bot.services.campaigns import parse_days
from bot.services.tables import read_table
from handlers.campaigns import _parse_period
from tests.conftest import shared_content
from tests.fake_telegram import FakeTelegram
from tests.telegram_people import Ward, labels, plain, until
from tests.test_notices import TOKEN, make_config

HELPER, LEADER, OTHER_LEADER, BOSS = 901, 902, 903, 904
CHATS = {"TDP01": -2001, "TDP02": -2002}
START = datetime(2026, 11, 24, 4, 0, tzinfo=UTC)  # Tuesday 11:00 in Hà Nội
LIST = (
    "code,group,head_name,members\n"
    "TDP01-001,TDP01,Nguyễn Văn An,4\nTDP01-002,TDP01,Trần Thị Bình,2\n"
    "TDP01-003,TDP01,Lê Văn Cường,3\nTDP01-004,TDP01,Phạm Thị Dung,1\n"
    "TDP02-001,TDP02,Võ Văn Em,2\nTDP02-002,TDP02,Đỗ Thị Gấm,2\n"
)


def local(day: int, hour: int, minute: int = 0) -> datetime:
    """A moment in Hà Nội time in November 2026, as UTC."""
    return datetime(2026, 11, day, hour, minute, tzinfo=UTC) - timedelta(hours=7)


@pytest.fixture
async def ward(sqlite_url: str) -> AsyncIterator[Ward]:
    async with FakeTelegram(token=TOKEN, bot_username="cds_test_bot") as tg:
        app = BotApp(make_config(sqlite_url, tg),
                     clock=FrozenClock(START), content=shared_content())
        await app.db.upgrade()
        services = app.context.services
        hb = await services.places.add_ward("HB", "Phường Hòa Bình")
        await services.registry.import_table(hb.id, read_table(LIST.encode()), create_groups=True)
        for user, role, group in ((HELPER, Role.HELPER, "TDP01"), (LEADER, Role.LEADER, "TDP01"),
                                  (OTHER_LEADER, Role.LEADER, "TDP02"),
                                  (BOSS, Role.COORDINATOR, None)):
            await services.access.grant(platform="telegram", user_id=str(user), role=role,
                                        ward_code="HB", group_code=group)
        boss = await services.access.identify("telegram", Sender(str(BOSS), "Cán bộ Hoa"))
        for code, chat_id in CHATS.items():
            await services.chats.bind(boss, "telegram",
                                      Chat(str(chat_id), "group", f"Nhóm {code}"), code)
        await app.start()
        try:
            yield Ward(tg, app, app.context.clock)  # type: ignore[arg-type]
        finally:
            await app.stop()


async def tick_at(ward: Ward, moment: datetime) -> None:
    ward.clock.set(moment)  # type: ignore[attr-defined]
    await ward.app.scheduler.run_now("campaigns")
    outbox = ward.app.context.services.outbox
    outbox.wake()
    await outbox.drain(within=10)


def chat(ward: Ward, code: str) -> list[str]:
    return [plain(m) for m in ward.tg.sent_to(CHATS[code])]


async def create_campaign(ward: Ward) -> None:
    [listing] = await ward.say(BOSS, "/chiendich")
    assert "Chưa có đợt thi đua nào" in listing
    assert "Tên đợt là gì?" in await ward.press(BOSS, "➕ Tạo đợt mới")
    [step] = await ward.say(BOSS, "Đợt 1: ai cũng có điện thoại thông minh")
    assert "thúc đẩy việc nào" in step
    target = await ward.press(BOSS, "Điện thoại thông minh", edit=True)
    assert "Mục tiêu bao nhiêu phần trăm" in target
    assert "Từ ngày nào đến ngày nào" in await ward.press(BOSS, "50%")
    [bad] = await ward.say(BOSS, "hôm nay")
    assert "chưa hiểu thời gian này" in bad
    [schedule] = await ward.say(BOSS, "24/11 - 4/12")
    assert "Nhắc các nhóm vào những ngày nào" in schedule
    confirm = await ward.press(BOSS, "T2, T4, T6 lúc 19:00")
    assert "Thời gian: 24/11/2026 – 04/12/2026" in confirm and "Các tổ: tất cả các tổ" in confirm
    created = await ward.press(BOSS, "✅ Tạo đợt", edit=True)
    assert "Đã tạo đợt thi đua #1 Đợt 1: ai cũng có điện thoại thông minh" in created


async def mark(ward: Ward, code: str) -> None:
    """The group's helper, or the coordinator for other groups, ticks the smartphone step."""
    await ward.say(HELPER if code.startswith("TDP01") else BOSS, f"/ghi {code} smartphone")


async def test_campaign_reminders_carry_live_figures_and_congratulate_once(ward: Ward) -> None:
    await create_campaign(ward)
    await mark(ward, "TDP01-001")
    await tick_at(ward, local(25, 18, 59))  # Wednesday, a minute early
    assert chat(ward, "TDP01") == []
    await tick_at(ward, local(25, 19, 0))
    [reminder] = chat(ward, "TDP01")
    assert "Tổ TDP01 — Có điện thoại thông minh: 25% (1/4 hộ)" in reminder
    assert "Đứng thứ 1/2 trong phường" in reminder
    assert "Còn 3 hộ nữa là xong, còn 9 ngày (hạn 04/12)" in reminder
    assert labels(ward.tg.sent_to(CHATS["TDP01"])[0]) == ["📖 Xem cách làm"]
    [other] = chat(ward, "TDP02")
    assert "Tổ TDP02 — Có điện thoại thông minh: 0%" in other and "Đứng thứ 2/2" in other
    await mark(ward, "TDP01-002")
    await tick_at(ward, local(27, 19, 0))  # Friday: TDP01 reaches 50%
    texts = chat(ward, "TDP01")
    assert "Tổ TDP01 — Có điện thoại thông minh: 50%" in texts[1]
    assert "Tổ đã đạt mục tiêu" in texts[1]
    assert "Chúc mừng tổ TDP01 đã đạt mục tiêu 50%" in texts[2]
    await tick_at(ward, local(30, 19, 0))  # Monday: reminded again, congratulated no more
    assert len(chat(ward, "TDP01")) == 4
    assert sum("Chúc mừng" in t for t in chat(ward, "TDP01")) == 1
    [listing] = await ward.say(BOSS, "/chiendich")
    assert "#1 Đợt 1: ai cũng có điện thoại thông minh — đang chạy" in listing
    assert "Có điện thoại thông minh: 33% / mục tiêu 50% (2/6)" in listing


async def test_missed_reminders_are_sent_once_and_quiet_hours_wait(ward: Ward) -> None:
    await create_campaign(ward)
    # The bot was down from Tuesday to Friday 20:00: Wednesday and Friday 19:00 are missed.
    await tick_at(ward, local(27, 20, 0))
    assert len(chat(ward, "TDP01")) == 1  # one late reminder, not two
    await tick_at(ward, local(27, 20, 5))
    assert len(chat(ward, "TDP01")) == 1
    # Down again over Monday 19:00, back at 22:30: inside quiet hours, so it waits.
    await tick_at(ward, local(30, 22, 30))
    assert len(chat(ward, "TDP01")) == 1
    await tick_at(ward, datetime(2026, 12, 1, 6, 59, tzinfo=UTC) - timedelta(hours=7))
    assert len(chat(ward, "TDP01")) == 1
    await tick_at(ward, datetime(2026, 12, 1, 7, 1, tzinfo=UTC) - timedelta(hours=7))
    assert len(chat(ward, "TDP01")) == 2


async def test_pause_remind_now_end_and_final_ranking(ward: Ward) -> None:
    await create_campaign(ward)
    await mark(ward, "TDP02-001")
    [_] = await ward.say(BOSS, "/chiendich")
    await ward.press(BOSS, "⏸ Tạm dừng #1", edit=True)
    await tick_at(ward, local(25, 19, 0))
    assert chat(ward, "TDP01") == []
    reminded = await ward.press(BOSS, "📣 Nhắc ngay #1")
    assert "Đã xếp nhắc «Đợt 1: ai cũng có điện thoại thông minh» tới 2 nhóm chat" in reminded
    await ward.app.context.services.outbox.drain(within=10)
    assert len(chat(ward, "TDP01")) == 1
    resumed = await ward.press(BOSS, "▶️ Tiếp tục #1", edit=True)
    assert "đang chạy" in resumed
    ended = await ward.press(BOSS, "⏹ Kết thúc #1", edit=True)
    assert "đã kết thúc" in ended
    await ward.app.context.services.outbox.drain(within=10)
    final = chat(ward, "TDP02")[-1]
    assert "Kết thúc đợt «Đợt 1: ai cũng có điện thoại thông minh»" in final
    assert "🥇 TDP02: 50% ✅" in final and "🥈 TDP01: 0%" in final
    await until(lambda: any("Kết thúc đợt" in t for t in ward.inbox(BOSS)), "the ranking")
    await tick_at(ward, local(27, 19, 0))
    assert len(chat(ward, "TDP01")) == 2  # the ranking, and no reminder after the end


async def test_campaign_ends_by_itself_after_its_last_day(ward: Ward) -> None:
    await create_campaign(ward)
    await tick_at(ward, local(28, 9, 0) + timedelta(days=7))  # Saturday 5 December
    assert any("Kết thúc đợt" in t for t in chat(ward, "TDP01"))


async def test_daily_digest_for_coordinators(ward: Ward) -> None:
    await mark(ward, "TDP01-001")
    await ward.say(BOSS, "/gopy Đèn đường hỏng")
    await tick_at(ward, local(24, 16, 59))
    assert not any("Tổng kết ngày" in t for t in ward.inbox(BOSS))
    await tick_at(ward, local(24, 17, 0))
    await until(lambda: any("Tổng kết ngày" in t for t in ward.inbox(BOSS)), "the digest")
    digest = next(t for t in ward.inbox(BOSS) if "Tổng kết ngày" in t)
    assert "Tổng kết ngày 24/11/2026" in digest
    assert "• TDP01: 2,8% (+1 hôm nay)" in digest  # 1 of 16 household + 20 adult units
    assert "Phản ánh mới hôm nay: 1 · đang mở: 1 · quá hạn: 0" in digest
    await tick_at(ward, local(24, 17, 30))
    assert sum("Tổng kết ngày" in t for t in ward.inbox(BOSS)) == 1
    assert not any("Tổng kết ngày" in t for t in ward.inbox(LEADER))


@pytest.mark.parametrize(("text", "days"), [
    ("t2 t4 t6", ["mon", "wed", "fri"]), ("thứ 2, thứ 4", ["mon", "wed"]),
    ("thu2 thu5", ["mon", "thu"]), ("tue thu", ["tue", "thu"]), ("2,4,6", ["mon", "wed", "fri"]),
    ("t7 cn", ["sat", "sun"]), ("hằng ngày", ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]),
])
def test_reminder_days_as_people_write_them(text: str, days: list[str]) -> None:
    assert parse_days(text) == days


@pytest.mark.parametrize(("text", "period"), [
    ("1/12 - 31/12", (date(2026, 12, 1), date(2026, 12, 31))),  # started already: fine
    ("15/12 - 15/1", (date(2026, 12, 15), date(2027, 1, 15))),  # over new year
    ("31/12", (date(2026, 12, 20), date(2026, 12, 31))),
    ("1/11 - 30/11", None),  # over already
    ("hôm nay", None),
])
def test_campaign_periods_as_people_write_them(
    text: str, period: tuple[date, date] | None
) -> None:
    assert _parse_period(text, date(2026, 12, 20)) == period


async def test_an_old_form_button_does_not_break_the_form(ward: Ward) -> None:
    await create_campaign(ward)
    assert "Tên đợt là gì?" in await ward.press(BOSS, "➕ Tạo đợt mới")
    stale = await ward.press(BOSS, "T2, T4, T6 lúc 19:00")  # from the first form
    assert "bấm một nút bên trên" in stale
    [step] = await ward.say(BOSS, "Đợt 2")
    assert "thúc đẩy việc nào" in step


async def test_a_group_reached_by_relay_gets_its_reminder_through_its_leader(
    ward: Ward,
) -> None:
    [saved] = await ward.say(BOSS, "/chuyentiep TDP02 chuyentiep")
    assert "TDP02: qua người chuyển tin" in saved
    await create_campaign(ward)
    before = len(ward.inbox(OTHER_LEADER))
    await tick_at(ward, local(25, 19, 0))
    assert len(chat(ward, "TDP01")) == 1
    assert chat(ward, "TDP02") == []  # its chat is not used: the leader forwards
    await until(lambda: len(ward.inbox(OTHER_LEADER)) >= before + 2, "the relay")
    forward, ask = ward.inbox(OTHER_LEADER)[before:before + 2]
    assert forward.startswith("Phường Hòa Bình · 25/11/2026")
    assert "Tổ TDP02 — Có điện thoại thông minh: 0%" in forward
    assert "TDP02" in ask and labels(ward.tg.sent_to(OTHER_LEADER)[before + 1]) == [
        "✅ Đã chuyển vào nhóm"]

