"""The dashboard in a real browser: Debian's chromium, headless, driven by Playwright. Signs
in with a one-time link, checks the charts are drawn, resolves a ticket through the form,
and saves screenshots (and the poster as an A4 PDF) to tests/artifacts/ for people to look
at. Skipped only on a machine without chromium and outside CI; in CI it must run."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from bot.web.dashboard.routes import Dashboard
from tests.conftest import IN_CI, Harness
from tests.test_dashboard import BOSS, LEADER, RESIDENT_B, link_for, seed_ward

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).parent / "artifacts"
HAVE_CHROMIUM = CHROMIUM.exists()

if not HAVE_CHROMIUM and not IN_CI:
    pytest.skip(
        "Debian's chromium is not installed (/usr/bin/chromium missing; "
        "`apt-get install -y chromium`); CI installs it and runs this test",
        allow_module_level=True,
    )

from playwright.async_api import Browser, Page, async_playwright  # noqa: E402


@pytest.fixture
async def site(harness: Harness) -> AsyncIterator[str]:
    config = harness.ctx.config
    web_config = config.web.model_copy(update={"public_url": "https://bot.example.vn"})
    object.__setattr__(harness.ctx, "config", config.model_copy(update={"web": web_config}))
    app = web.Application()
    Dashboard(harness.ctx, secret="browser-secret", secure_cookie=False).install(app)
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        yield str(client.make_url("")).rstrip("/")


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    assert HAVE_CHROMIUM, "chromium must be installed in CI (.ci/run installs it)"
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True,
            args=["--no-sandbox", "--disable-dev-shm-usage"],
        )
        try:
            yield launched
        finally:
            await launched.close()


async def shot(page: Page, name: str) -> None:
    await page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


@pytest.fixture(autouse=True, scope="module")
def artifacts() -> None:
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True)


async def test_sign_in_see_charts_and_resolve_a_ticket(
    harness: Harness, site: str, browser: Browser
) -> None:
    seeded = await seed_ward(harness)
    context = await browser.new_context(viewport={"width": 1100, "height": 900}, locale="vi-VN")
    page = await context.new_page()

    await page.goto(site + await link_for(harness, BOSS))
    await page.get_by_role("button", name="Đăng nhập").click()
    assert page.url == f"{site}/dashboard"
    assert await page.locator("h1").first.inner_text() == "Phường Hòa Bình"
    bars = page.locator('svg[data-chart="bars"] rect.bar')
    assert await bars.count() == 2
    box = await bars.first.bounding_box()
    assert box is not None and box["width"] > 50 and box["height"] > 10
    trend = await page.locator('svg[data-chart="line"] polyline.trend').get_attribute("points")
    assert trend is not None and len(trend.split()) == 8
    await shot(page, "01-overview")

    await page.select_option("select[name=buoc]", "vneid")
    await page.get_by_role("button", name="Xem").click()
    await page.wait_for_url("**/dashboard?buoc=vneid")
    await shot(page, "02-overview-vneid-with-target")

    await page.get_by_role("link", name="TDP01", exact=True).first.click()
    await page.wait_for_url("**/dashboard/group/TDP01")
    assert await page.get_by_text("Lê Văn Cường").count() == 1
    await shot(page, "03-group")

    await page.get_by_role("link", name="📬 Phản ánh").click()
    await page.get_by_role("link", name=f"PA-{seeded.ticket_b}").click()
    await page.fill("textarea[name=message]", "Đã thu gom sáng nay, cảm ơn bà con.")
    await shot(page, "04-ticket")
    before = len(harness.platform.said)
    await page.get_by_role("button", name="✔️ Xong").click()
    await page.wait_for_url(f"**/dashboard/feedback/{seeded.ticket_b}?xong=resolve&bao=1")
    assert "Đã đánh dấu giải quyết xong" in await page.locator("[role=status]").inner_text()
    assert await page.locator("[data-state=resolved]").count() == 1
    await harness.deliver()  # the message to the reporter is an outbox row
    told = [s for s in harness.platform.said[before:] if s.chat_id == RESIDENT_B]
    assert len(told) == 1 and "Đã thu gom" in told[0].text
    await shot(page, "05-ticket-resolved")

    await page.get_by_role("link", name="📣 Thông báo & chiến dịch").click()
    await shot(page, "06-notices")
    await page.get_by_role("link", name="❓ Hỏi đáp").click()
    await shot(page, "07-explanations")
    await context.close()


async def test_leader_on_a_phone_prints_a_poster(
    harness: Harness, site: str, browser: Browser
) -> None:
    await seed_ward(harness)
    harness.router.attach(harness.platform)
    context = await browser.new_context(
        viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True,
        locale="vi-VN",
    )
    page = await context.new_page()
    await page.goto(site + await link_for(harness, LEADER))
    await page.get_by_role("button", name="Đăng nhập").click()
    assert await page.locator('svg[data-chart="bars"] rect.bar').count() == 1
    await shot(page, "10-phone-overview")
    forbidden = await page.goto(f"{site}/dashboard/group/TDP02")
    assert forbidden is not None and forbidden.status == 403
    await page.goto(f"{site}/dashboard/group/TDP01/poster")
    await page.get_by_role("button", name="Tạo mã mời và áp phích").click()
    await page.wait_for_url("**/dashboard/group/TDP01/poster")
    qr = page.locator("svg.qr")
    assert await qr.count() == 1
    await shot(page, "11-phone-poster")
    await page.emulate_media(media="print")
    await page.pdf(path=str(ARTIFACTS / "12-poster-a4.pdf"), format="A4", print_background=True)
    await page.set_viewport_size({"width": 794, "height": 1123})  # A4 at 96 dpi
    await shot(page, "12-poster-print")
    await context.close()
