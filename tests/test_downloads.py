"""Where the chat cannot carry a file (Zalo), `/xuat` answers with a one-time link; the link
gives the Excel file once, within its time, and only while the person is still staff."""

from __future__ import annotations

import io
import re
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from openpyxl import load_workbook

from bot.core import Capabilities
from bot.roles import Role
from bot.services.tables import read_table
from bot.web.downloads import DownloadRoutes
from tests.conftest import Harness
from tests.recording import press

Client = TestClient[web.Request, web.Application]


@pytest.fixture
async def client(harness: Harness) -> AsyncIterator[Client]:
    config = harness.ctx.config
    web_config = config.web.model_copy(update={"public_url": "https://bot.example.vn"})
    object.__setattr__(harness.ctx, "config", config.model_copy(update={"web": web_config}))
    harness.platform.capabilities = Capabilities(buttons=False, edit=False, documents=False,
                                                 photos=False, max_text=2000, markup="plain")
    ward = await harness.ctx.services.places.ward_by_code("P1")
    assert ward is not None
    await harness.ctx.services.registry.import_table(ward.id, read_table(
        "code,group,head_name\nTDP01-001,TDP01,Nguyễn Văn An\n".encode()))
    app = web.Application()
    DownloadRoutes(harness.ctx).install(app)
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


async def link(harness: Harness, user: str) -> str:
    said = await harness.say("/xuat", user=user)
    match = re.search(r"https://bot\.example\.vn(/download/[\w-]+)", said)
    assert match, said
    assert "dùng được một lần, trong 30 phút" in said
    return match.group(1)


async def test_one_time_link_gives_the_workbook_once(harness: Harness, client: Client) -> None:
    await harness.grant("100", Role.COORDINATOR)
    path = await link(harness, "100")
    page = await client.get(path)  # what a chat app's link preview fetches: no file
    assert page.status == 200 and "Tải về" in await page.text()
    assert "spreadsheetml" not in page.headers["Content-Type"]
    response = await client.post(path)
    assert response.status == 200
    assert "attachment; filename=\"tien-do-P1-" in response.headers["Content-Disposition"]
    book = load_workbook(io.BytesIO(await response.read()))
    rows = [[c.value for c in r] for r in book["Danh sách hộ"].iter_rows()]
    assert rows[1][:3] == ["TDP01-001", "TDP01", "Nguyễn Văn An"]
    again = await client.post(path)
    assert again.status == 404 and "chỉ dùng được một lần" in await again.text()
    assert (await client.get(path)).status == 404


async def test_link_expires_and_follows_the_role(harness: Harness, client: Client) -> None:
    await harness.grant("100", Role.COORDINATOR)
    late = await link(harness, "100")
    harness.clock.advance(timedelta(minutes=31))
    assert (await client.get(late)).status == 404
    assert (await client.post(late)).status == 404
    assert (await client.get("/download/not-a-token")).status == 404
    kept = await link(harness, "100")
    await harness.say("/xoadulieu", user="100")  # gives up the person's roles, among others
    await harness.send(press("fbd:yes", user="100"))
    assert (await client.post(kept)).status == 404


async def test_only_coordinators_export(harness: Harness, client: Client) -> None:
    await harness.grant("200", Role.LEADER, "TDP01")
    said = await harness.say("/xuat", user="200")
    assert "/download/" not in said and "Cán bộ phường" in said
