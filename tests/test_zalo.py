"""Zalo end to end: the real ZaloPlatform and BotApp against the fake Zalo Bot API."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.app import BotApp
from bot.config import Config
from bot.platforms.zalo import ZaloApiError, ZaloClient, unwrap_update
from bot.roles import Role
from tests.conftest import shared_content
from tests.fake_zalo import FakeZalo

# Each test's <tmp_path>/bot.db starts as a copy of the migrated template (conftest).
pytestmark = pytest.mark.usefixtures("sqlite_url")

LEADER, RESIDENT = "7001", "7002"


def config_for(zl: FakeZalo, tmp_path: Path, **zalo: Any) -> Config:
    return Config.model_validate(
        {
            "database": {"url": f"sqlite+aiosqlite:///{tmp_path}/bot.db"},
            "telegram": {"enabled": False},
            "zalo": {"enabled": True, "token": zl.token, "api_base_url": zl.base_url,
                     "poll_interval_seconds": 0.01, "per_second": 100, **zalo},
            "web": {"port": 0}, "outbox": {"private_per_second": 100},
        }
    )


@pytest.fixture
async def zl() -> AsyncIterator[FakeZalo]:
    async with FakeZalo() as server:
        yield server


async def start_app(config: Config) -> BotApp:
    app = BotApp(config, content=shared_content())
    await app.db.upgrade()
    places = app.context.services.places
    await places.add_ward("HB", "Phường Hòa Bình")
    await places.add_group("HB", "TDP01", "Tổ dân phố 1")
    await app.context.services.access.grant(
        platform="zalo", user_id=LEADER, role=Role.LEADER, ward_code="HB", group_code="TDP01"
    )
    await app.start()
    return app


@pytest.fixture
async def app(zl: FakeZalo, tmp_path: Path) -> AsyncIterator[BotApp]:
    bot_app = await start_app(config_for(zl, tmp_path))
    yield bot_app
    await bot_app.stop()


async def ask(zl: FakeZalo, user: str, text: str, *, count: int = 1) -> list[str]:
    before = len(zl.sent_to(user))
    zl.text(user, user, text)
    sent = await zl.wait_sent(user, before + count)
    return [str(m["text"]) for m in sent[before:]]


async def test_client_speaks_zalo(zl: FakeZalo) -> None:
    async with ZaloClient(zl.token, zl.base_url) as client:
        me = await client.get_me()
        assert me["can_join_groups"] is True
        zl.text("1", "1", "xin chào")
        update = await client.get_update(poll_seconds=1)
        assert update is not None and update["message"]["text"] == "xin chào"
        assert await client.get_update(poll_seconds=1) is None  # 408: nothing came
        zl.fail_next("sendMessage", 429, "Quota exceeded")
        with pytest.raises(ZaloApiError) as info:
            await client.send_message("1", "hi")
        assert not info.value.transient  # the month's quota: waiting seconds will not help
        zl.fail_next("sendMessage", 403, "Internal server error")
        with pytest.raises(ZaloApiError) as info:
            await client.send_message("1", "hi")
        assert info.value.transient  # Zalo's table: 403 is its own server error
    async with ZaloClient("0:wrong", zl.base_url) as bad:
        with pytest.raises(ZaloApiError) as info:
            await bad.get_me()
        assert info.value.error_code == 401


def test_webhook_bodies_flat_or_wrapped() -> None:
    flat = {"event_name": "message.text.received", "message": {}}
    assert unwrap_update(flat) == flat
    assert unwrap_update({"ok": True, "result": flat}) == flat
    assert unwrap_update({"hello": 1}) is None


async def test_greeting_and_help_in_plain_text(app: BotApp, zl: FakeZalo) -> None:
    [greeting] = await ask(zl, RESIDENT, "/start")
    assert "Xin chào Bà Tư" in greeting
    assert "<b>" not in greeting
    assert "1. 📖 Hỏi đáp\n2. ✍️ Góp ý, phản ánh\n3. ❓ Trợ giúp" in greeting
    assert "Trả lời bằng số (1, 2 hoặc 3) để chọn." in greeting
    [help_text] = await ask(zl, RESIDENT, "3")  # the numbered button
    assert "Các lệnh bạn dùng được (Khách)" in help_text


async def test_numbered_menu_conversation_makes_an_invite(app: BotApp, zl: FakeZalo) -> None:
    [roles] = await ask(zl, LEADER, "/moi")
    assert "1. Cư dân" in roles and "2. Thành viên tổ công nghệ số" in roles
    assert "(1 hoặc 2)" in roles
    [groups] = await ask(zl, LEADER, "2")
    assert "Bước 2/3" in groups and "1. TDP01" in groups
    [uses] = await ask(zl, LEADER, "1")
    assert "Bước 3/3" in uses
    [created] = await ask(zl, LEADER, "15")
    assert "Dùng được: 15 người" in created
    code = re.search(r"/start ([A-Z0-9]{8})", created)
    assert code, created
    joined = await ask(zl, RESIDENT, f"/start {code.group(1)}", count=2)
    assert "Bạn đã tham gia với vai trò Thành viên tổ công nghệ số của Tổ dân phố 1" in joined[0]


async def test_a_number_without_a_menu_is_just_text(app: BotApp, zl: FakeZalo) -> None:
    [answer] = await ask(zl, RESIDENT, "42")
    assert "Trả lời bằng số" in answer or "cán bộ" in answer


async def test_stickers_are_ignored_and_the_bot_goes_on(app: BotApp, zl: FakeZalo) -> None:
    zl.sticker(RESIDENT, RESIDENT)
    [help_text] = await ask(zl, RESIDENT, "/trogiup")
    assert "Các lệnh bạn dùng được" in help_text
    assert len(zl.sent_to(RESIDENT)) == 1


async def test_long_texts_are_split_at_the_limit(zl: FakeZalo) -> None:
    from bot.config import ZaloSection
    from bot.core import Outgoing
    from bot.platforms.zalo import ZaloPlatform

    async def ignore(*_: object) -> None:
        return None

    section = ZaloSection(enabled=True, api_base_url=zl.base_url)
    platform = ZaloPlatform(section, ignore, client=ZaloClient(zl.token, zl.base_url))
    try:
        text = "\n".join(f"Dòng {i}: " + "chữ " * 40 for i in range(30))
        await platform.send("55", Outgoing(text=f"<b>Tiêu đề</b>\n{text}"))
        pieces = [str(m["text"]) for m in zl.sent_to("55")]
        assert len(pieces) == 3 and all(len(p) <= 2000 for p in pieces)
        assert pieces[0].startswith("Tiêu đề\nDòng 0")
    finally:
        await platform.client.close()


async def test_webhook_mode_checks_the_secret(zl: FakeZalo, tmp_path: Path) -> None:
    secret = "zalo-secret-123"
    config = config_for(zl, tmp_path, mode="webhook", webhook_url="https://x.vn/webhook/zalo",
                        webhook_secret=secret)
    app = await start_app(config)
    try:
        assert zl.webhook == {"url": "https://x.vn/webhook/zalo", "secret_token": secret}
        assert app.web is not None
        url = f"http://127.0.0.1:{app.web.port}/webhook/zalo"
        update = zl.text(RESIDENT, RESIDENT, "/trogiup", queue=False)
        async with aiohttp.ClientSession() as http:
            async with http.post(url, json=update, headers={"X-Bot-Api-Secret-Token": "wrong-one"}) as r:
                assert r.status == 403
            async with http.post(url, json={"ok": True, "result": update},
                                 headers={"X-Bot-Api-Secret-Token": secret}) as r:
                assert r.status == 200
        [reply] = await zl.wait_sent(RESIDENT)
        assert "Các lệnh bạn dùng được" in str(reply["text"])
    finally:
        await app.stop()


async def test_a_malformed_update_does_not_stop_the_poller(app: BotApp, zl: FakeZalo) -> None:
    zl._updates.put_nowait({"event_name": "message.text.received",
                            "message": {"from": "123", "chat": {"id": "1"}, "text": "/start"}})
    [greeting] = await ask(zl, RESIDENT, "/start")
    assert "Xin chào" in greeting


async def test_a_repeated_update_is_handled_once(app: BotApp, zl: FakeZalo) -> None:
    update = zl.text(RESIDENT, RESIDENT, "/quyen", queue=False)
    zl._updates.put_nowait(update)
    zl._updates.put_nowait(update)  # the platform sends the same message again
    await zl.wait_sent(RESIDENT, 1)
    [answer] = await ask(zl, RESIDENT, "/huy")
    assert "Không có việc gì đang làm dở" in answer
    assert len(zl.sent_to(RESIDENT)) == 2  # one /quyen answer, one /huy answer
