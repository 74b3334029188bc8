"""Every keyboard of every feature, for a ward of 300 groups, 40 staff and 5,000 households,
within what Telegram accepts (≤ 100 buttons, ≤ 8 a row, callback_data 1-64 bytes, balanced
HTML, 4,096 characters) and, on Zalo, as short numbered pages (≤ 2,000 characters).

The walk is systematic, so a new feature cannot escape it: every registered command is run
by every role (with the sample arguments below, and without), every form step that opens is
answered (a step without a sample answer fails the test), and every kind of button that
appears is pressed. At the end every button route of the router must have been drawn and
pressed at least once, and every command run.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlmodel import select

from bot.app import BotApp
from bot.clock import FrozenClock, VirtualSleeper
from bot.config import Config
from bot.context import AppContext, Content, build_context
from bot.core import Attachment, Button, Capabilities, Incoming, Outgoing, Role, Sender
from bot.db import Database
from bot.jobs.personal_reminders import _buttons as personal_reminder_buttons
from bot.keyboards import NUMBERED_PAGE, check_rows
from bot.models import ChatBinding, Delivery, Notice, ResidentialGroup, RoleGrant
from bot.payloads import prefix_of
from bot.router import Router
from bot.services.conversations import MENU_SUFFIX, Who
from bot.services.relay_delivery import confirm_payload
from bot.services.reminders import Nudge
from bot.services.tables import read_table
from bot.texts import split_text
from handlers import register_all
from tests.conftest import make_config, shared_content
from tests.fake_telegram import FakeTelegram, HtmlRefused, parse_html, refusal
from tests.recording import RecordingPlatform, Said, message, press
from tests.telegram_people import Ward as TelegramWard
from tests.telegram_people import labels

GROUPS, LEADERS, COORDINATORS, HOUSEHOLDS = 300, 30, 10, 5000
LONG_LIST = 45  # campaigns, polls and scheduled notices: more than one keyboard holds
ZALO = Capabilities(buttons=False, edit=False, documents=False, photos=False, max_text=2000,
                    markup="plain")

# Arguments a person would type after each command (besides the command alone).
ARGS: dict[str, list[str]] = {
    "ho": ["nguyen", "TDP001-001"],
    "ghi": ["TDP001-001", "TDP001-001 vneid"],
    "tiendo": ["TDP001", "vneid"],
    "xephang": ["vneid"],
    "phananh": ["TDP001"],
    "theodoi": ["PA-1", "PA-41"],
    "chiendich": ["tao"],
    "hoidap": ["vneid"],
    "xuly": ["PA-1 tiepnhan"],
}
# What a person types at each step of each form that waits for text.
ANSWERS: dict[tuple[str, str], str] = {
    ("notice", "text"): "Họp tổ lúc 19h tối nay tại nhà văn hóa",
    ("notice", "targets"): "TDP001-TDP040",
    ("notice", "when"): "20:00",
    ("poll", "question"): "Tổ mình họp tối thứ mấy?",
    ("poll", "options"): "Thứ Bảy\nChủ Nhật",
    ("poll", "targets"): "TDP003 TDP007",
    ("campaign", "title"): "Đợt thi đua VNeID",
    ("campaign", "step"): "vneid",
    ("campaign", "target"): "80",
    ("campaign", "period"): "31/12",
    ("campaign", "schedule"): "t2 t4 19:00",
    ("campaign", "groups"): "tất cả",
    ("invite", "role"): "totruong",
    ("invite", "group"): "TDP002",
    ("invite", "uses"): "5",
    ("feedback", "category"): "khác",
    ("feedback", "text"): "Đèn đường ngõ 5 bị hỏng",
    ("feedback", "location"): "Ngõ 5",
    ("feedback", "anonymous"): "không",
    ("question", "text"): "Cách cài VNeID?",
    ("fbmsg", "message"): "Đã thay bóng đèn",
    ("hhfind", "query"): "nguyen van",
    ("hhfind", "found"): "nguyen van an",
    ("hhlink", "code"): "TDP001-001",
    ("hhlink", "name"): "Nguyễn Văn An 0",
    ("faq", "question"): "nguyen",
    ("fbreopen", "text"): "Đèn vẫn chưa sáng",
    ("import", "groups"): "có",
    ("contest", "title"): "Cuộc thi tìm hiểu VNeID",
    ("contest", "bank"): "vneid",
    ("contest", "period"): "31/12",
    ("contest", "groups"): "TDP001 TDP002",
    ("contest", "confirm"): "có",
    ("series", "title"): "Chuyên đề VNeID",
    ("series", "guides"): "vneid",
    ("series", "rhythm"): "thứ Ba 19:00",
    ("series", "period"): "31/12",
    ("series", "groups"): "TDP001-TDP040",
    ("series", "confirm"): "có",
}
# "Forget my data" revokes the walker's own roles: drawn and checked, but never pressed.
NEVER_PRESS = frozenset({"fbd:yes"})
PRESSES_PER_KIND = 1  # presses of each kind of button
ACTIONS_PER_COMMAND = 30


@dataclass
class Walk:
    router: Router
    telegram: RecordingPlatform
    zalo: RecordingPlatform
    drawn: set[str] = field(default_factory=set)  # button route prefixes seen on keyboards
    pressed: set[str] = field(default_factory=set)
    commands: set[str] = field(default_factory=set)
    forms: set[tuple[str, str]] = field(default_factory=set)
    problems: list[str] = field(default_factory=list)
    # Kinds of button (payloads but for their numbers) already pressed, per platform: each is
    # pressed once in the whole walk (a chart of 300 groups takes a while to draw).
    done: dict[str, dict[str, int]] = field(default_factory=dict)
    messages: int = 0
    most_buttons: int = 0

    def check(self, platform: RecordingPlatform, said: Said, where: str) -> None:
        self.messages += 1
        text = said.message.text
        if platform is self.telegram:
            rows = said.message.buttons
            self.most_buttons = max(self.most_buttons, sum(len(r) for r in rows))
            self.problems += [f"{where}: {p}" for p in check_rows(rows)]
            try:
                visible = parse_html(text)
            except HtmlRefused as exc:
                self.problems.append(f"{where}: HTML refused: {exc}")
                return
            if len(visible) > 4096 or not visible.strip():
                self.problems.append(f"{where}: text of {len(visible)} characters")
            for b in (b for row in rows for b in row):
                self.drawn.add(prefix_of(b.payload))
        else:
            if said.message.buttons:
                self.problems.append(f"{where}: buttons sent to a platform without them")
            if len(text) > 2000:
                self.problems.append(f"{where}: {len(text)} characters on Zalo")


async def _seed(ctx: AppContext) -> None:
    """The ward: 300 groups with a chat each but one (reached through its leader), 10
    coordinators, 30 leaders of 10 groups each
    (all of them also of TDP001, so a ticket there has 40 people to give it to), a helper,
    residents, 5,000 households, and long lists of campaigns, polls, notices and tickets.
    Groups, grants and chats are inserted in bulk (the services add them one at a time)."""
    services = ctx.services
    ward = await services.places.add_ward("P1", "Phường Hòa Bình")
    access = services.access
    people = {(platform, user): await access.identify(platform, Sender(user, f"Người {user}"))
              for platform in ("telegram", "zalo")
              for user in [str(1000 + n) for n in range(COORDINATORS)]
              + [str(2000 + n) for n in range(LEADERS)] + ["3000", "4000"]
              + [str(4100 + n) for n in range(40)]}
    members = {(p.platform, p.user_id): p.member_id for p in people.values()}
    now = ctx.clock.now()
    async with ctx.db.session() as session:
        rows = [ResidentialGroup(ward_id=ward.id, code=f"TDP{i:03d}", name=f"Tổ dân phố {i}",
                                 created_at=now)
                for i in range(1, GROUPS + 1)]
        session.add_all(rows)
        await session.flush()
        ids = [g.id for g in rows]
        grants: list[RoleGrant] = []
        for platform in ("telegram", "zalo"):
            def grant(user: str, role: Role, group: int | None, platform: str = platform) -> None:
                grants.append(RoleGrant(member_id=members[(platform, user)], role=role.value,
                                        ward_id=ward.id, group_id=group, created_at=now))
            for n in range(COORDINATORS):
                grant(str(1000 + n), Role.COORDINATOR, None)
            for n in range(LEADERS):
                for g in {0, *range(n * 10, n * 10 + 10)}:
                    grant(str(2000 + n), Role.LEADER, ids[g])
            grant("3000", Role.HELPER, ids[0])
            for user in ["4000", *(str(4100 + n) for n in range(40))]:
                grant(user, Role.RESIDENT, ids[0])
        session.add_all(grants)
        session.add_all([ChatBinding(platform="telegram", chat_id=f"-{100000 + i}",
                                     title=f"Nhóm {i}", ward_id=ward.id, group_id=gid,
                                     created_at=now, updated_at=now)
                         for i, gid in enumerate(ids, start=1)
                         if i != 2])  # TDP002 has no chat the bot is in: reached by relay
        await session.commit()
    names = ["Nguyễn Văn An", "Trần Thị Bình", "Lê Văn Cường", "Phạm Thị Dung", "Nguyễn Thị Én"]
    lines = ["code,group,head_name,members"] + [
        f"TDP{n % GROUPS + 1:03d}-{n // GROUPS + 1:03d},TDP{n % GROUPS + 1:03d},"
        f"{names[n % len(names)]} {n},{n % 5 + 1}" for n in range(HOUSEHOLDS)
    ]
    await services.registry.import_table(ward.id, read_table("\n".join(lines).encode()))
    boss = await access.identify("telegram", Sender("1000", "Cán bộ Một"))
    groups = await services.places.groups(ward.id)
    today = services.campaigns.today()
    later = ctx.clock.now() + timedelta(days=2)
    for i in range(LONG_LIST):  # more than one keyboard can hold
        await services.campaigns.create(
            boss, ward.id, title=f"Đợt {i}", step_key="vneid", target=80, starts_on=today,
            ends_on=today + timedelta(days=30), group_ids=[], days=["mon"], at_time="19:00")
        await services.polls.create(boss, ward.id, question=f"Câu hỏi {i}?",
                                    options=["Có", "Không"], group_ids=[groups[0].id],
                                    closes_at=None, post_results=False)
    async with ctx.db.session() as session:  # scheduled notices, as `notices.create` leaves them
        session.add_all([Notice(ward_id=ward.id, author_member_id=boss.member_id,
                                text=f"Thông báo {i}", attachment={}, group_ids=[groups[0].id],
                                pin=False, send_at=later, state="scheduled", created_at=now)
                         for i in range(LONG_LIST)])
        await session.commit()
    for n in range(40):
        resident = await access.identify("telegram", Sender(str(4100 + n), "Cư dân"))
        await services.feedback.submit(resident, text=f"Phản ánh số {n}", category="other")
    # The walking resident's own ticket, resolved: /theodoi offers "is it fixed?" under it.
    walker = await access.identify("telegram", Sender("4000", "Cư dân"))
    filed = await services.feedback.submit(walker, text="Đèn đường hỏng", category="other")
    await services.feedback.act(boss, filed.ticket.number, "resolve", "Đã thay bóng")


@pytest.fixture
async def walk(db: Database, clock: FrozenClock, content: Content) -> Walk:
    ctx = build_context(make_config(db.url, telegram=[9000]), db, clock, content=content,
                        sleeper=VirtualSleeper())  # 9000: an admin; pacing without waits
    router = Router(ctx)
    register_all(router)
    telegram = RecordingPlatform()
    zalo = RecordingPlatform(name="zalo", capabilities=ZALO)
    router.attach(telegram)
    router.attach(zalo)
    await _seed(ctx)
    return Walk(router, telegram, zalo)


async def _act(walk: Walk, platform: RecordingPlatform, incoming: Incoming, where: str) -> None:
    """Dispatch one update; check every message it made, here and to other people."""
    before = {p.name: len(p.said) for p in (walk.telegram, walk.zalo)}
    await walk.router.dispatch(platform, incoming)
    for p in (walk.telegram, walk.zalo):
        for said in p.said[before[p.name]:]:
            walk.check(p, said, where if p is platform else f"{where} (to another person)")
    if platform is walk.zalo and len(platform.said) > before[platform.name]:
        chat = incoming.chat.chat_id
        menu = await _menu(walk, Who(platform.name, chat, incoming.sender.user_id))
        if len(menu) > NUMBERED_PAGE + 8:  # a page, "Cả phường", nav and the form's own
            walk.problems.append(f"{where}: a numbered menu of {len(menu)} choices")


async def _run(walk: Walk, platform: RecordingPlatform, user: str, text: str,
               group: bool, first: Incoming | None = None) -> None:
    """One command (or `first`, a file sent) and everything reachable from it: forms
    answered, buttons pressed."""
    app = walk.router.app
    chat = f"-{100001}" if group else user
    who = Who(platform.name, chat, user)
    where = f"{platform.name}/{user} {text}"
    start = len(platform.said)
    await _act(walk, platform, first or message(text, user=user, chat=chat, group=group,
                                                platform=platform.name), where)
    done = walk.done.setdefault(platform.name, {})
    for _ in range(ACTIONS_PER_COMMAND):
        state = await app.services.conversations.get(who)
        if state is not None:
            answer = ANSWERS.get((state.flow, state.step))
            key = (state.flow, state.step)
            if key not in walk.forms and answer is not None:
                walk.forms.add(key)
                await _act(walk, platform, message(answer, user=user, chat=chat, group=group,
                                                   platform=platform.name),
                           f"{where} → typed {answer!r}")
                continue
            if answer is None and key not in walk.forms:
                walk.problems.append(f"form step {key} has no sample answer in ANSWERS")
                walk.forms.add(key)
        if platform.capabilities.buttons:
            # the newest message first: answer what was just shown, as a person would
            offered = [p for said in reversed(platform.said[start:]) for p in said.payloads]
        else:  # only the numbered menu shown last can be answered
            offered = await _menu(walk, who)
        payload = _next_press(offered, done)
        if payload is None:
            break
        walk.pressed.add(prefix_of(payload))
        if platform.capabilities.buttons:
            incoming = press(payload, user=user, chat=chat, group=group, platform=platform.name)
        else:  # pick the numbered choice, as a Zalo user would type it
            number = await _number_of(walk, who, payload)
            if number is None:
                break
            incoming = message(str(number), user=user, chat=chat, group=group,
                               platform=platform.name)
        await _act(walk, platform, incoming, f"{where} → {payload}")
    await app.services.conversations.clear(who)


def _kind(payload: str) -> str:
    """A payload's kind: its prefix, its first word (an action), how many fields it has."""
    prefix, *fields = payload.split(":")
    action = next((f for f in fields if re.fullmatch(r"[a-z_]+", f)), "")
    return f"{prefix}:{action}:{len(fields)}"


