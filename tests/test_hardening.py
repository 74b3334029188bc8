"""Found by probing: sign-out ends the session on the server, the sign-in form is bound to
the browser that opened the link, odd URLs and webhook bodies are 4xx not 500 (one log line,
no traceback), and NUL characters in chat text are dropped on the way in."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from bot.clock import FrozenClock
from bot.context import build_context
from bot.core import Role
from bot.db import Database
from bot.metrics import Metrics
from bot.router import Router
from bot.web.dashboard.routes import COOKIE, Dashboard
from bot.web.server import Webhook, WebServer
from handlers import register_all
from tests.conftest import Harness, make_config
from tests.recording import RecordingPlatform, message

Client = TestClient[web.Request, web.Application]


@pytest.fixture
async def client(harness: Harness) -> AsyncIterator[Client]:
    config = harness.ctx.config
    web_config = config.web.model_copy(update={"public_url": "https://bot.example.vn"})
    object.__setattr__(harness.ctx, "config", config.model_copy(update={"web": web_config}))
    app = web.Application()
    Dashboard(harness.ctx, secret="test-secret", secure_cookie=False).install(app)
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


async def link_for(harness: Harness, user: str) -> str:
    said = await harness.say("/dashboard", user=user)
    match = re.search(r"https://bot\.example\.vn(/login/[\w-]+)", said)
    assert match, said
    return match.group(1)


async def sign_in(client: Client, path: str) -> str:
    page = await client.get(path)
    form = re.search(r'name="login" value="([^"]+)"', await page.text())
    assert form
    response = await client.post(path, data={"login": form.group(1)}, allow_redirects=False)
    assert response.status == 303
    return str(response.cookies[COOKIE].value)


async def test_sign_out_ends_the_session_on_the_server(harness: Harness, client: Client) -> None:
    await harness.grant("100", Role.COORDINATOR)
    copied = await sign_in(client, await link_for(harness, "100"))
    html = await (await client.get("/dashboard")).text()
    csrf = re.search(r'name="csrf" value="([^"]+)"', html)
    assert csrf
    assert (await client.post("/logout", data={"csrf": csrf.group(1)})).status == 200
    client.session.cookie_jar.update_cookies({COOKIE: copied})  # the cookie, kept by someone
    assert (await client.get("/dashboard")).status == 401


async def test_a_cross_site_sign_in_post_is_refused_and_the_link_survives(
    harness: Harness, client: Client,
) -> None:
    await harness.grant("100", Role.COORDINATOR)
    path = await link_for(harness, "100")
    # Another site's page posting the form: no cookie from our page, a foreign origin.
    forged = await client.post(path, headers={"Origin": "https://evil.example"},
                               allow_redirects=False)
    assert forged.status == 403 and COOKIE not in forged.cookies
    page = await client.get(path)
    form = re.search(r'name="login" value="([^"]+)"', await page.text())
    assert form
    cross = await client.post(path, data={"login": form.group(1)}, allow_redirects=False,
                              headers={"Sec-Fetch-Site": "cross-site"})
    assert cross.status == 403
    client.session.cookie_jar.clear()
    no_cookie = await client.post(path, data={"login": form.group(1)}, allow_redirects=False)
    assert no_cookie.status == 403
    await sign_in(client, path)  # the real person, from the page: still works
    assert (await client.get("/dashboard")).status == 200


async def test_odd_urls_are_not_found_not_server_errors(harness: Harness, client: Client) -> None:
    await harness.grant("100", Role.COORDINATOR)
    await sign_in(client, await link_for(harness, "100"))
    for path in ("/dashboard/feedback/99999999999999999999999999999",
                 "/dashboard/group/TDP%0001", "/dashboard/group/TDP%0001/poster",
                 "/dashboard/feedback/123456789"):
        response = await client.get(path)
        assert response.status == 404, path


async def test_webhook_bodies_that_attack_the_parser_are_one_line(
    caplog: pytest.LogCaptureFixture, db: Database, clock: FrozenClock,
) -> None:
    async def feed(payload: dict[str, Any]) -> None:
        raise KeyError("message")  # what a platform library raises on a malformed update

    hook = Webhook(path="/webhook/test", header="X-Secret", secret="s3cret-s3cret", feed=feed)
    server = WebServer(db, Metrics(clock), [hook], host="127.0.0.1", port=0)
    caplog.set_level(logging.INFO)
    async with TestClient(TestServer(server.app)) as http:
        nested = b"[" * 100_000 + b"]" * 100_000
        deep = await http.post("/webhook/test", data=nested, headers={"X-Secret": "s3cret-s3cret"})
        assert deep.status == 400
        odd = await http.post("/webhook/test", json={"update_id": "x", "message": 5},
                              headers={"X-Secret": "s3cret-s3cret"})
        assert odd.status == 200
    [line] = [r for r in caplog.records if r.getMessage().startswith("webhook")]
    assert line.getMessage() == "webhook /webhook/test: unreadable update skipped (KeyError)"
    assert line.exc_info is None


async def test_nul_characters_in_chat_text_are_dropped(db_url: str, clock: FrozenClock) -> None:
    db = Database(db_url)
    await db.upgrade()
    try:
        ctx = build_context(make_config(db_url), db, clock)
        router = Router(ctx)
        register_all(router)
        platform = RecordingPlatform()
        router.attach(platform)
        await ctx.services.places.add_ward("P1", "Phường Hòa Bình")
        await ctx.services.places.add_group("P1", "TDP01", "Tổ 1")
        await ctx.services.access.grant(platform="telegram", user_id="100",
                                        role=Role.RESIDENT, ward_code="P1", group_code="TDP01")
        await router.dispatch(platform, message(
            "/gopy Đèn\x00 đường trước nhà số 5 bị tắt\x00 đã ba hôm", name="Bà\x00 Năm"))
        said = "\n".join(platform.texts())
        assert "trục trặc" not in said
        ward = await ctx.services.places.ward_by_code("P1")
        assert ward is not None
        tickets = await ctx.services.feedback.mine(
            await ctx.services.access.identify("telegram", message("x").sender))
        assert tickets and "\x00" not in tickets[0].text
        assert "Đèn đường trước nhà số 5 bị tắt đã ba hôm" in tickets[0].text
    finally:
        await db.dispose()


async def test_forged_buttons_get_a_polite_line_not_an_apology(harness: Harness) -> None:
    from tests.recording import press

    await harness.grant("100", Role.COORDINATOR)
    await harness.say("/moi")  # a form is open: its buttons are checked too
    for user, payload in (("999", "aw:" + "9" * 40 + ":tiendo"), ("100", "st:y:" + "9" * 30),
                          ("100", "st:m:-1"), ("100", "inv:1"), ("100", "inv:role:boss"),
                          ("100", "inv:group:" + "9" * 30)):
        before = len(harness.platform.said)
        await harness.send(press(payload, user=user))
        said = "\n".join(s.text for s in harness.platform.said[before:])
        assert "trục trặc" not in said, (payload, said)
