"""Dashboard sign-in and scope: one-time links, signed cookies, CSRF, leaders kept to their
groups by URL and by form; every page and download; /healthz and /metrics."""

from __future__ import annotations

import io
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, timedelta

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from bot.core import Chat, Role, Sender
from bot.metrics import Metrics
from bot.services.tables import read_table
from bot.web.dashboard.routes import COOKIE, Dashboard
from bot.web.server import WebServer
from tests.conftest import Harness

Client = TestClient[web.Request, web.Application]
LIST = (
    "mã hộ,tổ,chủ hộ,địa chỉ,số nhân khẩu,số người lớn\n"
    "TDP01-001,TDP01,Nguyễn Văn An,12 Lê Lợi,4,3\n"
    "TDP01-002,TDP01,Trần Thị Bình,14 Lê Lợi,2,2\n"
    "TDP01-003,TDP01,Lê Văn Cường,16 Lê Lợi,1,1\n"
    "TDP02-001,TDP02,Phạm Thị Dung,3 Hùng Vương,3,2\n"
)
BOSS, LEADER, HELPER, RESIDENT_A, RESIDENT_B = "100", "200", "250", "300", "301"


@dataclass(frozen=True)
class Seeded:
    ticket_a: int  # filed in TDP01
    ticket_b: int  # filed in TDP02
    notice: int


async def seed_ward(harness: Harness) -> Seeded:
    """A ward with households, two weeks of logged steps, chats, a campaign, a sent notice,
    explanation reads, and one ticket in each group."""
    services = harness.ctx.services
    ward = await services.places.ward_by_code("P1")
    assert ward is not None
    await services.registry.import_table(ward.id, read_table(LIST.encode()), create_groups=True)
    await harness.grant(BOSS, Role.COORDINATOR)
    await harness.grant(LEADER, Role.LEADER, "TDP01")
    await harness.grant(HELPER, Role.HELPER, "TDP01")
    await harness.grant(RESIDENT_A, Role.RESIDENT, "TDP01")
    await harness.grant(RESIDENT_B, Role.RESIDENT, "TDP02")
    access = services.access
    boss = await access.identify("telegram", Sender(BOSS, "Cán bộ Hoa"))
    helper = await access.identify("telegram", Sender(HELPER, "Anh Tư"))
    first = await services.households.by_code(ward.id, "TDP01-001")
    second = await services.households.by_code(ward.id, "TDP01-002")
    assert first is not None and second is not None
    harness.clock.advance(timedelta(days=-14))
    await services.households.mark(helper, first.id, {"smartphone": None, "vneid": None})
    harness.clock.advance(timedelta(days=7))
    await services.households.mark(helper, second.id, {"smartphone": None})
    harness.clock.advance(timedelta(days=7))
    for code in ("TDP01", "TDP02"):
        await services.chats.bind(boss, "telegram", Chat(f"-100{code[-1]}", "group",
                                                           f"Nhóm {code}"), code)
    groups = {g.code: g.id for g in await services.places.groups(ward.id)}
    await services.campaigns.create(
        boss, ward.id, title="Tháng VNeID", step_key="vneid", target=80,
        starts_on=date(2026, 11, 1), ends_on=date(2026, 12, 31), group_ids=[], days=["mon"],
        at_time="08:00",
    )
    created = await services.notices.create(
        boss, ward.id, raw_text="Họp tổ tối thứ Bảy", rendered="Họp tổ tối thứ Bảy",
        group_ids=list(groups.values()),
    )
    await services.explanations.record_read("bot_howto")
    await services.explanations.vote("bot_howto", boss.member_id, helpful=False)
    resident_a = await access.identify("telegram", Sender(RESIDENT_A, "Bà Năm"))
    resident_b = await access.identify("telegram", Sender(RESIDENT_B, "Ông Sáu"))
    a = await services.feedback.submit(resident_a, text="Đèn đường trước nhà số 5 tắt",
                                       category="infrastructure")
    b = await services.feedback.submit(resident_b, text="Rác chưa được thu <b>3 ngày</b>",
                                       category="environment")
    return Seeded(a.ticket.number, b.ticket.number, created.notice_id)


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, html[:400]
    return match.group(1)


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
    page = await client.get(path, allow_redirects=False)  # what a link preview would fetch
    assert page.status == 200 and "Đăng nhập" in await page.text()
    assert COOKIE not in page.cookies
    form = re.search(r'name="login" value="([^"]+)"', await page.text())
    assert form
    response = await client.post(path, data={"login": form.group(1)}, allow_redirects=False)
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


