"""The dashboard at ward scale: with 60 (or 300) groups the chart shows the highest and the
lowest groups, and the groups table is sorted (lowest share first), searchable with or
without diacritics, and paged, keeping the search and the order from page to page."""

from __future__ import annotations

import re

from bot.roles import Role
from bot.services.dashboard import chart_ends, group_table
from bot.services.progress import GroupProgress, StepCount
from bot.services.tables import read_table
from tests.conftest import Harness
from tests.test_dashboard import BOSS, LEADER, Client, signed_in
from tests.test_dashboard import client as client  # noqa: F401 - the signed-in web client

GROUPS = 60  # TDP01…TDP60; in group k, k % 5 of its 4 households have a smartphone


async def big_ward(harness: Harness) -> None:
    services = harness.ctx.services
    for k in range(3, GROUPS + 1):
        name = "Khu phố Đồng Xoài" if k == 37 else f"Tổ dân phố {k}"
        await services.places.add_group("P1", f"TDP{k:02d}", name)
    ward = await services.places.ward_by_code("P1")
    assert ward is not None
    lines = ["code,group,head_name,smartphone"]
    for k in range(1, GROUPS + 1):
        lines += [f"TDP{k:02d}-{h:03d},TDP{k:02d},Hộ số {h},{'x' if h <= k % 5 else ''}"
                  for h in range(1, 5)]
    report = await services.registry.import_table(ward.id, read_table("\n".join(lines).encode()))
    assert report.added == 4 * GROUPS and not report.rejected
    await harness.grant(BOSS, Role.COORDINATOR)


def table_codes(html: str) -> list[str]:
    if 'data-table="groups"' not in html:
        return []
    table = html.split('data-table="groups"', 1)[1].split("</table>", 1)[0]
    return re.findall(r'<td><a href="/dashboard/group/(TDP\d+)">', table)


async def test_the_table_starts_with_the_lowest_groups_and_pages_through_all(
    harness: Harness, client: Client
) -> None:
    await big_ward(harness)
    await signed_in(harness, client, BOSS)
    html = await (await client.get("/dashboard?buoc=smartphone")).text()
    assert "Các tổ dân phố (60)" in html and "Trang 1/3" in html
    first = table_codes(html)
    assert len(first) == 25
    assert first[:12] == ["TDP05", "TDP10", "TDP15", "TDP20", "TDP25", "TDP30", "TDP35",
                          "TDP40", "TDP45", "TDP50", "TDP55", "TDP60"]  # 0 %, then 25 %…
    assert "Trang sau" in html and "Trang trước" not in html
    seen = list(first)
    for page in (2, 3):
        html = await (await client.get(f"/dashboard?buoc=smartphone&trang={page}")).text()
        seen += table_codes(html)
    assert sorted(seen) == [f"TDP{k:02d}" for k in range(1, GROUPS + 1)]  # each group once
    assert "Trang 3/3" in html and "Trang sau" not in html
    assert seen[-12:] == ["TDP04", "TDP09", "TDP14", "TDP19", "TDP24", "TDP29", "TDP34",
                          "TDP39", "TDP44", "TDP49", "TDP54", "TDP59"]  # 100 % last
    past_the_end = await (await client.get("/dashboard?buoc=smartphone&trang=99")).text()
    assert "Trang 3/3" in past_the_end


async def test_highest_first_by_code_and_the_links_keep_search_and_order(
    harness: Harness, client: Client
) -> None:
    await big_ward(harness)
    await signed_in(harness, client, BOSS)
    highest = await (await client.get("/dashboard?buoc=smartphone&xep=cao")).text()
    assert table_codes(highest)[:3] == ["TDP04", "TDP09", "TDP14"]
    assert 'href="/dashboard?buoc=smartphone&amp;tim=&amp;xep=cao&amp;trang=2#cac-to"' in highest
    by_code = await (await client.get("/dashboard?buoc=smartphone&xep=ma&trang=2")).text()
    assert table_codes(by_code)[0] == "TDP26"
    odd = await (await client.get("/dashboard?buoc=smartphone&xep=<b>&trang=abc")).text()
    assert table_codes(odd)[0] == "TDP05" and "&lt;b&gt;" not in odd  # unknown: the default


async def test_search_by_code_or_by_name_without_diacritics(
    harness: Harness, client: Client
) -> None:
    await big_ward(harness)
    await signed_in(harness, client, BOSS)
    by_code = await (await client.get("/dashboard?buoc=smartphone&tim=tdp5")).text()
    assert sorted(table_codes(by_code)) == [f"TDP{k}" for k in range(50, 60)]
    assert "Tìm «tdp5»: 10 tổ" in by_code and "Trang 1/" not in by_code
    by_name = await (await client.get("/dashboard?buoc=smartphone&tim=dong xoai")).text()
    assert table_codes(by_name) == ["TDP37"] and "Khu phố Đồng Xoài" in by_name
    nothing = await (await client.get("/dashboard?buoc=smartphone&tim=<script>")).text()
    assert table_codes(nothing) == [] and "Không có tổ nào khớp «&lt;script&gt;»" in nothing


async def test_the_chart_shows_the_ten_highest_and_the_ten_lowest(
    harness: Harness, client: Client
) -> None:
    await big_ward(harness)
    await signed_in(harness, client, BOSS)
    html = await (await client.get("/dashboard?buoc=smartphone")).text()
    assert "Phường có 60 tổ: biểu đồ cho xem 10 tổ cao nhất và 10 tổ thấp nhất" in html
    charts = html.split('data-chart="bars"')[1:]
    assert len(charts) == 2
    highest = re.findall(r'text-anchor="end">(TDP\d+)</text>', charts[0])
    lowest = re.findall(r'text-anchor="end">(TDP\d+)</text>', charts[1])
    assert highest == ["TDP04", "TDP09", "TDP14", "TDP19", "TDP24", "TDP29", "TDP34",
                       "TDP39", "TDP44", "TDP49"]
    assert lowest == ["TDP05", "TDP10", "TDP15", "TDP20", "TDP25", "TDP30", "TDP35",
                      "TDP40", "TDP45", "TDP50"]


async def test_a_leader_pages_only_through_his_groups(harness: Harness, client: Client) -> None:
    await big_ward(harness)
    await harness.grant(LEADER, Role.LEADER, "TDP07")
    await signed_in(harness, client, LEADER)
    html = await (await client.get("/dashboard?tim=tdp")).text()
    assert table_codes(html) == ["TDP07"] and "Các tổ dân phố (1)" in html


def test_three_hundred_groups_page_by_page() -> None:
    groups = [GroupProgress(k, f"TDP{k:03d}", f"Tổ {k}", 10, 20,
                            {"vneid": StepCount("vneid", k % 11, 10, k % 11)})
              for k in range(1, 301)]
    first = group_table(groups, "vneid", {})
    assert (first.pages, first.matched, len(first.rows)) == (12, 300, 25)
    assert [r.count.done for r in first.rows][:3] == [0, 0, 0]
    last = group_table(groups, "vneid", {}, page=12)
    assert all(r.count.done == 10 for r in last.rows)
    ends = chart_ends(sorted([(g, g.steps["vneid"]) for g in groups],
                             key=lambda p: (-p[1].ratio, p[0].code)))
    assert len(ends.highest) == len(ends.lowest) == 10 and ends.total == 300
    assert ends.highest[0][1].done == 10 and ends.lowest[0][1].done == 0
    few = chart_ends([(g, g.steps["vneid"]) for g in groups[:20]])
    assert few.all_shown and len(few.highest) == 20
