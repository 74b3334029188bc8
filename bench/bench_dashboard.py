"""The web dashboard at ward scale: every page's answer time over real HTTP.

One ward with 300 residential groups and 12,000 households (generated as in
`bench_households.py`, 30-70% of the steps done, varying by group and step), 300 group
chats, an active campaign, 20 past notices to every group (6,000 delivery rows), 300 open
tickets, a few explanation reads. A coordinator signs in through a one-time link (as from
`/dashboard`), and each page is fetched `--runs` times through aiohttp's client against the
aiohttp server on 127.0.0.1: the time is from the request to the last byte of the answer.
Then the same for a leader of one group.

Run from the project root: `.venv/bin/python bench/bench_dashboard.py [--groups 300
--households 12000 --runs 20]`. Everything lives in a temporary directory.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_households import (  # noqa: E402
    Figures,
    households,
    progress_columns,
    quantiles,
    read,
    seed_directly,
    to_csv,
)

from bot.app import BotApp  # noqa: E402
from bot.clock import FrozenClock  # noqa: E402
from bot.config import Config  # noqa: E402
from bot.core import Chat, Sender  # noqa: E402
from bot.roles import Role  # noqa: E402
from bot.web.dashboard.routes import Dashboard  # noqa: E402

START = datetime(2026, 11, 24, 3, 0, tzinfo=UTC)
BOSS, LEADER = "9000001", "9000002"
TARGET = "< 300 ms"

Client = TestClient[web.Request, web.Application]


async def seed(app: BotApp, args: argparse.Namespace) -> tuple[int, int]:
    """The ward; returns (ward id, a ticket number)."""
    services = app.context.services
    await services.places.add_ward("HB", "Phường Hòa Bình")
    ward = await services.places.ward_by_code("HB")
    assert ward is not None
    rows = households(args.households, args.groups)
    _, table = read(to_csv(rows))
    await services.registry.import_table(ward.id, table)
    states = await seed_directly(app, ward.id, rows, progress_columns(rows))
    print(f"  {args.households:,} households in {args.groups} groups, {states:,} step states")
    await services.access.grant(platform="telegram", user_id=BOSS, role=Role.COORDINATOR,
                                ward_code="HB")
    await services.access.grant(platform="telegram", user_id=LEADER, role=Role.LEADER,
                                ward_code="HB", group_code="TDP150")
    boss = await services.access.identify("telegram", Sender(BOSS, "Cán bộ Hoa"))
    groups = await services.places.groups(ward.id)
    for g in groups:
        await services.chats.bind(boss, "telegram", Chat(f"-100{g.id}", "group",
                                                         f"Nhóm {g.code}"), g.code)
    await services.campaigns.create(
        boss, ward.id, title="Tháng VNeID", step_key="vneid", target=80,
        starts_on=date(2026, 11, 1), ends_on=date(2026, 12, 31), group_ids=[], days=["mon"],
        at_time="08:00",
    )
    for n in range(20):
        await services.notices.create(boss, ward.id, raw_text=f"Thông báo số {n + 1}",
                                      rendered=f"Thông báo số {n + 1}",
                                      group_ids=[g.id for g in groups])
    ticket = 0
    for g in groups:
        await services.access.grant(platform="telegram", user_id=f"7{g.id:06d}",
                                    role=Role.RESIDENT, ward_code="HB", group_code=g.code)
        person = await services.access.identify("telegram", Sender(f"7{g.id:06d}", "Bà Năm"))
        filed = await services.feedback.submit(person, text=f"Đèn đường tổ {g.code} tắt",
                                               category="infrastructure")
        ticket = filed.ticket.number
    for topic in ("bot_howto", "vneid_what"):
        await services.explanations.record_read(topic)
    app.context.clock.set(START + timedelta(days=1))  # type: ignore[attr-defined]
    return ward.id, ticket


async def sign_in(app: BotApp, client: Client, user: str) -> None:
    identity = await app.context.services.access.identify("telegram", Sender(user, ""))
    token = await app.context.services.dashboard_logins.create(identity)
    answer = await client.post(f"/login/{token}", allow_redirects=False)
    assert answer.status == 303, answer.status


async def time_pages(
    client: Client, pages: list[tuple[str, str]], runs: int, figures: Figures, who: str
) -> None:
    for label, path in pages:
        samples = []
        size = 0
        cpu = 0.0
        for n in range(runs + 1):
            started, cpu_started = time.perf_counter(), time.process_time()
            answer = await client.get(path)
            body = await answer.read()
            took = time.perf_counter() - started
            if n:  # the first fetch warms the templates
                cpu += time.process_time() - cpu_started
            assert answer.status == 200, (path, answer.status)
            samples.append(took)
            size = len(body)
        median, p95 = quantiles(samples[1:])
        target = "" if path.endswith(".xlsx") else TARGET
        # CPU: what the process (server, client and SQLite threads) spent per request; on
        # a shared machine the wall-clock figures also hold the time spent waiting for a core.
        figures.add(f"{who}: {label} ({size / 1024:.0f} KB)",
                    f"median {median * 1e3:.0f} ms, p95 {p95 * 1e3:.0f} ms, "
                    f"CPU {cpu / runs * 1e3:.0f} ms", target)


async def run(args: argparse.Namespace) -> None:
    figures = Figures()
    with tempfile.TemporaryDirectory() as tmp:
        config = Config.model_validate({
            "database": {"url": f"sqlite+aiosqlite:///{tmp}/bench.db"},
            "telegram": {"enabled": False},
        })
        app = BotApp(config, clock=FrozenClock(START))
        await app.db.upgrade()
        print("seeding")
        _, ticket = await seed(app, args)
        web_app = web.Application()
        Dashboard(app.context, secret="bench", secure_cookie=False).install(web_app)
        coordinator_pages = [
            ("overview", "/dashboard"),
            ("overview, another step", "/dashboard?buoc=vneid"),
            ("overview, search «tdp1», highest first", "/dashboard?tim=tdp1&xep=cao"),
            ("overview, last page of the groups", "/dashboard?trang=12"),
            ("a group", "/dashboard/group/TDP150"),
            ("notices and campaigns", "/dashboard/notices"),
            ("feedback queue", "/dashboard/feedback"),
            ("one ticket", f"/dashboard/feedback/{ticket}"),
            ("explanations", "/dashboard/explanations"),
            ("poster", "/dashboard/group/TDP150/poster"),
            ("workbook download (12,000 households)", "/dashboard/export.xlsx"),
        ]
        leader_pages = [
            ("overview", "/dashboard"), ("his group", "/dashboard/group/TDP150"),
            ("feedback queue", "/dashboard/feedback"),
        ]
        for who, user, pages in (("coordinator", BOSS, coordinator_pages),
                                 ("leader", LEADER, leader_pages)):
            async with TestClient(TestServer(web_app)) as client:
                await sign_in(app, client, user)
                runs = args.runs if who == "coordinator" else max(5, args.runs // 2)
                print(f"{who}: {len(pages)} pages × {runs}")
                await time_pages(client, pages if who == "leader" else pages[:-1], runs,
                                 figures, who)
                if who == "coordinator":
                    await time_pages(client, pages[-1:], 3, figures, who)
        await app.db.dispose()
    print()
    print(figures.table())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--groups", type=int, default=300)
    parser.add_argument("--households", type=int, default=12_000)
    parser.add_argument("--runs", type=int, default=20)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
