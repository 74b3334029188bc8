"""Dashboard pages that only read: the ward overview (steps, groups chart, weekly trend,
campaigns), a group (steps, households still missing, chats, feedback), notices and
campaigns, and the explanations' reading figures."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from aiohttp import web

from bot.config import OnboardingStepConfig
from bot.services import dashboard as data
from bot.services.campaigns import CampaignInfo
from bot.services.feedback import Filters
from bot.services.places import GroupInfo
from bot.services.progress import StepCount, WardProgress
from bot.web.dashboard.charts import bar_chart, line_chart
from handlers.explanations import topic_values

if TYPE_CHECKING:
    from bot.web.dashboard.routes import Dashboard, Viewer

TREND_WEEKS = 8
MISSING_LIMIT = 300


@dataclass(frozen=True)
class CampaignLine:
    campaign: CampaignInfo
    step_title: str
    count: StepCount
    groups: list[str]


async def visible_groups(d: Dashboard, viewer: Viewer) -> list[GroupInfo]:
    groups = await d.app.services.places.groups(viewer.ward_id)
    return [g for g in groups if viewer.may_see_group(g.id)]


def chosen_step(d: Dashboard, request: web.Request) -> OnboardingStepConfig:
    steps = d.app.services.progress.steps
    return d.app.services.progress.step(request.query.get("buoc", "")) or steps[0]


async def trend(
    d: Dashboard, group_ids: list[int], step: OnboardingStepConfig, progress: WardProgress
) -> list[tuple[str, int]]:
    """The step's share done at the end of each of the last weeks (today is the last)."""
    tz = d.app.config.bot.tz
    now = d.app.clock.now()
    ends = [now - timedelta(weeks=TREND_WEEKS - 1 - i) for i in range(TREND_WEEKS)]
    units = await data.cumulative_units(d.app.db, group_ids, [step.key], ends)
    total = progress.step_total(step.key).total
    return [
        (end.astimezone(tz).strftime("%d/%m"), round(100 * done / total) if total else 0)
        for end, done in zip(ends, units, strict=True)
    ]


async def campaign_lines(
    d: Dashboard, viewer: Viewer, groups: list[GroupInfo]
) -> list[CampaignLine]:
    """Each campaign over the groups the viewer may see, with its live figure."""
    codes = {g.id: g.code for g in groups}
    lines = []
    for campaign in await d.app.services.campaigns.in_ward(viewer.ward_id):
        covered = [gid for gid in campaign.group_ids if gid in codes] if campaign.group_ids \
            else list(codes)
        if not covered:
            continue
        progress = await d.app.services.progress.ward(viewer.ward_id, covered)
        step = d.app.services.progress.step(campaign.step_key)
        lines.append(CampaignLine(
            campaign, step.title if step else campaign.step_key,
            progress.step_total(campaign.step_key), sorted(codes[g] for g in covered),
        ))
    return lines


async def overview(d: Dashboard, request: web.Request, viewer: Viewer) -> web.StreamResponse:
    services = d.app.services
    ward = await services.places.ward(viewer.ward_id)
    groups = await visible_groups(d, viewer)
    ids = [g.id for g in groups]
    progress = await services.progress.ward(viewer.ward_id, ids)
    step = chosen_step(d, request)
    campaigns = await campaign_lines(d, viewer, groups)
    running = [c for c in campaigns if c.campaign.state == "active"
               and c.campaign.step_key == step.key]
    target = running[0].campaign.target_percent if running else None
    bars = bar_chart(
        [(g.code, c.percent, f"{c.done}/{c.total}") for g, c in progress.ranked(step.key)],
        target=target,
    )
    line = line_chart(await trend(d, ids, step, progress))
    queue = await services.feedback.list_for_staff(viewer.identity, Filters())
    overdue = await services.feedback.list_for_staff(viewer.identity, Filters(overdue=True))
    chats = await services.chats.active_by_group(viewer.ward_id)
    return d.page(
        "overview", viewer, nav="overview", ward=ward, groups=groups, progress=progress,
        totals=[(s, progress.step_total(s.key)) for s in progress.steps], step=step,
        bars=bars, target=target, line=line, campaigns=campaigns, chats=chats,
        open_tickets=queue.total, overdue_tickets=overdue.total,
    )