def _next_press(offered: list[str], done: dict[str, int]) -> str | None:
    """The next button to press: each kind (the payload without its numbers) once."""
    for payload in offered:
        if payload in NEVER_PRESS or not payload:  # "" is a link button
            continue
        kind = _kind(payload)
        if done.get(kind, 0) < PRESSES_PER_KIND and payload not in done:
            done[kind] = done.get(kind, 0) + 1
            done[payload] = 1
            return payload
    return None


async def _menu(walk: Walk, who: Who) -> list[str]:
    menu = await walk.router.app.services.conversations.get(
        Who(who.platform, who.chat_id, who.user_id + MENU_SUFFIX))
    return [str(p) for p in menu.data.get("payloads", [])] if menu else []


async def _number_of(walk: Walk, who: Who, payload: str) -> int | None:
    payloads = await _menu(walk, who)
    return payloads.index(payload) + 1 if payload in payloads else None


async def _queued_keyboards(walk: Walk) -> None:
    """Messages queued for group chats (polls with their vote buttons): checked as sent,
    and one of each kind pressed by a resident in the group."""
    app = walk.router.app
    async with app.db.session() as session:
        rows = (await session.exec(select(Delivery))).all()
    pressed: set[str] = set()
    seen: set[tuple[str, int | None, str]] = set()
    for row in rows:
        if (row.kind, row.ref_id, row.platform) in seen:
            continue  # the same message to another chat
        seen.add((row.kind, row.ref_id, row.platform))
        pieces = split_text(row.text, 4096)  # as the outbox sends it
        outgoing = [app.services.outbox._outgoing(row, piece, i, i == len(pieces) - 1)
                    for i, piece in enumerate(pieces)]
        for sent in outgoing:
            walk.check(walk.telegram, Said(row.chat_id, sent, "0"),
                       f"queued {row.kind} for {row.chat_id}")
        for b in (b for line in outgoing[-1].buttons for b in line if b.payload):
            if prefix_of(b.payload) not in pressed:
                pressed.add(prefix_of(b.payload))
                walk.pressed.add(prefix_of(b.payload))
                await _act(walk, walk.telegram, press(b.payload, user="4000", chat=row.chat_id,
                                                       group=True), f"vote in {row.chat_id}")


