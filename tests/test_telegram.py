"""End to end: the real python-telegram-bot Application, polling a fake Bot API server."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.app import BotApp
from bot.config import Config
from bot.roles import Role
from bot.router import Ctx
from tests.conftest import shared_content
from tests.fake_telegram import FakeTelegram

# Each test's <tmp_path>/bot.db starts as a copy of the migrated template (conftest).
pytestmark = pytest.mark.usefixtures("sqlite_url")

TOKEN = "123456:TEST-TOKEN"
LEADER, RESIDENT, STRANGER = 501, 502, 503
GROUP_CHAT = -1001


def config_for(tg: FakeTelegram, tmp_path: Path, **telegram: Any) -> Config:
    return Config.model_validate(
        {
            "database": {"url": f"sqlite+aiosqlite:///{tmp_path}/bot.db"},
            "telegram": {"token": TOKEN, "api_base_url": tg.base_url, **telegram},
            "web": {"port": 0}, "outbox": {"private_per_second": 100},
        }
    )


@pytest.fixture
async def tg() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram(token=TOKEN, bot_username="cds_test_bot") as server:
        yield server


async def start_app(config: Config, *, seed: bool = True) -> BotApp:
    app = BotApp(config, content=shared_content())
    await app.db.upgrade()
    if seed:
        places = app.context.services.places
        await places.add_ward("HB", "Phường Hòa Bình")
        await places.add_group("HB", "TDP01", "Tổ dân phố 1")
        await places.add_group("HB", "TDP02", "Tổ dân phố 2")
        await app.context.services.access.grant(
            platform="telegram", user_id=str(LEADER), role=Role.LEADER,
            ward_code="HB", group_code="TDP01",
        )
    await app.start()
    return app


@pytest.fixture
async def app(tg: FakeTelegram, tmp_path: Path) -> AsyncIterator[BotApp]:
    bot_app = await start_app(config_for(tg, tmp_path))
    yield bot_app
    await bot_app.stop()


def plain(sent: dict[str, Any]) -> str:
    return re.sub(r"<[^>]+>", "", sent.get("text") or sent.get("caption") or "")


def buttons(sent: dict[str, Any]) -> list[tuple[str, str]]:
    markup = sent.get("reply_markup") or {}
    return [(b["text"], b["callback_data"]) for row in markup.get("inline_keyboard", []) for b in row]


async def ask(tg: FakeTelegram, user: int, text: str, *, chat: int | None = None,
              chat_type: str = "private", count: int = 1) -> list[dict[str, Any]]:
    chat_id = chat if chat is not None else user
    before = len(tg.sent_to(chat_id))
    tg.message(chat_id, user, text, chat_type=chat_type)
    sent = await tg.wait_sent(chat_id, count=before + count)
    return sent[before:]


async def test_command_menu_is_set_in_vietnamese(app: BotApp, tg: FakeTelegram) -> None:
    calls = tg.calls_to("setMyCommands")
    assert calls, "setMyCommands was called"
    private = next(c for c in calls if c.params["scope"]["type"] == "all_private_chats")
    described = {c["command"]: c["description"] for c in private.params["commands"]}
    assert described["trogiup"] == "Xem các lệnh bạn dùng được"
    assert described["hoidap"] == "Hỏi đáp, hướng dẫn từng bước"
    group = next(c for c in calls if c.params["scope"]["type"] == "all_group_chats")
    assert "lienket" in {c["command"] for c in group.params["commands"]}


async def test_greeting_and_help_by_role(app: BotApp, tg: FakeTelegram) -> None:
    [greeting] = await ask(tg, STRANGER, "/start")
    assert "Xin chào" in plain(greeting) and "đường link mời" in plain(greeting)
    assert greeting["parse_mode"] == "HTML"
    [guest_help] = await ask(tg, STRANGER, "/trogiup")
    [leader_help] = await ask(tg, LEADER, "/help")
    assert "/moi" not in plain(guest_help)
    assert "/moi — Tạo đường link và mã QR" in plain(leader_help)


async def test_invite_join_and_role(app: BotApp, tg: FakeTelegram) -> None:
    await ask(tg, LEADER, "/moi")
    role_msg = tg.sent_to(LEADER)[-1]
    assert ("Cư dân", "invr:resident") in buttons(role_msg)
    tg.callback(LEADER, LEADER, role_msg["message_id"], "invr:resident")
    await tg.wait_for_call("editMessageText")
    group_msg = tg.calls_to("editMessageText")[-1].params
    assert "Bước 2/3" in plain(group_msg)
    tg.callback(LEADER, LEADER, role_msg["message_id"], "inv:group:1")
    await tg.wait_for_call("editMessageText", lambda c: "Bước 3/3" in c.params["text"])
    created = await ask(tg, LEADER, "2", count=2)
    link = re.search(r"https://t\.me/cds_test_bot\?start=([A-Z0-9]+)", plain(created[0]))
    assert link, plain(created[0])
    assert created[1]["kind"] == "photo"
    assert tg.calls_to("answerCallbackQuery")

    [joined, greeting] = await ask(tg, RESIDENT, f"/start {link.group(1)}", count=2)
    assert "Bạn đã tham gia với vai trò Cư dân của Tổ dân phố 1" in plain(joined)
    assert "Bạn là Cư dân của tổ TDP01" in plain(greeting)


async def test_link_group_chat_by_leader_and_refusal_for_resident(
    app: BotApp, tg: FakeTelegram
) -> None:
    tg.my_chat_member(GROUP_CHAT, LEADER, "left", "member", chat_title="Tổ 1 Hòa Bình")
    [hello] = await tg.wait_sent(GROUP_CHAT)
    assert "/lienket" in plain(hello)
    [refused] = await ask(tg, STRANGER, "/lienket@cds_test_bot TDP01", chat=GROUP_CHAT,
                          chat_type="group")
    assert "Việc này dành cho người đã tham gia tổ" in plain(refused)
    [linked] = await ask(tg, LEADER, "/lienket TDP01", chat=GROUP_CHAT, chat_type="group")
    assert "Đã gắn nhóm này với Tổ dân phố 1 (TDP01)" in plain(linked)
    binding = await app.context.services.chats.binding("telegram", str(GROUP_CHAT))
    assert binding is not None and binding.group_code == "TDP01"
    # Ordinary chatter in the group gets no answer.
    tg.message(GROUP_CHAT, RESIDENT, "mai mấy giờ họp tổ vậy mọi người", chat_type="group")
    [check] = await ask(tg, LEADER, "/quyen", chat=GROUP_CHAT, chat_type="group")
    assert "Tổ trưởng" in plain(check)
    assert len(tg.sent_to(GROUP_CHAT)) == 4


async def test_group_migration_and_removal_are_followed(app: BotApp, tg: FakeTelegram) -> None:
    tg.my_chat_member(GROUP_CHAT, LEADER, "left", "member")
    await ask(tg, LEADER, "/lienket TDP01", chat=GROUP_CHAT, chat_type="group", count=1)
    tg.migrate_to_supergroup(GROUP_CHAT, -100777)
    chats = app.context.services.chats
    for _ in range(50):
        if await chats.binding("telegram", "-100777"):
            break
        await asyncio.sleep(0.05)
    moved = await chats.binding("telegram", "-100777")
    assert moved is not None and moved.group_code == "TDP01"
    tg.my_chat_member(-100777, LEADER, "member", "kicked", chat_type="supergroup")
    for _ in range(50):
        gone = await chats.binding("telegram", "-100777")
        if gone is not None and not gone.active:
            break
        await asyncio.sleep(0.05)
    assert gone is not None and not gone.active


async def test_unknown_command_and_failing_handler(app: BotApp, tg: FakeTelegram) -> None:
    async def boom(ctx: Ctx) -> None:
        raise RuntimeError("kaboom")

    app.router.command("hong", boom, menu=False)
    [hint] = await ask(tg, STRANGER, "/khongcolenhnay")
    assert "chưa hiểu lệnh /khongcolenhnay" in plain(hint)
    [sorry] = await ask(tg, STRANGER, "/hong")
    assert "Xin lỗi, mình đang gặp trục trặc" in plain(sorry)
    assert "kaboom" not in plain(sorry)
    [still] = await ask(tg, STRANGER, "/trogiup")
    assert "Các lệnh bạn dùng được" in plain(still)


async def test_a_form_survives_a_restart(tg: FakeTelegram, tmp_path: Path) -> None:
    config = config_for(tg, tmp_path)
    first = await start_app(config)
    await ask(tg, LEADER, "/moi")
    message_id = tg.sent_to(LEADER)[-1]["message_id"]
    tg.callback(LEADER, LEADER, message_id, "invr:helper")
    await tg.wait_for_call("editMessageText")
    await first.stop()

    second = await start_app(config, seed=False)
    try:
        tg.callback(LEADER, LEADER, message_id, "inv:group:1")
        await tg.wait_for_call("editMessageText", lambda c: "Bước 3/3" in c.params["text"])
        created = await ask(tg, LEADER, "7", count=2)
        assert "Vai trò: Thành viên tổ công nghệ số — tổ TDP01" in plain(created[0])
        assert "Dùng được: 7 người" in plain(created[0])
    finally:
        await second.stop()


async def test_webhook_checks_the_secret(tg: FakeTelegram, tmp_path: Path) -> None:
    secret = "s3cret-webhook-token"
    config = config_for(
        tg, tmp_path, mode="webhook", webhook_url="https://bot.example.vn/webhook/telegram",
        webhook_secret=secret,
    )
    app = await start_app(config)
    try:
        [hook] = tg.calls_to("setWebhook")
        assert hook.params["url"] == "https://bot.example.vn/webhook/telegram"
        assert hook.params["secret_token"] == secret
        assert not tg.calls_to("getUpdates")
        update = tg.message(STRANGER, STRANGER, "/trogiup", queue=False)
        assert app.web is not None
        url = f"http://127.0.0.1:{app.web.port}/webhook/telegram"
        async with aiohttp.ClientSession() as http:
            async with http.post(url, json=update) as wrong:
                assert wrong.status == 403
            async with http.post(
                url, json=update, headers={"X-Telegram-Bot-Api-Secret-Token": "nope-nope"}
            ) as wrong:
                assert wrong.status == 403
            async with http.post(
                url, data=b"{not json", headers={"X-Telegram-Bot-Api-Secret-Token": secret}
            ) as bad:
                assert bad.status == 400
            async with http.post(
                url, json=update, headers={"X-Telegram-Bot-Api-Secret-Token": secret}
            ) as right:
                assert right.status == 200
            [reply] = await tg.wait_sent(STRANGER)
            assert "Các lệnh bạn dùng được" in plain(reply)
            async with http.get(f"http://127.0.0.1:{app.web.port}/healthz") as health:
                assert health.status == 200
                assert (await health.json())["database"] is True
    finally:
        await app.stop()


async def test_platform_sends_documents_pins_and_survives_edit_errors(
    app: BotApp, tg: FakeTelegram
) -> None:
    from bot.core import Attachment, Button, Outgoing

    platform = app.telegram
    assert platform is not None
    doc = Attachment(kind="document", filename="tien-do.xlsx", data=b"PK\x03\x04 fake",
                     mime_type="application/vnd.ms-excel")
    sent = await platform.send(str(GROUP_CHAT), Outgoing(text="<b>Báo cáo</b>", attachment=doc,
                                                        pin=True))
    [upload] = tg.calls_to("sendDocument")
    assert upload.files["document"].filename == "tien-do.xlsx"
    assert upload.files["document"].data == b"PK\x03\x04 fake"
    assert upload.params["caption"] == "<b>Báo cáo</b>" and upload.params["parse_mode"] == "HTML"
    assert tg.calls_to("pinChatMessage")[0].params["message_id"] == int(sent.message_id)
    # Editing a message that is gone sends a new one; an identical edit is not an error.
    buttons = ((Button("Có", "x:1"),),)
    await platform.edit(str(STRANGER), "999", Outgoing(text="Mới", buttons=buttons))
    assert plain(tg.sent_to(STRANGER)[-1]) == "Mới"
    fresh = tg.sent_to(STRANGER)[-1]["message_id"]
    await platform.edit(str(STRANGER), str(fresh), Outgoing(text="Mới", buttons=buttons))
    assert len(tg.sent_to(STRANGER)) == 1


async def test_metrics_and_health(app: BotApp, tg: FakeTelegram) -> None:
    await ask(tg, STRANGER, "/trogiup")
    await ask(tg, STRANGER, "/khongco")
    assert app.web is not None
    base = f"http://127.0.0.1:{app.web.port}"
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{base}/metrics") as response:
            assert response.status == 200
            text = await response.text()
        async with http.get(f"{base}/healthz") as response:
            health = await response.json()
    assert 'cds_updates_total{kind="command",platform="telegram"} 2.0' in text
    assert "cds_handler_seconds_bucket" in text
    assert health["ok"] is True
    assert health["platforms"]["telegram"]["last_success"] is not None


async def test_a_mention_after_an_emoji_is_heard_in_a_group(app: BotApp, tg: FakeTelegram) -> None:
    tg.set_chat(GROUP_CHAT, "group", "Tổ 1")
    tg.message(GROUP_CHAT, RESIDENT, "🙏🙏 @cds_test_bot vneid là gì ạ", chat_type="group")
    [answer] = await tg.wait_sent(GROUP_CHAT, 1)
    assert "VNeID" in plain(answer)