def _household_log(
    rows: list[dict[str, object]], steps: list[OnboardingStepConfig]
) -> dict[str, list[tuple[str, str, datetime]]]:
    """Per household code: (step title, who, when) of every step someone logged."""
    log: dict[str, list[tuple[str, str, datetime]]] = {}
    for row in rows:
        for s in steps:
            at = row.get(f"{s.key}_at")
            if isinstance(at, datetime):
                log.setdefault(str(row["code"]), []).append((s.title, str(row[f"{s.key}_by"]), at))
    return log


async def group(d: Dashboard, request: web.Request, viewer: Viewer) -> web.StreamResponse:
    services = d.app.services
    found = await services.places.group_by_code(viewer.ward_id, request.match_info["code"])
    if found is None:
        return d.not_found(viewer)
    if not viewer.may_see_group(found.id):
        return d.forbidden(viewer, f"group {found.id}")
    progress = await services.progress.ward(viewer.ward_id, [found.id])
    counts = progress.groups[0] if progress.groups else None
    key = request.query.get("buoc", "")
    step = services.progress.step(key)
    missing, missing_total = await services.households.missing(
        found.id, step.key if step else None, offset=0, limit=MISSING_LIMIT
    )
    rows = [r for r in await services.registry.household_rows(viewer.ward_id)
            if r["group"] == found.code]
    week_ago = d.app.clock.now() - timedelta(days=7)
    tickets = await services.feedback.list_for_staff(viewer.identity, Filters(group=found.code))
    chats = await services.chats.active_by_group(viewer.ward_id)
    titles = {s.key: s.title for s in progress.steps}
    return d.page(
        "group", viewer, nav="overview", group=found, counts=counts, steps=progress.steps,
        titles=titles, step=step, missing=missing, missing_total=missing_total,
        limit=MISSING_LIMIT, log=_household_log(rows, progress.steps),
        week=await services.progress.change_since(found.id, week_ago),
        tickets=tickets, chats=chats.get(found.id, []),
    )


async def notices(d: Dashboard, request: web.Request, viewer: Viewer) -> web.StreamResponse:
    services = d.app.services
    groups = await visible_groups(d, viewer)
    scope = None if viewer.coordinator else {g.id for g in groups}
    past = await data.past_notices(d.app.db, viewer.ward_id, d.app.clock.now(), group_ids=scope)
    reports = [(n, await services.outbox.counts("notice", n.id)) for n in past]
    return d.page(
        "notices", viewer, nav="notices", past=reports,
        scheduled=await services.notices.scheduled(viewer.identity, viewer.ward_id),
        campaigns=await campaign_lines(d, viewer, groups),
    )


async def explanations(
    d: Dashboard, request: web.Request, viewer: Viewer
) -> web.StreamResponse:
    rows = [r for r in await d.app.services.explanations.stats()
            if r.reads or r.helpful or r.unhelpful]
    most = max((r.reads for r in rows), default=0)
    confusing = sorted(
        (r for r in rows if r.unhelpful), key=lambda r: (-r.unhelpful / max(1, r.helpful +
                                                          r.unhelpful), -r.unhelpful, r.key),
    )
    shared = await d.app.services.guides.stats(viewer.ward_id)
    locale = d.app.config.bot.locale
    values = topic_values(d.app, locale)
    titles = {g.key: d.app.texts.plain_string(t.title, locale, **values)
              for g in shared if (t := d.app.services.explanations.topic(g.key))}
    return d.page("explanations", viewer, nav="explanations", rows=rows, most=most,
                  confusing=confusing, shared=shared, titles=titles)