async def _job_keyboards(walk: Walk) -> None:
    """Keyboards that scheduled jobs put under messages to people (a personal reminder):
    built as the job builds them, checked, and each kind pressed by a resident."""
    app = walk.router.app
    nudge = Nudge(reminder_id=1, household_id=1, household_code="TDP001-001", ward_id=1,
                  group_id=1, campaign_title="Đợt 1", step_key="vneid",
                  missing=tuple(s.key for s in app.services.households.steps), recipients=(),
                  first=True)
    rows = personal_reminder_buttons(app, nudge)
    walk.check(walk.telegram, Said("4000", Outgoing("Nhắc việc", tuple(map(tuple, rows))), "0"),
               "personal reminder")
    done: dict[str, int] = {}
    while (payload := _next_press([b.payload for r in rows for b in r], done)) is not None:
        walk.pressed.add(prefix_of(payload))
        await _act(walk, walk.telegram, press(payload, user="4000"), "reminder button")
    # The relay person's "✅ Đã chuyển vào nhóm", as the relay sender builds it once the text
    # to forward has reached him (TDP002 has no bound chat), pressed by its leader.
    confirm = confirm_payload(1)
    ask = ((Button(app.texts.label("relay.done", "vi"), confirm),),)
    walk.check(walk.telegram, Said("2000", Outgoing("Chuyển tin", ask), "0"), "relay ask")
    walk.pressed.add(prefix_of(confirm))
    await _act(walk, walk.telegram, press(confirm, user="2000"), "relay confirm")