async def signed_in(harness: Harness, client: Client, user: str) -> str:
    """Sign `user` in and return the overview's form token."""
    await sign_in(client, await link_for(harness, user))
    page = await client.get("/dashboard")
    assert page.status == 200
    return csrf_of(await page.text())


async def test_overview_draws_steps_chart_trend_and_campaign(
    harness: Harness, client: Client
) -> None:
    await seed_ward(harness)
    await signed_in(harness, client, BOSS)
    html = await (await client.get("/dashboard?buoc=smartphone")).text()
    assert 'data-chart="bars"' in html and 'data-chart="line"' in html
    assert "Có điện thoại thông minh" in html
    # TDP01 has 2 of 3 households with a smartphone; TDP02 none.
    assert "67%" in html and ">TDP02</text>" in html
    assert "Tháng VNeID" in html and "chỉ tiêu 80%" in html
    # The trend climbs: 0% three weeks ago, then 1 then 2 of 4 households.
    points = re.findall(r"<title>\d\d/\d\d: (\d+)%</title>", html)
    assert len(points) == 8 and points[0] == "0" and points[-1] == "50"
    assert points == sorted(points, key=int)
    unknown = await client.get("/dashboard?buoc=<x>")
    assert unknown.status == 200  # an unknown step falls back to the first


async def test_group_page_lists_missing_households_with_who_and_when(
    harness: Harness, client: Client
) -> None:
    await seed_ward(harness)
    await signed_in(harness, client, LEADER)
    html = await (await client.get("/dashboard/group/TDP01?buoc=smartphone")).text()
    assert "Lê Văn Cường" in html  # still without a smartphone
    assert "TDP01-001" not in html
    everything = await (await client.get("/dashboard/group/TDP01")).text()
    assert "TDP01-001" in everything and "Anh Tư" in everything  # who logged it
    assert "Đèn đường trước nhà số 5" in everything and "Nhóm TDP01" in everything
    assert "Rác chưa được thu" not in everything


async def test_leader_is_kept_to_his_group_everywhere(
    harness: Harness, client: Client
) -> None:
    seeded = await seed_ward(harness)
    csrf = await signed_in(harness, client, LEADER)
    overview = await (await client.get("/dashboard")).text()
    assert "TDP02" not in overview
    assert "/dashboard/explanations" not in overview
    assert (await client.get("/dashboard/group/TDP02")).status == 403
    assert (await client.get("/dashboard/group/TDP02/poster")).status == 403
    assert (await client.get("/dashboard/explanations")).status == 403
    assert (await client.get("/dashboard/feedback?nhom=TDP02")).status == 403
    queue = await (await client.get("/dashboard/feedback")).text()
    assert f"PA-{seeded.ticket_a}" in queue and f"PA-{seeded.ticket_b}" not in queue
    assert (await client.get(f"/dashboard/feedback/{seeded.ticket_b}")).status == 403
    by_form = await client.post(
        f"/dashboard/feedback/{seeded.ticket_b}",
        data={"csrf": csrf, "action": "resolve", "message": "xong"}, allow_redirects=False,
    )
    assert by_form.status == 403
    poster = await client.post("/dashboard/group/TDP02/poster", data={"csrf": csrf},
                               allow_redirects=False)
    assert poster.status == 403
    assert (await client.get("/dashboard/feedback/99999")).status == 404
    ticket = await harness.ctx.services.feedback.for_staff(
        await harness.ctx.services.access.identify("telegram", Sender(BOSS)), seeded.ticket_b
    )
    assert ticket.state == "new"  # the refused form changed nothing
    notices = await (await client.get("/dashboard/notices")).text()
    assert "Họp tổ tối thứ Bảy" in notices  # it reached his group too


async def test_leader_workbook_holds_only_his_groups(harness: Harness, client: Client) -> None:
    from openpyxl import load_workbook

    await seed_ward(harness)
    await signed_in(harness, client, LEADER)
    response = await client.get("/dashboard/export.xlsx")
    assert response.status == 200
    assert response.headers["Content-Disposition"].endswith('.xlsx"')
    book = load_workbook(io.BytesIO(await response.read()))
    cells = {str(c.value) for sheet in book.worksheets for row in sheet.iter_rows()
             for c in row}
    assert "TDP01-001" in cells and "TDP02-001" not in cells and "Phạm Thị Dung" not in cells


