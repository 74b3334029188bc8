"""Zalo OA: signed webhooks, replies to users and groups, rotating tokens in the database."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from bot.app import BotApp
from bot.config import Config
from bot.core import Outgoing
from bot.platforms.zalo_oa import expected_signature, verify_signature
from bot.platforms.zalo_oa_store import DbTokenStore
from tests.conftest import shared_content
from tests.fake_zalo_oa import FakeZaloOA

APP_ID, OA_SECRET = "5551234", "oa-secret-key"
MSG_IDS = itertools.count(1)


@pytest.fixture
async def oa() -> AsyncIterator[FakeZaloOA]:
    async with FakeZaloOA() as server:
        yield server


@pytest.fixture
async def app(oa: FakeZaloOA, sqlite_url: str) -> AsyncIterator[BotApp]:
    config = Config.model_validate({
        "database": {"url": sqlite_url},
        "telegram": {"enabled": False},
        "zalo_oa": {
            "enabled": True, "app_id": APP_ID, "secret_key": oa.app_secret,
            "access_token": "access-1", "refresh_token": "refresh-1", "oa_secret_key": OA_SECRET,
            "api_base_url": oa.base_url, "oauth_base_url": oa.base_url,
        },
        "web": {"port": 0},
    })
    bot_app = BotApp(config, content=shared_content())
    await bot_app.start()
    yield bot_app
    await bot_app.stop()


def event(name: str, user: str, text: str, *, sent: float | None = None,
          msg_id: str | None = None, **extra: Any) -> bytes:
    body = {
        "app_id": APP_ID, "event_name": name,
        "timestamp": str(int((time.time() if sent is None else sent) * 1000)),
        "sender": {"id": user}, "recipient": {"id": "oa-1", **extra},
        "message": {"text": text, "msg_id": msg_id or f"m-{next(MSG_IDS)}"},
    }
    return json.dumps(body, ensure_ascii=False).encode()


def sign(raw: bytes) -> str:
    """The signature Zalo would send: over the app id, body, the body's timestamp, key."""
    return expected_signature(APP_ID, raw, json.loads(raw)["timestamp"], OA_SECRET)


async def post(app: BotApp, raw: bytes, signature: str) -> int:
    assert app.web is not None
    url = f"http://127.0.0.1:{app.web.port}/webhook/zalo_oa"
    async with aiohttp.ClientSession() as http, http.post(
        url, data=raw, headers={"X-ZEvent-Signature": signature, "Content-Type": "application/json"}
    ) as response:
        return response.status


async def wait_for(predicate: Any) -> None:
    for _ in range(100):
        if predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition never became true")


async def test_signed_event_is_answered_and_bad_signature_refused(
    app: BotApp, oa: FakeZaloOA
) -> None:
    raw = event("user_send_text", "u-1", "/trogiup")
    assert await post(app, raw, "mac=" + "0" * 64) == 403
    assert await post(app, raw.replace(b"/trogiup", b"/quyen"), sign(raw)) == 403
    assert await post(app, raw, sign(raw)) == 200
    await wait_for(lambda: oa.texts_to("u-1"))
    assert "Các lệnh bạn dùng được" in oa.texts_to("u-1")[0]
    assert "<b>" not in oa.texts_to("u-1")[0]


async def test_group_command_is_answered_in_the_group(app: BotApp, oa: FakeZaloOA) -> None:
    raw = event("user_send_group_text", "u-2", "/trogiup", group_id="g-77")
    assert await post(app, raw, sign(raw)) == 200
    await wait_for(lambda: oa.texts_to("g-77"))
    assert [m["kind"] for m in oa.sent] == ["group"]
    chatter = event("user_send_group_text", "u-2", "chào cả nhà", group_id="g-77")
    assert await post(app, chatter, sign(chatter)) == 200
    await asyncio.sleep(0.1)
    assert len(oa.sent) == 1  # ordinary chatter gets no answer


async def test_expired_token_is_refreshed_once_and_rotated_in_the_database(
    app: BotApp, oa: FakeZaloOA
) -> None:
    assert app.zalo_oa is not None
    await app.zalo_oa.windows.heard_from("u-3")  # she wrote: replies are free for 48 h
    oa.expire_access_token()
    await app.zalo_oa.send("u-3", Outgoing(text="Xin chào"))
    assert oa.refreshes == 1 and oa.texts_to("u-3") == ["Xin chào"]
    stored = await DbTokenStore(app.db, app.clock).load(APP_ID)
    assert stored is not None and stored.refresh_token == oa.refresh_token != "refresh-1"
    # A second expiry uses the rotated refresh token, which the server accepts.
    oa.expire_access_token()
    await asyncio.gather(*(app.zalo_oa.send("u-3", Outgoing(text=f"tin {i}")) for i in range(3)))
    assert oa.refreshes == 2
    assert len(oa.texts_to("u-3")) == 4


async def test_a_repeated_event_is_handled_once(app: BotApp, oa: FakeZaloOA) -> None:
    raw = event("user_send_text", "u-4", "/quyen", msg_id="same-1")
    assert await post(app, raw, sign(raw)) == 200
    assert await post(app, raw, sign(raw)) == 200  # Zalo retries a slow webhook
    await wait_for(lambda: oa.texts_to("u-4"))
    await asyncio.sleep(0.2)
    assert len(oa.texts_to("u-4")) == 1


def test_a_deeply_nested_body_is_refused_not_a_crash() -> None:
    raw = b"[" * 200_000 + b"]" * 200_000
    assert not verify_signature({"X-ZEvent-Signature": "mac=00"}, raw, app_id=APP_ID,
                                oa_secret_key=OA_SECRET)