async def test_every_keyboard_fits_telegram_and_zalo_at_ward_scale(walk: Walk) -> None:
    users = {"admin": "9000", "coordinator": "1000", "leader": "2000", "helper": "3000",
             "resident": "4000", "guest": "5000"}
    # First (before the walk revokes anyone), a coordinator sends the ward's household list
    # as a file, naming a group the ward does not have yet (the import asks to confirm it).
    csv = "code,group,head_name,members\nTDP999-001,TDP999,Lê Văn Mới,3\n".encode()
    upload = replace(message("", user="1000"), attachments=(
        Attachment(kind="document", filename="ho.csv", data=csv, file_id="f1", size=len(csv)),))
    await _run(walk, walk.telegram, "1000", "(a file)", False, upload)
    for role, user in users.items():
        for command in walk.router.commands:
            texts = [f"/{command.name}",
                     *(f"/{command.name} {a}" for a in ARGS.get(command.name, []))]
            for text in texts:
                walk.commands.add(command.name)
                await _run(walk, walk.telegram, user, text, group=command.where == "group")
                if role in ("coordinator", "resident"):
                    await _run(walk, walk.zalo, user, text, group=command.where == "group")
    await _queued_keyboards(walk)
    await _job_keyboards(walk)
    assert not walk.problems, "\n".join(sorted(set(walk.problems)))
    routes = {r.prefix for r in walk.router.button_routes}
    assert sorted(routes - walk.drawn) == [], "button routes no walk reached: add their way in"
    assert sorted(routes - walk.pressed) == []
    assert walk.commands == {c.name for c in walk.router.commands}
    assert walk.most_buttons > 40  # the walk did meet lists that had to page


