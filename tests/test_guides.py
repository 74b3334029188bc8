"""Guides in the group chats, end to end on the real stack: a coordinator shares a guide
from /hoidap to every group (Telegram through the fake Bot API with real PTB, Zalo through
the fake Zalo API), residents open the steps privately and the reads count per group, and
a series posts its guides on schedule under an injected clock, never at night."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.app import BotApp
from bot.clock import FrozenClock
from bot.config import Config
from bot.core import Chat, Sender
from bot.roles import Role
from bot.services.guides import link_payload, parse_code, parse_link
from bot.services.series import parse_rhythm
from tests.conftest import shared_content
from tests.fake_telegram import FakeTelegram
from tests.fake_zalo import FakeZalo
from tests.telegram_people import Ward, labels, plain, until

TOKEN = "123456:TEST-TOKEN"
BOSS, LEADER, RESIDENT, NEIGHBOUR = 901, 902, 903, 904
TG_CHATS = {"TDP01": -4001, "TDP02": -4002, "TDP03": -4003}
ZALO_CHATS = {"TDP01": "zg-01", "TDP02": "zg-02"}
Z_BOSS, Z_RESIDENT = "z-boss", "z-res"
START = datetime(2026, 11, 24, 4, 0, tzinfo=UTC)  # Tuesday, 11:00 in Hà Nội
TITLE = "VNeID là gì?"
SHORT = "VNeID là ứng dụng định danh điện tử của Bộ Công an"
STEP_ONE = "Mở CH Play (điện thoại Android) hoặc App Store (iPhone)."


@dataclass
class Both:
    ward: Ward
    zl: FakeZalo
    groups: dict[str, int]


@pytest.fixture
async def both(tmp_path: Path, sqlite_url: str) -> AsyncIterator[Both]:
    # sqlite_url: <tmp_path>/bot.db starts as a copy of the migrated template
    """One ward: three Telegram group chats, two Zalo group chats, staff on both."""
    async with FakeTelegram(token=TOKEN, bot_username="cds_test_bot") as tg, FakeZalo() as zl:
        config = Config.model_validate({
            "database": {"url": f"sqlite+aiosqlite:///{tmp_path}/bot.db"},
            "telegram": {"token": TOKEN, "api_base_url": tg.base_url},
            "zalo": {"enabled": True, "token": zl.token, "api_base_url": zl.base_url,
                     "poll_interval_seconds": 0.01,
                     "per_second": 50, "group_per_minute": 600},
            "outbox": {"private_per_second": 100, "per_second": 200, "group_per_minute": 600,
                       "workers": 2},
            "web": {"port": 0},
        })
        app = BotApp(config, clock=FrozenClock(START), content=shared_content())
        await app.db.upgrade()
        services = app.context.services
        await services.places.add_ward("HB", "Phường Hòa Bình")
        groups = {}
        for code in TG_CHATS:
            groups[code] = (await services.places.add_group("HB", code, f"Tổ {code}")).id
        people: list[tuple[str, str, Role, str | None]] = [
            ("telegram", str(BOSS), Role.COORDINATOR, None),
            ("telegram", str(LEADER), Role.LEADER, "TDP02"),
            ("telegram", str(RESIDENT), Role.RESIDENT, "TDP01"),
            ("zalo", Z_BOSS, Role.COORDINATOR, None),
            ("zalo", Z_RESIDENT, Role.RESIDENT, "TDP02"),
        ]
        for platform, user, role, group in people:
            await services.access.grant(platform=platform, user_id=user, role=role,
                                        ward_code="HB", group_code=group)
        boss = await services.access.identify("telegram", Sender(str(BOSS), "Cán bộ Hoa"))
        for code, chat_id in TG_CHATS.items():
            await services.chats.bind(boss, "telegram",
                                      Chat(str(chat_id), "group", f"Nhóm {code}"), code)
        for code, zalo_chat in ZALO_CHATS.items():
            await services.chats.bind(boss, "zalo", Chat(zalo_chat, "group", f"Zalo {code}"),
                                      code)
        await app.start()
        try:
            yield Both(Ward(tg, app, app.context.clock), zl, groups)  # type: ignore[arg-type]
        finally:
            await app.stop()


def buttons(message: dict[str, Any]) -> list[dict[str, Any]]:
    return [b for row in (message.get("reply_markup") or {}).get("inline_keyboard", [])
            for b in row]


async def zalo_say(zl: FakeZalo, user: str, text: str, *, count: int = 1) -> list[str]:
    before = len(zl.sent_to(user))
    zl.text(user, user, text, name="Chị Mai")
    sent = await zl.wait_sent(user, before + count)
    return [str(m["text"]) for m in sent[before:]]


def choice(menu: str, label: str) -> str:
    """The number to type for a label in a numbered menu."""
    for line in menu.splitlines():
        found = re.match(r"^(\d+)\. (.*)$", line)
        if found and label in found.group(2):
            return found.group(1)
    raise AssertionError(f"no {label!r} in menu:\n{menu}")


# --- the pieces --------------------------------------------------------------------------
def test_links_fit_telegram_and_read_back() -> None:
    known = {"vneid_what", "vneid", "scam_links_otp"}
    for key in known:
        payload = link_payload(key, 123456789)
        assert len(payload) <= 64 and re.fullmatch(r"[A-Za-z0-9_-]+", payload)
        assert parse_link(payload, known) == (key, 123456789)
        assert parse_link(link_payload(key), known) == (key, None)
    long_key = "x" * 40
    assert len(link_payload(long_key, 999999999)) <= 64
    assert parse_link("g_nope_3", known) is None
    assert parse_link("ABCD2345", known) is None  # an invite code is not a guide link
    assert parse_code("hd 3") == 3 and parse_code("HD3") == 3
    assert parse_code("hd vneid_what") == "vneid_what"
    assert parse_code("hôm nay họp") is None and parse_code("hd") is None


def test_every_guide_button_payload_fits_64_bytes() -> None:
    from bot.services.explanations import load_library

    for key in load_library("vi").topics:
        for payload in (f"gsh:{key}", f"cd:t:{key}", link_payload(key, 999_999_999)):
            assert 1 <= len(payload.encode()) <= 64, payload


def test_rhythms_as_people_write_them() -> None:
    assert parse_rhythm("thứ Ba và thứ Sáu, 19:00") == (["tue", "fri"], "19:00")
    assert parse_rhythm("t3 t6 19h30") == (["tue", "fri"], "19:30")
    assert parse_rhythm("mỗi tuần một bài") == (["mon"], "19:00")
    assert parse_rhythm("thu bay 8h") == (["sat"], "08:00")
    with pytest.raises(Exception, match="bad_rhythm"):
        parse_rhythm("khi nào rảnh")


# --- share a guide -------------------------------------------------------------------------
async def test_coordinator_shares_a_guide_to_every_telegram_group(both: Both) -> None:
    ward, tg = both.ward, both.ward.tg
    [_resident_view] = await ward.say(RESIDENT, "/hoidap vneid là gì")
    assert "📣 Gửi vào nhóm" not in labels(tg.sent_to(RESIDENT)[-1])  # residents: no button
    [answer] = await ward.say(BOSS, "/hoidap vneid là gì")
    assert TITLE in answer and "📣 Gửi vào nhóm" in labels(tg.sent_to(BOSS)[-1])
    header = await ward.press(BOSS, "📣 Gửi vào nhóm")
    assert "Xem trước" in header
    _, preview, choices = [plain(m) for m in await tg.wait_sent(BOSS, 4)][-3:]
    assert preview.startswith(f"📖 {TITLE}") and SHORT in preview
    assert "chưa chọn tổ nào" in choices
    assert "Gửi tới: TDP01, TDP02, TDP03" in await ward.press(BOSS, "⬜ Cả phường", edit=True)
    queued = await ward.press(BOSS, "📤 Gửi ngay")
    assert "đang được gửi tới 5 nhóm chat" in queued  # 3 on Telegram, 2 on Zalo
    for code, chat_id in TG_CHATS.items():
        [post] = await tg.wait_sent(chat_id, 1)
        text = plain(post)
        assert text.startswith(f"📖 {TITLE}") and SHORT in text and "— " in text
        assert STEP_ONE not in text and "hd " not in text  # one screen: no steps here
        [link] = buttons(post)
        assert link["text"] == "📝 Xem từng bước" and "callback_data" not in link
        assert link["url"] == (f"https://t.me/cds_test_bot?start=g_vneid_what_"
                               f"{both.groups[code]}")
    await until(lambda: "đã gửi tới" in ward.inbox(BOSS)[-1], "the delivery report")
    assert "đã gửi tới 5/5 nhóm chat" in ward.inbox(BOSS)[-1]
    await asyncio.sleep(0.2)
    assert all(len(tg.sent_to(c)) == 1 for c in TG_CHATS.values())  # once each

    # A resident of TDP01 taps the link: the steps come in his private chat, not the group.
    [steps] = await ward.say(RESIDENT, f"/start g_vneid_what_{both.groups['TDP01']}")
    assert f"{TITLE} — từng bước:" in steps and f"1. {STEP_ONE}" in steps
    assert all(len(tg.sent_to(c)) == 1 for c in TG_CHATS.values())
    # Opening it again is not a second read; a link naming a group the guide never went
    # to counts for the reader's own group (here: the same read again).
    await ward.say(RESIDENT, f"/start g_vneid_what_{both.groups['TDP01']}")
    await ward.say(RESIDENT, "/start g_vneid_what_99")
    [gone] = await ward.say(RESIDENT, "/start g_old_guide_1")
    assert "Hướng dẫn này không còn nữa" in gone
    [report] = await ward.say(BOSS, "/hoidap thongke")
    assert "VNeID là gì?: 5 tin đã gửi · 1 lượt xem" in report
    assert "Tổ đã xem: TDP01 (1)" in report
    assert "Tổ chưa ai xem: TDP02, TDP03" in report


async def test_leader_shares_only_to_his_group_and_forged_presses_are_refused(
    both: Both,
) -> None:
    ward, tg = both.ward, both.ward.tg
    await ward.say(LEADER, "/hoidap vneid là gì")
    await ward.press(LEADER, "📣 Gửi vào nhóm")
    await tg.wait_sent(LEADER, 4)
    assert labels(tg.sent_to(LEADER)[-1])[0] == "✅ TDP02"
    await ward.press(LEADER, "📤 Gửi ngay")
    [post] = await tg.wait_sent(TG_CHATS["TDP02"], 1)
    assert TITLE in plain(post)
    await asyncio.sleep(0.2)
    assert not tg.sent_to(TG_CHATS["TDP01"]) and not tg.sent_to(TG_CHATS["TDP03"])
    # A resident forging the share button gets the polite refusal, and nothing is sent.
    tg.callback(RESIDENT, RESIDENT, 1, "gsh:vneid_what")
    await until(lambda: any("Tổ trưởng" in t for t in ward.inbox(RESIDENT)), "the refusal")


async def test_group_replies_and_steps_never_land_in_the_group(both: Both) -> None:
    ward, tg = both.ward, both.ward.tg
    group = TG_CHATS["TDP01"]
    await ward.say(BOSS, "/hoidap vneid là gì")
    await ward.press(BOSS, "📣 Gửi vào nhóm")
    await tg.wait_sent(BOSS, 4)
    await ward.press(BOSS, "⬜ Cả phường", edit=True)
    await ward.press(BOSS, "📤 Gửi ngay")
    [post] = await tg.wait_sent(group, 1)
    # A reply to the guide post without addressing the bot: nothing (as for notices).
    tg.message(group, RESIDENT, "Cái này cài ở đâu ạ?", chat_type="group",
               reply_to_bot=int(post["message_id"]))
    # Addressed by name: the bot answers in the group, and its steps button is a link
    # to the private chat, never a button that would post the steps into the group.
    tg.message(group, RESIDENT, "@cds_test_bot vneid là gì", chat_type="group")
    [_, answer] = await tg.wait_sent(group, 2)
    assert TITLE in plain(answer)
    steps = next(b for b in buttons(answer) if b["text"] == "📝 Xem từng bước")
    assert steps["url"] == "https://t.me/cds_test_bot?start=g_vneid_what"
    assert "📣 Gửi vào nhóm" not in labels(answer)
    # An old steps button pressed in the group: a private hint, nothing in the group.
    tg.callback(group, RESIDENT, int(answer["message_id"]), "faq:steps:vneid_what")
    answered = await tg.wait_for_call("answerCallbackQuery",
                                      lambda c: "nhắn riêng" in str(c.params.get("text")))
    assert "@cds_test_bot" in str(answered.params["text"])
    # "/start g_..." typed in the group: a hint, never the steps.
    tg.message(group, RESIDENT, "/start@cds_test_bot g_vneid_what", chat_type="group")
    [*_, hint] = await tg.wait_sent(group, 3)
    assert "nhắn riêng cho trợ lý" in plain(hint) and STEP_ONE not in plain(hint)
    await asyncio.sleep(0.2)
    assert len(tg.sent_to(group)) == 3


async def test_coordinator_on_zalo_shares_with_numbers_and_reads_come_by_code(
    both: Both,
) -> None:
    zl = both.zl
    [answer] = await zalo_say(zl, Z_BOSS, "/hoidap vneid là gì")
    assert TITLE in answer
    shown = await zalo_say(zl, Z_BOSS, choice(answer, "📣 Gửi vào nhóm"), count=3)
    header, preview, choices = shown
    assert "Xem trước" in header
    assert f"📖 {TITLE}" in preview and "nhắn riêng cho trợ lý: hd 1" in preview
    [choices] = await zalo_say(zl, Z_BOSS, choice(choices, "Cả phường"))
    assert "Gửi tới: TDP01, TDP02, TDP03" in choices
    [queued] = await zalo_say(zl, Z_BOSS, choice(choices, "Gửi ngay"))
    assert "đang được gửi tới 5 nhóm chat" in queued
    for zalo_chat in ZALO_CHATS.values():
        [post] = await zl.wait_sent(zalo_chat, 1)
        assert post["text"].startswith(f"📖 {TITLE}") and SHORT in post["text"]
        assert "Muốn xem từng bước, bà con nhắn riêng cho trợ lý: hd 1" in post["text"]
        assert STEP_ONE not in post["text"]
    [post] = await both.ward.tg.wait_sent(TG_CHATS["TDP03"], 1)
    assert "hd 1" not in plain(post) and buttons(post)[0]["url"].endswith(
        f"start=g_vneid_what_{both.groups['TDP03']}")
    # A resident of TDP02 types the code in her private chat: the steps, and a read.
    [steps] = await zalo_say(zl, Z_RESIDENT, "hd 1")
    assert f"{TITLE} — từng bước:" in steps and f"1. {STEP_ONE}" in steps
    await asyncio.sleep(0.2)
    assert all(len(zl.sent_to(c)) == 1 for c in ZALO_CHATS.values())
    stats = await both.ward.app.context.services.guides.stats(1)
    [guide] = stats
    assert guide.key == "vneid_what" and guide.reads == 1
    assert [(g.code, g.reads) for g in guide.groups] == [("TDP02", 1), ("TDP01", 0),
                                                         ("TDP03", 0)]


# --- a series ------------------------------------------------------------------------------
async def test_series_of_three_twice_a_week_posts_on_schedule_never_at_night(
    both: Both,
) -> None:
    ward, tg, zl = both.ward, both.ward.tg, both.zl
    clock: FrozenClock = ward.clock  # type: ignore[assignment]
    tz = ward.app.config.bot.tz
    [ask] = await ward.say(BOSS, "/chuyende tao")
    assert "tên là gì" in ask
    await ward.say(BOSS, "Cùng làm VNeID")
    for name in ("VNeID là gì?", "VNeID mức 1 và mức 2 khác nhau thế nào?",
                 "Kích hoạt VNeID mức 2 ở đâu, mang gì?"):
        # The library's guides come a page at a time (the shared pager): turn to the page.
        for _ in range(5):
            if f"⬜ {name}" in labels({"reply_markup": ward.keyboards(BOSS)[-1][1]}):
                break
            await ward.press(BOSS, "▶", edit=True)
        shown = await ward.press(BOSS, f"⬜ {name}", edit=True)
        assert name in shown
    assert "✅ 3. Kích hoạt VNeID mức 2 ở đâu, mang gì?" in labels(
        {"reply_markup": ward.keyboards(BOSS)[-1][1]})
    await ward.press(BOSS, "➡️ Chọn xong")
    [bad] = await ward.say(BOSS, "thứ Ba, 22:00")
    assert "giờ yên lặng" in bad
    await ward.press(BOSS, "thứ Ba và thứ Sáu, 19:00")
    await ward.press(BOSS, "⬜ Cả phường", edit=True)
    await ward.press(BOSS, "➡️ Tiếp tục")
    plan = await ward.press(BOSS, "▶️ Từ hôm nay, tới khi gửi hết bài")
    assert "1. VNeID là gì? — 19:00 24/11/2026" in plan
    assert "3. Kích hoạt VNeID mức 2 ở đâu, mang gì? — 19:00 01/12/2026" in plan
    created = await ward.press(BOSS, "✅ Tạo chuyên đề")
    assert "Đã tạo chuyên đề #1 Cùng làm VNeID" in created

    posted: list[tuple[str, datetime]] = []  # (first line of the post, local time) per chat
    counts = {c: 0 for c in [*TG_CHATS.values(), *ZALO_CHATS.values()]}

    async def hour(to: datetime | None = None) -> None:
        clock.set(to) if to else clock.advance(timedelta(hours=1))
        await ward.app.scheduler.run_now("guide-series")
        ward.app.context.services.outbox.wake()
        await ward.app.context.services.outbox.drain(within=10)  # sent before time moves on
        for chat in counts:
            sent = tg.sent_to(chat) if isinstance(chat, int) else zl.sent_to(chat)
            for message in sent[counts[chat]:]:
                text = plain(message) if isinstance(chat, int) else str(message["text"])
                posted.append((text.splitlines()[2], clock.now().astimezone(tz)))
            counts[chat] = len(sent)

    # The bot is down over the first slot (Tue 19:00) and back at 22:00: nothing at night,
    # nothing late next morning; the first guide waits for Friday's slot.
    await hour(datetime(2026, 11, 24, 11, 0, tzinfo=UTC))  # 18:00 local
    assert not posted
    await hour(datetime(2026, 11, 24, 15, 0, tzinfo=UTC))  # 22:00 local
    for _ in range(12 * 24):  # hour by hour for twelve days
        await hour()
    for chat in TG_CHATS.values():
        await tg.wait_sent(chat, 3)
    for zalo_chat in ZALO_CHATS.values():
        await zl.wait_sent(zalo_chat, 3)
    assert all(7 <= at.hour < 21 for _, at in posted), posted  # never at night
    by_time = sorted({(at, line) for line, at in posted})
    assert [t.strftime("%a %d/%m %H:%M") for t, _ in by_time] == ["Fri 27/11 19:00", "Tue 01/12 19:00", "Fri 04/12 19:00"]
    assert [line for _, line in by_time] == [
        f"📖 {TITLE}", "📖 VNeID mức 1 và mức 2 khác nhau thế nào?",
        "📖 Kích hoạt VNeID mức 2 ở đâu, mang gì?"]
    assert len(posted) == 3 * 5  # each guide once in each of the five group chats
    first = plain(tg.sent_to(TG_CHATS["TDP01"])[0])
    assert first.startswith("📚 Cùng làm VNeID — bài 1/3")
    [listed] = await ward.say(BOSS, "/chuyende")
    assert "#1 Cùng làm VNeID — đã kết thúc" in listed
    assert "✅ VNeID là gì? (19:00 27/11/2026)" in listed
    # Reads from a series post count for its group as well.
    await ward.say(RESIDENT, f"/start g_vneid_what_{both.groups['TDP01']}")
    stats = {g.key: g for g in await ward.app.context.services.guides.stats(1)}
    assert stats["vneid_what"].posts == 5 and stats["vneid_what"].reads == 1


async def test_series_pause_resume_end_and_campaign_series(both: Both) -> None:
    ward = both.ward
    services = ward.app.context.services
    boss = await services.access.identify("telegram", Sender(str(BOSS), "Cán bộ Hoa"))
    campaign = await services.campaigns.create(
        boss, 1, title="Tháng VNeID", step_key="vneid", target=80,
        starts_on=START.date(), ends_on=START.date() + timedelta(days=30),
        group_ids=[both.groups["TDP01"]], days=["mon"], at_time="19:00")
    [listed] = await ward.say(BOSS, "/chuyende")
    assert "Chưa có chuyên đề nào" in listed
    shown = await ward.press(BOSS, "🚩 Theo chiến dịch: Tháng VNeID")
    assert "Đã chọn:" in shown  # the step's guides come chosen
    await ward.press(BOSS, "➡️ Chọn xong")
    await ward.press(BOSS, "Mỗi tuần một bài: thứ Hai, 19:00")
    plan = await ward.press(BOSS, "➡️ Tiếp tục")  # the campaign's groups and period
    assert "TDP01" in plan and "đến 24/12/2026" in plan
    created = await ward.press(BOSS, "✅ Tạo chuyên đề")
    assert "«Kích hoạt VNeID mức 2 ở đâu, mang gì?» sẽ gửi lúc 19:00 30/11/2026" in created
    [series] = await services.series.in_ward(1)
    assert series.campaign_id == campaign.id and series.group_ids == [both.groups["TDP01"]]
    [listed] = await ward.say(BOSS, "/chuyende")
    assert "⏭ Kích hoạt VNeID mức 2 ở đâu, mang gì? (19:00 30/11/2026)" in listed
    paused = await ward.press(BOSS, "⏸ Tạm dừng #1", edit=True)
    assert "tạm dừng" in paused
    resumed = await ward.press(BOSS, "▶️ Tiếp tục #1", edit=True)
    assert "đang chạy" in resumed
    await services.campaigns.set_state(boss, campaign.id, "ended")
    await ward.app.scheduler.run_now("guide-series")  # the campaign ended: so does its series
    [series] = await services.series.in_ward(1)
    assert series.state == "ended" and series.next_index == 0


async def test_a_crash_between_queueing_and_marking_sends_nothing_twice(both: Both) -> None:
    from bot.jobs.series import post_run

    ward, tg = both.ward, both.ward.tg
    services = ward.app.context.services
    boss = await services.access.identify("telegram", Sender(str(BOSS), "Cán bộ Hoa"))
    await services.series.create(
        boss, 1, title="VNeID", topic_keys=["vneid_what", "vneid_levels"],
        group_ids=[both.groups["TDP01"]], days=["tue"], at_time="19:00",
        starts_on=START.date(), ends_on=None)
    ward.clock.set(datetime(2026, 11, 24, 12, 0, tzinfo=UTC))  # type: ignore[attr-defined]
    [run] = await services.series.due()
    assert await post_run(ward.app.context, run) == 2  # queued, then the process dies
    await ward.app.scheduler.run_now("guide-series")  # the next tick: the same slot again
    await ward.app.scheduler.run_now("guide-series")
    [post] = await tg.wait_sent(TG_CHATS["TDP01"], 1)
    assert TITLE in plain(post)
    await both.zl.wait_sent(ZALO_CHATS["TDP01"], 1)
    await asyncio.sleep(0.3)
    assert len(tg.sent_to(TG_CHATS["TDP01"])) == 1
    assert len(both.zl.sent_to(ZALO_CHATS["TDP01"])) == 1
    [series] = await services.series.in_ward(1)
    assert series.next_index == 1 and series.coming == ["vneid_levels"]


# --- the service on both databases ---------------------------------------------------------
async def test_series_slots_move_on_once_even_with_two_runs_at_once(
    db_url: str, tmp_path: Path,
) -> None:
    """Two ticks of the same slot at the same moment move the series on once (the posts
    they queue share their outbox keys); the reads and the numbers work on both databases."""
    from bot.context import build_context
    from bot.db import Database

    db = Database(db_url)
    await db.upgrade()
    try:
        clock = FrozenClock(datetime(2026, 11, 24, 11, 30, tzinfo=UTC))  # Tue 18:30 local
        ctx = build_context(Config.model_validate({"database": {"url": db_url}}), db, clock)
        services = ctx.services
        await services.places.add_ward("HB", "Phường Hòa Bình")
        group = await services.places.add_group("HB", "TDP01", "Tổ 1")
        await services.access.grant(platform="telegram", user_id="1", role=Role.COORDINATOR,
                                    ward_code="HB")
        await services.access.grant(platform="telegram", user_id="2", role=Role.RESIDENT,
                                    ward_code="HB", group_code="TDP01")
        boss = await services.access.identify("telegram", Sender("1", "Hoa"))
        guides, series = services.guides, services.series
        created = await series.create(
            boss, 1, title="VNeID", topic_keys=["vneid_what", "vneid_levels"],
            group_ids=[group.id], days=["tue", "fri"], at_time="19:00",
            starts_on=clock.now().date(), ends_on=None)
        assert await series.due() == []  # 18:30: not yet
        clock.advance(timedelta(minutes=31))
        first, second = await asyncio.gather(series.due(), series.due())
        assert [(r.series.id, r.index, r.topic_key) for r in first + second] == [
            (created.id, 0, "vneid_what")] * 2  # both see the slot ...
        marked = await asyncio.gather(series.mark_sent(first[0]), series.mark_sent(second[0]))
        assert sorted(marked) == [False, True]  # ... only one moves the series on
        assert await series.due() == []
        assert await guides.number_of("vneid_what") == 1
        assert await guides.number_of("vneid_levels") == 2
        assert await guides.number_of("vneid_what") == 1
        assert await guides.key_of(2) == "vneid_levels"
        resident = await services.access.identify("telegram", Sender("2", "Bà Tư"))
        # Not posted yet: a read still counts for the reader's own group.
        counted = await guides.record_read(resident, "vneid_what", None, "code")
        assert counted is not None and counted.code == "TDP01"
        assert await guides.stats(1) == []  # nothing posted to a group yet
    finally:
        await db.dispose()