async def test_coordinator_resolves_a_ticket_and_the_reporter_is_told(
    harness: Harness, client: Client
) -> None:
    seeded = await seed_ward(harness)
    csrf = await signed_in(harness, client, BOSS)
    queue = await (await client.get("/dashboard/feedback?loai=environment")).text()
    assert f"PA-{seeded.ticket_b}" in queue and f"PA-{seeded.ticket_a}" not in queue
    assert "&lt;b&gt;3 ngày&lt;/b&gt;" in queue  # what residents type is escaped
    page = await (await client.get(f"/dashboard/feedback/{seeded.ticket_b}")).text()
    assert 'value="acknowledge"' in page and 'value="resolve"' in page
    path = f"/dashboard/feedback/{seeded.ticket_b}"
    no_token = await client.post(path, data={"action": "acknowledge"}, allow_redirects=False)
    assert no_token.status == 403
    empty = await client.post(path, data={"csrf": csrf, "action": "resolve", "message": " "})
    assert empty.status == 400 and "Cần viết vài lời" in await empty.text()
    before = len(harness.platform.said)
    done = await client.post(
        path, data={"csrf": csrf, "action": "resolve", "message": "Đã thu gom sáng nay"},
        allow_redirects=False,
    )
    assert done.status == 303 and done.headers["Location"].endswith("xong=resolve&bao=1")
    told = harness.platform.said[before:]
    assert [s.chat_id for s in told] == [RESIDENT_B]
    assert "Đã giải quyết xong" in told[0].text and "Đã thu gom sáng nay" in told[0].text
    after = await (await client.get(done.headers["Location"])).text()
    assert "Đã đánh dấu giải quyết xong" in after and 'data-state="resolved"' in after
    assert "Giải quyết xong" in after and 'value="resolve"' not in after
    again = await client.post(path, data={"csrf": csrf, "action": "reject", "message": "x"})
    assert again.status == 400
    closed = await (await client.get("/dashboard/feedback?trangthai=resolved")).text()
    assert f"PA-{seeded.ticket_b}" in closed


async def test_notices_campaigns_and_explanations_pages(
    harness: Harness, client: Client
) -> None:
    seeded = await seed_ward(harness)
    await signed_in(harness, client, BOSS)
    html = await (await client.get("/dashboard/notices")).text()
    assert "Họp tổ tối thứ Bảy" in html and "0/2 nhóm" in html and "2 đang chờ" in html
    assert "Tháng VNeID" in html and 'data-chart="campaign"' in html
    counts = await harness.ctx.services.outbox.counts("notice", seeded.notice)
    assert counts == {"pending": 2}
    faq = await (await client.get("/dashboard/explanations")).text()
    assert "Mục khiến bà con còn bối rối" in faq and faq.count("👎") >= 2


async def test_poster_makes_a_resident_invite_once_and_shows_its_qr(
    harness: Harness, client: Client
) -> None:
    await seed_ward(harness)
    harness.router.attach(harness.platform)
    csrf = await signed_in(harness, client, LEADER)
    empty = await (await client.get("/dashboard/group/TDP01/poster")).text()
    assert "Chưa có mã mời" in empty and "<svg" not in empty
    made = await client.post("/dashboard/group/TDP01/poster", data={"csrf": csrf},
                             allow_redirects=False)
    assert made.status == 303
    poster = await (await client.get("/dashboard/group/TDP01/poster")).text()
    code = re.search(r'class="code">(\w+)<', poster)
    assert code and 'class="qr"' in poster and "Tham gia nhóm chat của Tổ dân phố 1" in poster
    again = await (await client.get("/dashboard/group/TDP01/poster")).text()
    assert f'class="code">{code.group(1)}<' in again  # viewing makes no new invite
    said = await harness.say(f"/start {code.group(1)}", user="777")
    assert "Tổ dân phố 1" in said
    identity = await harness.ctx.services.access.identify("telegram", Sender("777"))
    assert identity.role == Role.RESIDENT


