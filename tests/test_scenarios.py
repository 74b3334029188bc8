"""The same conversations on Telegram and on Zalo, through each platform's real adapter and
fake server: a feature that works on one platform only fails here."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any, Protocol

import pytest

from bot.app import BotApp
from bot.clock import FrozenClock
from bot.config import Config
from bot.core import Chat, Sender
from bot.roles import Role
from bot.services.tables import read_table
from tests.conftest import shared_content
from tests.fake_telegram import FakeTelegram
from tests.fake_zalo import FakeZalo

LEADER, PERSON, HELPER, RESIDENT = "801", "802", "803", "804"
GROUP_CHAT = {"telegram": "-4001", "zalo": "zg-4001"}


class Chatter(Protocol):
    platform: str

    async def say(self, user: str, text: str, count: int = 1) -> list[str]: ...

    async def press(self, user: str, label: str) -> list[str]: ...

    async def in_group(self, chat_id: str, count: int = 1) -> list[str]: ...

    async def told(self, user: str, fragment: str) -> None: ...


class TelegramChatter:
    platform = "telegram"

    def __init__(self, tg: FakeTelegram) -> None:
        self.tg = tg

    async def say(self, user: str, text: str, count: int = 1) -> list[str]:
        before = len(self.tg.sent_to(user))
        self.tg.message(int(user), int(user), text, first_name="Tư")
        sent = await self.tg.wait_sent(user, before + count)
        return [_plain(m) for m in sent[before:]]

    async def press(self, user: str, label: str) -> list[str]:
        last = self.tg.last_message(user)
        rows = (last.get("reply_markup") or {}).get("inline_keyboard", [])
        payload = next(b["callback_data"] for row in rows for b in row if b["text"] == label)
        edits = len(self.tg.calls_to("editMessageText"))
        before = len(self.tg.sent_to(user))
        self.tg.callback(int(user), int(user), last["message_id"], payload)
        for _ in range(250):
            if len(self.tg.calls_to("editMessageText")) > edits or len(self.tg.sent_to(user)) > before:
                break
            await asyncio.sleep(0.02)
        new_edits = self.tg.calls_to("editMessageText")[edits:]
        return [_plain(c.params) for c in new_edits] + [_plain(m) for m in self.tg.sent_to(user)[before:]]

    async def in_group(self, chat_id: str, count: int = 1) -> list[str]:
        return [_plain(m) for m in await self.tg.wait_sent(chat_id, count)]

    async def told(self, user: str, fragment: str) -> None:
        await _until(lambda: any(fragment in _plain(m) for m in self.tg.sent_to(user)),
                     fragment)


class ZaloChatter:
    platform = "zalo"

    def __init__(self, zl: FakeZalo) -> None:
        self.zl = zl

    async def say(self, user: str, text: str, count: int = 1) -> list[str]:
        before = len(self.zl.sent_to(user))
        self.zl.text(user, user, text, name="Tư")
        sent = await self.zl.wait_sent(user, before + count)
        return [str(m["text"]) for m in sent[before:]]

    async def press(self, user: str, label: str) -> list[str]:
        last = str(self.zl.sent_to(user)[-1]["text"])
        number = next(
            line.split(".", 1)[0] for line in last.splitlines()
            if line.split(".", 1)[-1].strip() == label
        )
        return await self.say(user, number)

    async def in_group(self, chat_id: str, count: int = 1) -> list[str]:
        return [str(m["text"]) for m in await self.zl.wait_sent(chat_id, count)]

    async def told(self, user: str, fragment: str) -> None:
        await _until(lambda: any(fragment in str(m["text"]) for m in self.zl.sent_to(user)),
                     fragment)


async def _until(condition: Any, what: str) -> None:
    for _ in range(250):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"never told: {what}")


def _plain(message: dict[str, Any]) -> str:
    return re.sub(r"<[^>]+>", "", str(message.get("text") or message.get("caption") or ""))


@pytest.fixture(params=["telegram", "zalo"])
async def chat(request: pytest.FixtureRequest, sqlite_url: str) -> AsyncIterator[Chatter]:
    db = {"url": sqlite_url}
    if request.param == "telegram":
        async with FakeTelegram() as tg:
            config = Config.model_validate({
                "database": db, "web": {"port": 0}, "outbox": {"private_per_second": 100},
                "telegram": {"token": tg.token, "api_base_url": tg.base_url},
            })
            async for _app in _running(config, "telegram"):
                yield TelegramChatter(tg)
    else:
        async with FakeZalo() as zl:
            config = Config.model_validate({
                "database": db, "web": {"port": 0}, "outbox": {"private_per_second": 100},
                "telegram": {"enabled": False},
                "zalo": {"enabled": True, "token": zl.token, "api_base_url": zl.base_url,
                         "poll_interval_seconds": 0.01, "per_second": 100},
            })
            async for _app in _running(config, "zalo"):
                yield ZaloChatter(zl)


async def _running(config: Config, platform: str) -> AsyncIterator[BotApp]:
    # Midday in Hà Nội, whatever the real time: quiet hours would hold group messages.
    app = BotApp(config, clock=FrozenClock(datetime(2026, 11, 24, 5, 0, tzinfo=UTC)),
                 content=shared_content())
    await app.db.upgrade()
    services = app.context.services
    ward = await services.places.add_ward("HB", "Phường Hòa Bình")
    await services.places.add_group("HB", "TDP01", "Tổ dân phố 1")
    await services.registry.import_table(ward.id, read_table(
        "code,group,head_name,members\nTDP01-001,TDP01,Nguyễn Văn An,3\n".encode()))
    for user, role in ((LEADER, Role.LEADER), (HELPER, Role.HELPER), (RESIDENT, Role.RESIDENT)):
        await services.access.grant(platform=platform, user_id=user, role=role,
                                    ward_code="HB", group_code="TDP01")
    leader = await services.access.identify(platform, Sender(LEADER, "Tư"))
    await services.chats.bind(leader, platform, Chat(GROUP_CHAT[platform], "group", "Tổ 1"),
                              "TDP01")
    await app.start()
    try:
        yield app
    finally:
        await app.stop()


async def test_greeting_and_help(chat: Chatter) -> None:
    [greeting] = await chat.say(PERSON, "/start")
    assert "Xin chào Tư" in greeting and "đường link mời" in greeting
    [help_text] = await chat.press(PERSON, "❓ Trợ giúp")
    assert "Các lệnh bạn dùng được (Khách)" in help_text


async def test_invite_by_buttons_then_join(chat: Chatter) -> None:
    await chat.say(LEADER, "/moi")
    step2 = await chat.press(LEADER, "Cư dân")
    assert any("Bước 2/3" in t for t in step2)
    step3 = await chat.press(LEADER, "TDP01")
    assert any("Bước 3/3" in t for t in step3)
    created = await chat.press(LEADER, "Không giới hạn")
    text = "\n".join(created)
    assert "Vai trò: Cư dân — tổ TDP01" in text and "không giới hạn" in text
    code = re.search(r"start[= ]([A-Z0-9]{8})", text)
    assert code, text
    joined = await chat.say(PERSON, f"/start {code.group(1)}", count=2)
    assert "Bạn đã tham gia với vai trò Cư dân của Tổ dân phố 1" in joined[0]


async def test_unknown_command_and_cancel(chat: Chatter) -> None:
    [hint] = await chat.say(PERSON, "/khongco")
    assert "Mình chưa hiểu lệnh /khongco" in hint
    [nothing] = await chat.say(PERSON, "/huy")
    assert "Không có việc gì đang làm dở" in nothing


async def test_question_without_answer_offers_the_ward(chat: Chatter) -> None:
    [answer] = await chat.say(PERSON, "con mèo nhà tôi bị lạc")
    assert "Hỏi cán bộ phường" in answer


async def test_feedback_form_with_menus(chat: Chatter) -> None:
    await chat.say(RESIDENT, "/gopy")
    asked = await chat.press(RESIDENT, "🧹 Vệ sinh môi trường")
    assert any("kể ngắn gọn chuyện gì đang xảy ra" in t for t in asked)
    await chat.say(RESIDENT, "Rác để ở đầu ngõ 3 ngày chưa ai dọn")
    await chat.press(RESIDENT, "Bỏ qua")
    filed = await chat.press(RESIDENT, "🙈 Giấu tên tôi với cán bộ")
    assert any("PA-1" in t for t in filed)


async def test_helper_ticks_a_step_from_the_checklist(chat: Chatter) -> None:
    [checklist] = await chat.say(HELPER, "/ghi TDP01-001")
    assert "⬜ 1. Có điện thoại thông minh" in checklist
    ticked = await chat.press(HELPER, "⬜ Điện thoại thông minh")
    assert any("✅ 1. Có điện thoại thông minh" in t for t in ticked)
    [progress] = await chat.say(RESIDENT, "/tiendo TDP01")
    assert "Có điện thoại thông minh" in progress and "100% (1/1)" in progress


async def test_leader_sends_a_notice_to_his_group_chat(chat: Chatter) -> None:
    shown = await chat.say(LEADER, "/thongbao Họp tổ tối thứ Bảy lúc 19h", count=3)
    assert "Họp tổ tối thứ Bảy lúc 19h" in shown[1]
    await chat.press(LEADER, "📤 Gửi ngay")
    # The order of the confirmation and the delivery report depends on how quick the
    # outbox is: wait for each.
    await chat.told(LEADER, "đang được gửi tới 1 nhóm chat (TDP01)")
    await chat.told(LEADER, "Thông báo #1: đã gửi tới 1/1 nhóm chat")
    [posted] = await chat.in_group(GROUP_CHAT[chat.platform])
    assert "THÔNG BÁO" in posted and "Họp tổ tối thứ Bảy lúc 19h" in posted
