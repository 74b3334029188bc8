"""Dashboard sign-in and scope: one-time links, signed cookies, CSRF, leaders kept to their
groups by URL and by form."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from bot.core import Role
from bot.dashboard import COOKIE, Dashboard
from tests.conftest import Harness


@pytest.fixture
async def client(harness: Harness) -> AsyncIterator[TestClient[web.Request, web.Application]]:
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


async def sign_in(client: TestClient[web.Request, web.Application], path: str) -> None:
    response = await client.get(path, allow_redirects=False)
    assert response.status == 303
    assert response.headers["Location"] == "/dashboard"
    cookie = response.cookies[COOKIE]
    assert cookie["httponly"] and cookie["samesite"] == "Lax"


async def test_link_works_once_and_expires(
    harness: Harness, client: TestClient[web.Request, web.Application]
) -> None:
    await harness.grant("100", Role.COORDINATOR)
    path = await link_for(harness, "100")
    await sign_in(client, path)
    page = await client.get("/dashboard")
    assert page.status == 200
    html = await page.text()
    assert "Phường Hòa Bình" in html and "TDP01" in html and "TDP02" in html
    again = await client.get(path, allow_redirects=False)
    assert again.status == 403 and "chỉ dùng một lần" in await again.text()
    late = await link_for(harness, "100")
    harness.clock.advance(timedelta(minutes=11))
    assert (await client.get(late, allow_redirects=False)).status == 403


async def test_no_cookie_or_forged_cookie_is_refused(
    client: TestClient[web.Request, web.Application],
) -> None:
    response = await client.get("/dashboard")
    assert response.status == 401 and "/dashboard" in await response.text()
    client.session.cookie_jar.update_cookies({COOKIE: "eyJtIjoxfQ.forged.signature"})
    assert (await client.get("/dashboard")).status == 401


async def test_leader_sees_only_his_group_by_url(
    harness: Harness, client: TestClient[web.Request, web.Application]
) -> None:
    await harness.grant("200", Role.LEADER, "TDP01")
    await sign_in(client, await link_for(harness, "200"))
    html = await (await client.get("/dashboard")).text()
    assert "TDP01" in html and "TDP02" not in html
    assert (await client.get("/dashboard/group/TDP01")).status == 200
    refused = await client.get("/dashboard/group/TDP02")
    assert refused.status == 403
    assert (await client.get("/dashboard/group/NOPE")).status == 404


async def test_residents_get_no_link_and_logout_needs_csrf(
    harness: Harness, client: TestClient[web.Request, web.Application]
) -> None:
    await harness.grant("300", Role.RESIDENT, "TDP01")
    assert "chỉ dành cho Tổ trưởng" in await harness.say("/dashboard", user="300")
    await harness.grant("301", Role.COORDINATOR)
    await sign_in(client, await link_for(harness, "301"))
    html = await (await client.get("/dashboard")).text()
    csrf = re.search(r'name="csrf" value="([^"]+)"', html)
    assert csrf
    assert (await client.post("/logout", data={"csrf": "wrong"})).status == 403
    assert (await client.get("/dashboard")).status == 200
    out = await client.post("/logout", data={"csrf": csrf.group(1)})
    assert out.status == 200
    assert (await client.get("/dashboard")).status == 401


async def test_pages_escape_what_people_typed(
    harness: Harness, client: TestClient[web.Request, web.Application]
) -> None:
    await harness.ctx.services.places.add_group("P1", "TDP09", "<script>alert(1)</script>")
    await harness.grant("400", Role.COORDINATOR)
    await sign_in(client, await link_for(harness, "400"))
    response = await client.get("/dashboard")
    html = await response.text()
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]


async def test_dashboard_without_public_url(harness: Harness) -> None:
    await harness.grant("500", Role.COORDINATOR)
    assert "chưa được bật" in await harness.say("/dashboard", user="500")