async def test_every_page_needs_a_session(client: Client) -> None:
    for path in ("/dashboard", "/dashboard/group/TDP01", "/dashboard/notices",
                 "/dashboard/explanations", "/dashboard/feedback", "/dashboard/feedback/1",
                 "/dashboard/export.xlsx", "/dashboard/group/TDP01/poster"):
        assert (await client.get(path)).status == 401, path
    for path in ("/dashboard/feedback/1", "/dashboard/group/TDP01/poster", "/logout"):
        assert (await client.post(path, data={})).status in (401, 403), path


@pytest.fixture
async def server(harness: Harness) -> AsyncIterator[Client]:
    metrics = Metrics(harness.clock)
    ops = WebServer(harness.ctx.db, metrics, [], host="127.0.0.1", port=0,
                    platforms=("telegram",))
    metrics.mark_ok("telegram")
    async with TestClient(TestServer(ops.app)) as test_client:
        yield test_client


async def test_healthz_reports_outbox_and_turns_503_when_stuck(
    harness: Harness, server: Client
) -> None:
    ok = await server.get("/healthz")
    body = await ok.json()
    assert ok.status == 200 and body["ok"] and body["outbox"]["depth"] == 0
    assert body["platforms"]["telegram"]["last_success"].startswith("2026-11-24")
    await seed_ward(harness)  # queues a notice to two chats, due now
    harness.clock.advance(timedelta(minutes=5))
    body = await (await server.get("/healthz")).json()
    assert body["outbox"] == {"depth": 2, "oldest_due_seconds": 300, "ok": True}
    harness.clock.advance(timedelta(minutes=30))
    stuck = await server.get("/healthz")
    assert stuck.status == 503 and not (await stuck.json())["outbox"]["ok"]


async def test_metrics_include_outbox_and_feedback_gauges(
    harness: Harness, server: Client
) -> None:
    await seed_ward(harness)
    harness.clock.advance(timedelta(days=30))
    text = await (await server.get("/metrics")).text()
    assert "cds_outbox_due 2.0" in text
    assert "cds_outbox_oldest_due_seconds 2.592e+06" in text
    assert "cds_feedback_open 2.0" in text and "cds_feedback_overdue 2.0" in text
    assert "# TYPE cds_outbox_deliveries_total counter" in text


async def test_explanations_page_shows_guides_sent_to_groups_and_reads_per_group(
    harness: Harness, client: Client
) -> None:
    import sqlalchemy as sa

    from bot.models import Delivery
    from bot.services.guides import PostTarget
    from bot.services.notices import delivery_key

    await seed_ward(harness)
    services = harness.ctx.services
    ward = await services.places.ward_by_code("P1")
    assert ward is not None
    boss = await services.access.identify("telegram", Sender(BOSS, "Cán bộ Hoa"))
    groups = {g.code: g.id for g in await services.places.groups(ward.id)}
    shared = await services.notices.create(
        boss, ward.id, raw_text="VNeID là gì?", rendered="VNeID là gì?",
        group_ids=list(groups.values()))
    await services.guides.record_posts(
        ward.id, "vneid_what", "share", shared.notice_id,
        [PostTarget(t.group_id, t.platform, t.chat_id,
                    delivery_key(shared.notice_id, t.platform, t.chat_id))
         for t in shared.targets])
    async with harness.ctx.db.session() as session:
        await session.exec(sa.update(Delivery).where(Delivery.ref_id == shared.notice_id)
                           .values(state="sent"))
    reader = await services.access.identify("telegram", Sender(RESIDENT_B, "Ông Sáu"))
    await services.guides.record_read(reader, "vneid_what", groups["TDP02"], "link")
    await services.guides.record_read(reader, "vneid_what", groups["TDP02"], "link")
    await signed_in(harness, client, BOSS)
    faq = await (await client.get("/dashboard/explanations")).text()
    section = faq[faq.index("Hướng dẫn đã gửi vào nhóm"):]
    row = section[section.index("<td>VNeID là gì?"):]
    cells = re.findall(r"<td[^>]*>(.*?)</td>", row[:row.index("</tr>")], re.S)
    assert [re.sub(r"<[^>]+>", "", c).strip() for c in cells] == [
        "VNeID là gì?", "2", "1", "0 / 0", "TDP02 (1)", "TDP01"]