# --- a notice to 300 groups, through the fake Bot API that refuses what Telegram refuses ----
TOKEN = "123456:TEST-TOKEN"
BOSS = 803


@pytest.fixture
async def big_ward(tmp_path: Path, sqlite_url: str) -> AsyncIterator[TelegramWard]:
    # sqlite_url: <tmp_path>/bot.db starts as a copy of the migrated template
    async with FakeTelegram(token=TOKEN, bot_username="cds_test_bot") as tg:
        config = Config.model_validate({
            "database": {"url": f"sqlite+aiosqlite:///{tmp_path}/bot.db"},
            "telegram": {"token": TOKEN, "api_base_url": tg.base_url}, "web": {"port": 0},
            "outbox": {"private_per_second": 100, "per_second": 300, "group_per_minute": 600,
                       "workers": 4},
        })
        app = BotApp(config, clock=FrozenClock(datetime(2026, 11, 24, 4, tzinfo=UTC)),
                     content=shared_content())
        await app.db.upgrade()
        services = app.context.services
        ward = await services.places.add_ward("HB", "Phường Hòa Bình")
        await services.access.grant(platform="telegram", user_id=str(BOSS),
                                    role=Role.COORDINATOR, ward_code="HB")
        now = app.context.clock.now()
        async with app.db.session() as session:
            groups = [ResidentialGroup(ward_id=ward.id, code=f"TDP{i:02d}", name=f"Tổ {i}",
                                       created_at=now) for i in range(1, GROUPS + 1)]
            session.add_all(groups)
            await session.flush()
            session.add_all([ChatBinding(platform="telegram", chat_id=str(-1000 - i),
                                         title=f"Nhóm {i}", ward_id=ward.id, group_id=g.id,
                                         created_at=now, updated_at=now)
                             for i, g in enumerate(groups, start=1)])
            await session.commit()
        await app.start()
        try:
            yield TelegramWard(tg, app, app.context.clock)  # type: ignore[arg-type]
        finally:
            await app.stop()


