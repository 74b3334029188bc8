"""Relay through the group leaders (issue #13), end to end: a ward of 40 groups, 10 bound
on Telegram, 10 on Zalo and 20 reached only through their leaders (10 leaders on Telegram,
10 on Zalo). A notice reaches 20 groups directly and 20 leaders get the text to forward;
after 12 confirm, the report says 20 direct, 12 relayed, 8 waiting; the reminder goes only
to the 8 leaders, never at night; then the sender learns which groups still wait."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.app import BotApp
from bot.clock import FrozenClock
from bot.config import Config
from bot.core import Chat, Role, Sender
from tests.conftest import Harness, shared_content
from tests.fake_telegram import FakeTelegram
from tests.fake_zalo import FakeZalo
from tests.telegram_people import Ward, labels, plain, until

TOKEN = "123456:TEST-TOKEN"
BOSS = 1101
EVENING = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)  # 19:00 in Hanoi

TG_CHATS = {f"TDP{n:02d}": -4000 - n for n in range(1, 11)}
ZALO_CHATS = {f"TDP{n:02d}": f"zg-{n}" for n in range(11, 21)}
TG_LEADERS = {f"TDP{n:02d}": 5000 + n for n in range(21, 31)}
ZALO_LEADERS = {f"TDP{n:02d}": f"zl-{n}" for n in range(31, 41)}
DONE = "✅ Đã chuyển vào nhóm"


@dataclass
class World:
    ward: Ward
    zl: FakeZalo
    app: BotApp
    clock: FrozenClock


@pytest.fixture
async def world(tmp_path: Path, sqlite_url: str) -> AsyncIterator[World]:
    # sqlite_url: <tmp_path>/bot.db starts as a copy of the migrated template
    async with FakeTelegram(token=TOKEN) as tg, FakeZalo() as zl:
        config = Config.model_validate({
            "database": {"url": f"sqlite+aiosqlite:///{tmp_path}/bot.db"},
            "telegram": {"token": TOKEN, "api_base_url": tg.base_url},
            "zalo": {"enabled": True, "token": zl.token, "api_base_url": zl.base_url,
                     "per_second": 100, "group_per_minute": 600, "poll_interval_seconds": 0},
            "outbox": {"private_per_second": 100, "per_second": 500, "group_per_minute": 600},
            "web": {"port": 0},
        })
        clock = FrozenClock(EVENING)
        app = BotApp(config, clock=clock, content=shared_content())
        await app.db.upgrade()
        services = app.context.services
        await services.places.add_ward("HB", "Phường Hòa Bình")
        for n in range(1, 41):
            await services.places.add_group("HB", f"TDP{n:02d}", f"Tổ dân phố {n}")
        await services.access.grant(platform="telegram", user_id=str(BOSS),
                                    role=Role.COORDINATOR, ward_code="HB")
        boss = await services.access.identify("telegram", Sender(str(BOSS), "Cán bộ Hoa"))
        for code, chat in TG_CHATS.items():
            await services.chats.bind(boss, "telegram", Chat(str(chat), "group", code), code)
        for code, zalo_chat in ZALO_CHATS.items():
            await services.chats.bind(boss, "zalo", Chat(zalo_chat, "group", code), code)
        for code, user in TG_LEADERS.items():
            await services.access.grant(platform="telegram", user_id=str(user),
                                        role=Role.LEADER, ward_code="HB", group_code=code)
        for code, zalo_user in ZALO_LEADERS.items():
            await services.access.grant(platform="zalo", user_id=zalo_user,
                                        role=Role.LEADER, ward_code="HB", group_code=code)
        await app.start()
        try:
            yield World(Ward(tg, app, clock), zl, app, clock)
        finally:
            await app.stop()


async def notice_to_ward(ward: Ward, text: str) -> list[str]:
    await ward.say(BOSS, f"/thongbao {text}", count=3)
    await ward.press(BOSS, "⬜ Cả phường", edit=True)
    return [await ward.press(BOSS, "📤 Gửi ngay")]


def relay_texts(world: World) -> tuple[dict[str, str], dict[str, str]]:
    """What each leader got: the text to forward (first message) and the question."""
    texts, asks = {}, {}
    for code, user in TG_LEADERS.items():
        sent = world.ward.inbox(user)
        if sent:
            texts[code] = sent[0]
        if len(sent) > 1:
            asks[code] = sent[1]
    for code, zalo_user in ZALO_LEADERS.items():
        zsent = [str(m["text"]) for m in world.zl.sent_to(zalo_user)]
        if zsent:
            texts[code] = zsent[0]
        if len(zsent) > 1:
            asks[code] = zsent[1]
    return texts, asks


async def test_a_ward_of_40_groups_direct_and_through_leaders(world: World) -> None:
    ward, zl, app = world.ward, world.zl, world.app
    [queued] = await notice_to_ward(ward, "Tối thứ Bảy họp tổ lúc 19h30 tại nhà văn hóa")
    assert "tới 20 nhóm chat" in queued and "qua người chuyển tin của 20 tổ" in queued

    # 20 groups directly: 10 Telegram group chats, 10 Zalo group chats.
    for chat in TG_CHATS.values():
        [message] = await ward.tg.wait_sent(chat, 1)
        assert "Tối thứ Bảy họp tổ" in plain(message)
    for zalo_chat in ZALO_CHATS.values():
        await zl.wait_sent(zalo_chat, 1)
    # 20 leaders: the text to forward, then one line and the button (numbered on Zalo).
    await until(lambda: len(relay_texts(world)[1]) == 20, "20 leaders asked")
    texts, asks = relay_texts(world)
    for code, text in texts.items():
        assert text.startswith("Phường Hòa Bình · 24/11/2026\n\n📢 THÔNG BÁO")
        assert "Tối thứ Bảy họp tổ lúc 19h30" in text and len(text) <= 2000
        assert "Đã chuyển vào nhóm" not in text and "1." not in text  # forwardable as is
        assert code in asks[code] and "chuyển nguyên tin trên" in asks[code]
    for user in TG_LEADERS.values():
        assert labels(ward.tg.sent_to(user)[1]) == [DONE]
        assert not labels(ward.tg.sent_to(user)[0])  # no button inside the forwarded text
    for zalo_user in ZALO_LEADERS.values():
        assert "1. ✅ Đã chuyển vào nhóm" in str(zl.sent_to(zalo_user)[1]["text"])

    # The author's report: 20 direct, 20 waiting.
    await until(lambda: "đã gửi tới" in ward.inbox(BOSS)[-1], "the report")
    report = ward.inbox(BOSS)[-1]
    assert "đã gửi tới 20/20 nhóm chat" in report
    assert "Gửi thẳng vào nhóm: 20 · Đã chuyển qua tổ trưởng: 0 · Đang chờ chuyển: 20" in report

    # 12 leaders confirm: 6 press the button on Telegram, 6 answer "1" on Zalo.
    tg_codes, zalo_codes = list(TG_LEADERS)[:6], list(ZALO_LEADERS)[:6]
    for code in tg_codes:
        thanks = await ward.press(TG_LEADERS[code], DONE, edit=True)
        assert f"Đã ghi nhận tin đã tới nhóm {code}" in thanks
    for code in zalo_codes:
        before = len(zl.sent_to(ZALO_LEADERS[code]))
        zl.text(ZALO_LEADERS[code], ZALO_LEADERS[code], "1")
        [thanks_z] = (await zl.wait_sent(ZALO_LEADERS[code], before + 1))[before:]
        assert f"Đã ghi nhận tin đã tới nhóm {code}" in thanks_z["text"]
    status = await ward.press(BOSS, "📊 Xem tình hình chuyển tin")
    assert "Gửi thẳng vào nhóm: 20 · Đã chuyển qua tổ trưởng: 12 · Đang chờ chuyển: 8 · " \
           "Không gửi được: 0" in status
    waiting = sorted([*list(TG_LEADERS)[6:], *list(ZALO_LEADERS)[6:]])
    assert f"⏳ Đang chờ: {', '.join(waiting)}" in status

    # 3 hours later it is 22:00: quiet hours, nobody is reminded.
    counts = {u: len(ward.inbox(u)) for u in TG_LEADERS.values()}
    zcounts = {u: len(zl.sent_to(u)) for u in ZALO_LEADERS.values()}
    world.clock.advance(timedelta(hours=3))
    assert await app.context.jobs.relay.tick() == 0
    # 07:05 next morning: the reminder, once, to the 8 who have not confirmed.
    world.clock.set(datetime(2026, 11, 25, 0, 5, tzinfo=UTC))
    assert await app.context.jobs.relay.tick() == 8
    assert await app.context.jobs.relay.tick() == 0  # once
    app.context.services.outbox.wake()
    for code in waiting:
        if code in TG_LEADERS:
            user = TG_LEADERS[code]
            [reminder] = (await ward.told(user, counts[user] + 1))[counts[user]:]
        else:
            zuser = ZALO_LEADERS[code]
            reminder = str((await zl.wait_sent(zuser, zcounts[zuser] + 1))[-1]["text"])
        assert "Nhắc nhẹ" in reminder and code in reminder
    for code in tg_codes:
        assert len(ward.inbox(TG_LEADERS[code])) == counts[TG_LEADERS[code]]
    for code in zalo_codes:
        assert len(zl.sent_to(ZALO_LEADERS[code])) == zcounts[ZALO_LEADERS[code]]

    # One of them confirms late with /dachuyen; 3 hours later the sender hears of the 7.
    late = waiting[0]
    assert late in TG_LEADERS
    [answer] = await ward.say(TG_LEADERS[late], "/dachuyen")
    assert f"Đã ghi nhận tin đã tới nhóm {late}" in answer
    told = len(ward.inbox(BOSS))
    world.clock.advance(timedelta(hours=3, minutes=1))
    assert await app.context.jobs.relay.tick() == 1
    app.context.services.outbox.wake()
    [late_note] = (await ward.told(BOSS, told + 1))[told:]
    still = waiting[1:]
    assert f"{len(still)} nhóm vẫn chưa nhận được tin" in late_note
    assert ", ".join(still) in late_note
    assert "Đã chuyển qua tổ trưởng: 13 · Đang chờ chuyển: 7" in late_note


async def test_progress_and_reach_show_how_each_group_is_reached(world: World) -> None:
    ward = world.ward
    [progress] = await ward.say(BOSS, "/tiendo")
    assert "TDP01" in progress and "gửi thẳng" in progress
    assert "qua tổ trưởng" in progress
    [reach] = await ward.say(BOSS, "/chuyentiep")
    assert "• TDP21: qua người chuyển tin — người chuyển:" in reach
    assert "• TDP01: bot gửi thẳng vào nhóm chat" in reach
    [one] = await ward.say(BOSS, "/chuyentiep TDP40")
    assert "• TDP40: qua người chuyển tin" in one and "TDP01" not in one
    [saved] = await ward.say(BOSS, "/chuyentiep TDP01 cahai")
    assert "TDP01: cả hai" in saved
    [group] = await ward.say(BOSS, "/tiendo TDP01")
    assert "Nhận tin: cả hai" in group
    [refused] = await ward.say(TG_LEADERS["TDP21"], "/chuyentiep TDP01 tructiep")
    assert "chưa có quyền" in refused


async def test_a_group_reached_both_ways_counts_once(world: World) -> None:
    ward = world.ward
    await ward.say(TG_LEADERS["TDP21"], "/chuyentiep TDP21 tructiep")  # no chat: nothing
    await ward.say(BOSS, "/chuyentiep TDP01 cahai")
    services = world.app.context.services
    boss = await services.access.identify("telegram", Sender(str(BOSS)))
    leader = await services.access.identify("telegram", Sender("7777", "Ông Bảy"))
    await services.access.grant(platform="telegram", user_id="7777", role=Role.LEADER,
                                ward_code="HB", group_code="TDP01")
    ward_id = boss.ward_id
    assert ward_id is not None
    reach = await services.relays.reach(ward_id)
    groups = {r.group_code: r for r in reach.values()}
    assert groups["TDP01"].mode == "both" and groups["TDP01"].person is not None
    assert groups["TDP01"].person.user_id == "7777" and leader.member_id
    assert groups["TDP21"].mode == "none"
    created = await services.notices.create(
        boss, ward_id, raw_text="Hai đường", rendered="Hai đường",
        group_ids=[groups["TDP01"].group_id, groups["TDP21"].group_id])
    assert [t.group_code for t in created.relayed] == ["TDP01"]
    assert created.groups_without_chat == ["TDP21"]
    await ward.tg.wait_sent(TG_CHATS["TDP01"], 1)
    await until(lambda: len(ward.inbox(7777)) == 2, "the relay to Ông Bảy")
    summary = await services.notices.reach_summary(boss, created.notice_id)
    assert summary is not None and (summary.direct, summary.waiting) == (1, 0)


def test_the_forward_text_is_cut_to_fit_zalo(harness: Harness) -> None:
    delivery = harness.ctx.services.relay_delivery
    text = delivery.forward_text(ward_name="Phường Hòa Bình", when=EVENING,
                                 body="<b>Dài</b> " + "chữ & chữ " * 400)
    from bot.texts import to_plain

    assert len(to_plain(text)) == 2000 and to_plain(text).endswith("…")
    assert "<b>" not in text and "&amp;" in text  # escaped for Telegram, plain on Zalo


async def test_a_cancelled_notice_is_not_relayed_and_an_absent_platform_fails_at_once(
    harness: Harness,
) -> None:
    services = harness.ctx.services
    await harness.grant("5001", Role.COORDINATOR)
    await harness.grant("5002", Role.LEADER, "TDP01")
    await services.access.grant(platform="zalo", user_id="z-9", role=Role.LEADER,
                                ward_code="P1", group_code="TDP02")
    boss = await services.access.identify("telegram", Sender("5001", "Cán bộ"))
    ward_id = boss.ward_id
    assert ward_id is not None
    groups = sorted((await services.relays.reach(ward_id)).values(), key=lambda r: r.group_code)
    later = harness.clock.now() + timedelta(hours=5)
    created = await services.notices.create(
        boss, ward_id, raw_text="Hẹn giờ", rendered="Hẹn giờ",
        group_ids=[g.group_id for g in groups], send_at=later)
    states = {t.group_code: t.state for t in created.relayed}
    assert states == {"TDP01": "queued", "TDP02": "failed"}  # no Zalo running here
    await services.notices.cancel(boss, created.notice_id)
    assert await services.outbox.pending_due() == 0
    assert not await services.outbox.rows("relay", created.relayed[0].id)
    summary = await services.notices.reach_summary(boss, created.notice_id)
    assert summary is not None and (summary.waiting, summary.failed) == (0, 1)
