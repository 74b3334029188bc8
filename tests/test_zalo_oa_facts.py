"""Zalo OA as the sources say it behaves (shared/PLATFORMS.md, issue #13), end to end on
the fake OA API: group ids in `recipient.id`, late signed events, `-213`/`-230`, a dead
refresh token, and the 8 free replies within 48 hours."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.app import BotApp
from bot.clock import FrozenClock
from bot.config import Config
from bot.core import DeliveryError, Outgoing
from bot.platforms.zalo_oa import expected_signature
from tests.conftest import shared_content
from tests.fake_zalo_oa import FakeZaloOA
from tests.recording import RecordingPlatform

APP_ID, OA_SECRET = "5551234", "oa-secret-key"
ADMIN = "4242"
START = datetime(2026, 11, 24, 4, 0, tzinfo=UTC)


def make_app(oa: FakeZaloOA, tmp_path: Path, clock: FrozenClock, **extra: Any) -> BotApp:
    config = Config.model_validate({
        "database": {"url": f"sqlite+aiosqlite:///{tmp_path}/bot.db"},
        "telegram": {"enabled": False},
        "zalo_oa": {
            "enabled": True, "app_id": APP_ID, "secret_key": oa.app_secret,
            "access_token": "access-1", "refresh_token": "refresh-1", "oa_secret_key": OA_SECRET,
            "api_base_url": oa.base_url, "oauth_base_url": oa.base_url, **extra,
        },
        "admins": {"telegram": [int(ADMIN)]},
        "web": {"port": 0},
    })
    return BotApp(config, clock=clock, content=shared_content())


@pytest.fixture
async def oa() -> AsyncIterator[FakeZaloOA]:
    async with FakeZaloOA() as server:
        yield server


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(START)


@pytest.fixture
async def app(oa: FakeZaloOA, tmp_path: Path, clock: FrozenClock) -> AsyncIterator[BotApp]:
    bot_app = make_app(oa, tmp_path, clock)
    await bot_app.start()
    yield bot_app
    await bot_app.stop()


def event(clock: FrozenClock, name: str, user: str, text: str, *, msg_id: str,
          age: timedelta = timedelta(0), recipient: dict[str, str] | None = None) -> bytes:
    body = {
        "app_id": APP_ID, "event_name": name,
        "timestamp": str(int((clock.now() - age).timestamp() * 1000)),
        "sender": {"id": user}, "recipient": recipient or {"id": "oa-1"},
        "message": {"text": text, "msg_id": msg_id},
    }
    return json.dumps(body, ensure_ascii=False).encode()


async def post(app: BotApp, raw: bytes) -> int:
    assert app.web is not None
    signature = expected_signature(APP_ID, raw, json.loads(raw)["timestamp"], OA_SECRET)
    async with aiohttp.ClientSession() as http, http.post(
        f"http://127.0.0.1:{app.web.port}/webhook/zalo_oa", data=raw,
        headers={"X-ZEvent-Signature": signature, "Content-Type": "application/json"},
    ) as response:
        return response.status


async def wait_for(predicate: Any, what: str = "condition") -> None:
    for _ in range(150):
        if predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"{what} never became true")


async def test_a_group_event_with_the_id_in_recipient_id_is_answered(
    app: BotApp, oa: FakeZaloOA, clock: FrozenClock
) -> None:
    raw = event(clock, "user_send_group_text", "u-2", "/trogiup", msg_id="g1",
                recipient={"id": "g-88"})
    assert await post(app, raw) == 200
    await wait_for(lambda: oa.texts_to("g-88"), "the group answer")
    assert "Các lệnh bạn dùng được" in oa.texts_to("g-88")[0]
    assert [m["kind"] for m in oa.sent] == ["group"]


async def test_an_unknown_event_is_logged_once_as_a_shape_only(
    app: BotApp, clock: FrozenClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bot.platforms.zalo_oa")
    for n in range(3):
        body = json.loads(event(clock, "user_send_location", "u-secret-9", "Nhà số 5 ngõ 7",
                                msg_id=f"loc-{n}"))
        body["message"]["attachments"] = [{"payload": {"coordinates": {"lat": 21.0}}}]
        assert await post(app, json.dumps(body, ensure_ascii=False).encode()) == 200
    shapes = [r.getMessage() for r in caplog.records if "its shape" in r.getMessage()]
    assert len(shapes) == 1
    assert "'user_send_location'" in shapes[0] and '"lat": "float"' in shapes[0]
    assert "u-secret-9" not in shapes[0] and "Nhà số 5" not in shapes[0]  # no personal data


async def test_a_late_but_signed_event_gets_200_and_is_never_handled(
    app: BotApp, oa: FakeZaloOA, clock: FrozenClock
) -> None:
    late = event(clock, "user_send_text", "u-7", "/trogiup", msg_id="late-1",
                 age=timedelta(minutes=20))
    assert await post(app, late) == 200  # not 403: Zalo would retry, then disable us
    assert await post(app, late) == 200  # its retry
    fresh_copy = event(clock, "user_send_text", "u-7", "/trogiup", msg_id="late-1")
    assert await post(app, fresh_copy) == 200  # the same msg_id, re-signed now
    ok = event(clock, "user_send_text", "u-7", "/quyen", msg_id="ok-1")
    assert await post(app, ok) == 200
    await wait_for(lambda: oa.texts_to("u-7"), "the answer to /quyen")
    await asyncio.sleep(0.1)
    assert len(oa.texts_to("u-7")) == 1 and "Các lệnh" not in oa.texts_to("u-7")[0]


async def test_minus_213_and_minus_230_give_up_one_message_only(
    app: BotApp, oa: FakeZaloOA, clock: FrozenClock
) -> None:
    assert app.zalo_oa is not None
    for user, code in (("u-21", -213), ("u-23", -230)):
        await app.zalo_oa.windows.heard_from(user)
        oa.fail_next(code, "User has not interacted", recipient=user)
        with pytest.raises(DeliveryError) as info:
            await app.zalo_oa.send(user, Outgoing(text="Tin 1"))
        assert info.value.problem == "rejected"  # not "gone"
        await app.zalo_oa.send(user, Outgoing(text="Tin 2"))  # the person is kept
        assert oa.texts_to(user) == ["Tin 2"]


async def test_a_dead_refresh_token_tells_the_admins_once(
    app: BotApp, oa: FakeZaloOA, clock: FrozenClock
) -> None:
    assert app.zalo_oa is not None
    admin = RecordingPlatform()
    app.router.attach(admin)
    await app.zalo_oa.windows.heard_from("u-9")
    oa.kill_refresh_token()
    for _ in range(2):
        with pytest.raises(DeliveryError) as info:
            await app.zalo_oa.send("u-9", Outgoing(text="Xin chào"))
        assert info.value.problem == "paused"  # waits; nothing is lost
    app.context.services.outbox.wake()
    await wait_for(lambda: admin.said, "the admin's alert")
    await asyncio.sleep(0.1)
    assert len(admin.said) == 1 and admin.said[0].chat_id == ADMIN
    assert "cấp quyền lại" in admin.said[0].text
    state = await app.context.services.zalo_status.state()
    assert state.oa_reauthorize


async def test_new_tokens_in_the_config_end_the_wait(
    oa: FakeZaloOA, tmp_path: Path, clock: FrozenClock
) -> None:
    first = make_app(oa, tmp_path, clock)
    await first.start()
    assert first.zalo_oa is not None
    await first.zalo_oa.windows.heard_from("u-1")
    oa.kill_refresh_token()
    with pytest.raises(DeliveryError) as info:
        await first.zalo_oa.send("u-1", Outgoing(text="a"))
    assert info.value.problem == "paused"
    await first.stop()
    oa.refresh_dead, oa.access_token, oa.refresh_token = False, "access-new", "refresh-new"
    # Re-authorised: the operator pastes the new tokens into the config and restarts.
    second = make_app(oa, tmp_path, clock, access_token="access-new",
                      refresh_token="refresh-new")
    await second.start()
    try:
        assert second.zalo_oa is not None
        await second.zalo_oa.windows.heard_from("u-1")
        await second.zalo_oa.send("u-1", Outgoing(text="Đã chạy lại"))
        assert oa.texts_to("u-1") == ["Đã chạy lại"]
    finally:
        await second.stop()


async def test_eight_free_replies_in_48_hours_then_no_proactive_by_default(
    app: BotApp, oa: FakeZaloOA, clock: FrozenClock
) -> None:
    assert app.zalo_oa is not None
    raw = event(clock, "user_send_text", "u-8", "/trogiup", msg_id="w-1")
    assert await post(app, raw) == 200
    await wait_for(lambda: oa.texts_to("u-8"), "the reply")
    for n in range(7):
        await app.zalo_oa.send("u-8", Outgoing(text=f"Trả lời {n}"))
    with pytest.raises(DeliveryError) as info:  # the 9th: a proactive message, budget 0
        await app.zalo_oa.send("u-8", Outgoing(text="Nhắc việc"))
    assert info.value.problem == "rejected"
    assert len(oa.texts_to("u-8")) == 8
    counts = await app.context.services.zalo_status.state()
    assert counts.oa is not None
    assert (counts.oa.replies, counts.oa.proactive, counts.oa.refused) == (8, 0, 1)
    # She writes again two days later: a new window of 8 free replies.
    clock.advance(timedelta(hours=49))
    again = event(clock, "user_send_text", "u-8", "cảm ơn", msg_id="w-2")
    assert await post(app, again) == 200
    await wait_for(lambda: len(oa.texts_to("u-8")) == 9, "the next reply")


async def test_proactive_messages_within_the_monthly_budget(
    oa: FakeZaloOA, tmp_path: Path, clock: FrozenClock
) -> None:
    app = make_app(oa, tmp_path, clock, proactive_per_month=2)
    await app.start()
    try:
        assert app.zalo_oa is not None
        await app.zalo_oa.send("u-p", Outgoing(text="Nhắc 1"))
        await app.zalo_oa.send("u-p", Outgoing(text="Nhắc 2"))
        with pytest.raises(DeliveryError):
            await app.zalo_oa.send("u-p", Outgoing(text="Nhắc 3"))
        state = await app.context.services.zalo_status.state()
        assert state.oa is not None and (state.oa.proactive, state.oa.refused) == (2, 1)
        text = app.context.texts.render(
            "zalo/status", "vi", bot=None, since=None, next_probe=None, oa=state.oa,
            oa_reauthorize=False, proactive_limit=2)
        assert "Tin chủ động (tính vào hạn mức hoặc mất phí): 2 / 2" in text
    finally:
        await app.stop()