async def test_a_notice_to_300_groups_all_a_range_or_a_few(big_ward: TelegramWard) -> None:
    ward = big_ward
    *_, choices = await ward.say(BOSS, "/thongbao Họp tổ tối nay lúc 19h", count=3)
    assert "chưa chọn tổ nào" in choices and "TDP01-TDP40" in choices  # the typing hint
    [(_, keyboard)] = ward.keyboards(BOSS)[-1:]
    shown = labels({"reply_markup": keyboard})
    assert "⬜ Cả phường" in shown and "⬜ TDP40" in shown and "⬜ TDP41" not in shown
    assert "trang 1/8" in shown and "▶" in shown and "◀" not in shown
    page2 = await ward.press(BOSS, "▶", edit=True)
    assert "chưa chọn tổ nào" in page2
    shown = labels({"reply_markup": ward.keyboards(BOSS)[-1][1]})
    assert "⬜ TDP41" in shown and "⬜ TDP80" in shown and "trang 2/8" in shown and "◀" in shown

    [ranged] = await ward.say(BOSS, "TDP01-TDP40")
    assert "Gửi tới: TDP01, TDP02, TDP03" in ranged and "… và 30 tổ khác (40 tổ)" in ranged
    [few] = await ward.say(BOSS, "TDP03 TDP07, tdp299")
    assert "Gửi tới: TDP03, TDP07, TDP299" in few
    [unknown] = await ward.say(BOSS, "TDP03 TDP999")
    assert "TDP999" in unknown and "Lựa chọn cũ vẫn giữ nguyên" in unknown

    everyone = await ward.press(BOSS, "⬜ Cả phường", edit=True)
    assert "Gửi tới: cả phường (300 tổ)" in everyone
    queued = await ward.press(BOSS, "📤 Gửi ngay")
    assert "300" in queued
    for _ in range(1500):  # ≈ 1 s at 300 a second; at most 30 s
        if all(ward.tg.sent_to(-1000 - i) for i in range(1, GROUPS + 1)):
            break
        await asyncio.sleep(0.02)
    assert all(len(ward.tg.sent_to(-1000 - i)) == 1 for i in range(1, GROUPS + 1))
    refused = [c for c in ward.tg.calls if c.method in ("sendMessage", "editMessageText")
               and refusal(c.method, c.params)]
    assert refused == []


# --- the fake Bot API refuses what Telegram refuses -----------------------------------------
def _keyboard(rows: int, per_row: int, data: str = "x:1") -> dict[str, Any]:
    return {"inline_keyboard": [[{"text": f"{r}.{c}", "callback_data": data}
                                 for c in range(per_row)] for r in range(rows)]}


@pytest.mark.parametrize(("method", "params", "description"), [
    ("sendMessage", {"text": "a", "reply_markup": _keyboard(13, 8)},
     "Bad Request: reply markup is too long"),  # 104 buttons
    ("sendMessage", {"text": "a", "reply_markup": _keyboard(1, 9)},
     "Bad Request: reply markup is too long"),
    ("editMessageReplyMarkup", {"message_id": 1, "reply_markup": _keyboard(1, 1, "é" * 33)},
     "Bad Request: BUTTON_DATA_INVALID"),
    ("editMessageText", {"message_id": 1, "text": "b", "reply_markup": _keyboard(1, 1, "")},
     "Bad Request: BUTTON_DATA_INVALID"),
    ("sendMessage", {"text": "<b>đậm", "parse_mode": "HTML"},
     "Bad Request: can't parse entities: Can't find end tag corresponding to start tag \"b\""),
    ("sendMessage", {"text": "<b>a<i>b</b></i>", "parse_mode": "HTML"},
     "Bad Request: can't parse entities: Can't find end tag corresponding to start tag \"i\""),
    ("sendMessage", {"text": "<Hoa> ơi", "parse_mode": "HTML"},
     "Bad Request: can't parse entities: Unsupported start tag \"hoa\" at byte offset 0"),
    ("sendMessage", {"text": "a" * 4097}, "Bad Request: message is too long"),
    ("sendPhoto", {"photo": "p1", "caption": "a" * 1025},
     "Bad Request: message caption is too long"),
])
async def test_the_fake_refuses_what_telegram_refuses(
    method: str, params: dict[str, Any], description: str,
) -> None:
    async with FakeTelegram(token=TOKEN) as tg, aiohttp.ClientSession() as http:
        sent = await http.post(f"{tg.base_url}{TOKEN}/sendMessage",
                               json={"chat_id": 5, "text": "đầu tiên"})
        assert (await sent.json())["ok"]
        answer = await http.post(f"{tg.base_url}{TOKEN}/{method}", json={"chat_id": 5, **params})
        body = await answer.json()
    assert answer.status == 400 and body == {"ok": False, "error_code": 400,
                                             "description": description}


async def test_the_fake_accepts_what_telegram_accepts() -> None:
    # 4,102 characters as sent, 4,084 once the tags and entities are read: Telegram counts these
    text = "<b>Đậm</b> &amp; <i>nghiêng</i> " + "a" * 4070
    async with FakeTelegram(token=TOKEN) as tg, aiohttp.ClientSession() as http:
        answer = await http.post(f"{tg.base_url}{TOKEN}/sendMessage", json={
            "chat_id": 5, "text": text, "parse_mode": "HTML",
            "reply_markup": _keyboard(12, 8, "é" * 32)})  # 96 buttons, 64 bytes of data
        assert (await answer.json())["ok"], await answer.text()
