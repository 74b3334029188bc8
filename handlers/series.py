"""`/chuyende` (`/series`): a series of guides posted one at a time to the group chats.

A coordinator picks guides in order, a rhythm ("thứ Ba và thứ Sáu, 19:00", "mỗi tuần một
bài"), groups and a period — or starts from a campaign, which brings its step's guides, its
groups and its period — and sees the whole plan before creating it. The jobs leader posts the
next guide at each slot (`bot/jobs/series.py`). `/chuyende` lists the series with what was
sent and what comes next, with buttons to pause, resume or end each.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

from bot.core import Button
from bot.keyboards import page_rows
from bot.payloads import Payload
from bot.roles import Role
from bot.router import OWN_WARD, Ctx, Router
from bot.services.errors import ServiceError
from bot.services.series import MAX_GUIDES, SeriesInfo, parse_rhythm
from bot.when import parse_date
from handlers.explanations import title
from handlers.targets import group_picker, picker_context, toggle, typed_groups

FLOW = "series"
RHYTHMS = ((("tue", "fri"), "19:00"), (("mon",), "19:00"), (("sat",), "08:00"))
COMING_SHOWN = 3
ENDED_SHOWN = 5  # the list keeps only the latest finished series


@dataclass(frozen=True)
class SeriesPress(Payload, prefix="cd"):
    """The form: `t` guide `key` (page `value` of the guides: `tp`), `done`, `r` rhythm
    `value`, `g` group `value`, `all`, `pg` picker page, `next`, `p` until done, `go`;
    the list: `new`, `c` from campaign `value`, `pause|resume|end` series `value`, `lp` its
    page `value`."""

    action: Literal["t", "tp", "done", "r", "g", "all", "pg", "next", "p", "go", "new", "c",
                    "pause", "resume", "end", "lp"]
    value: int = 0
    key: str = ""


# --- the list --------------------------------------------------------------------
async def series(ctx: Ctx) -> None:
    ward_id = await _ward(ctx)
    if ward_id is None:
        return
    if ctx.args and ctx.args[0].lower() in ("tao", "moi", "new"):
        await _start(ctx, {"ward_id": ward_id})
        return
    await _list(ctx, ward_id)


async def _ward(ctx: Ctx) -> int | None:
    ward_id = ctx.identity.ward_id
    if ward_id is None:
        await ctx.say("households/no_ward")
        return None
    if ctx.identity.role_in_ward(ward_id) < Role.COORDINATOR:
        await ctx.say("core/denied", needed=Role.COORDINATOR.value, role=ctx.identity.role.value)
        return None
    return ward_id


async def _list(ctx: Ctx, ward_id: int, page: int = 1) -> None:
    services = ctx.app.services
    found = await services.series.in_ward(ward_id)
    running = [s for s in found if s.state != "ended"]
    items = running + [s for s in found if s.state == "ended"][:ENDED_SHOWN]
    lines = [await _describe(ctx, s) for s in items]
    rows: list[list[Button]] = []
    for s in items:
        if s.state == "ended":
            continue
        pause: tuple[Literal["resume", "pause"], str] = (
            ("resume", "series.resume") if s.state == "paused" else ("pause", "series.pause"))
        rows.append([ctx.button(pause[1], SeriesPress(pause[0], s.id), id=s.id),
                     ctx.button("series.end", SeriesPress("end", s.id), id=s.id)])
    for c in await services.campaigns.in_ward(ward_id):
        if c.state != "ended":
            rows.append([ctx.button("series.from_campaign", SeriesPress("c", c.id),
                                    title=c.title[:40])])
    paged = page_rows(rows, page, nav=lambda n: SeriesPress("lp", n), label=ctx.label,
                      buttons=ctx.platform.capabilities.buttons, per_page=30,
                      tail=[[ctx.button("series.new", SeriesPress("new"))]])
    await ctx.update("series/list", items=lines, buttons=paged.rows)


async def _describe(ctx: Ctx, s: SeriesInfo) -> dict[str, Any]:
    codes = await _codes(ctx, s.ward_id, s.group_ids)
    coming = s.coming if s.state != "ended" else []
    active = s.state == "active"
    slots = ctx.app.services.series.next_slots(s, min(len(coming), COMING_SHOWN)) if active \
        else []
    return {
        "s": s, "codes": codes,
        "sent": [(_title(ctx, k), at) for k, at in zip(s.sent, s.sent_at, strict=False)],
        "coming": [(_title(ctx, k), slots[i] if i < len(slots) else None)
                   for i, k in enumerate(coming[:COMING_SHOWN])],
        "more": max(len(coming) - COMING_SHOWN, 0),
    }


def _title(ctx: Ctx, key: str) -> str:
    topic = ctx.app.services.explanations.topic(key)
    return title(ctx, topic) if topic else key


async def _codes(ctx: Ctx, ward_id: int, group_ids: list[int]) -> list[str]:
    groups = await ctx.app.services.places.groups(ward_id)
    chosen = set(group_ids)
    return [g.code for g in groups if g.id in chosen]


# --- the form ----------------------------------------------------------------
async def _start(ctx: Ctx, data: dict[str, Any]) -> None:
    await ctx.start_form(FLOW, "title", data)
    await ctx.say("series/ask_title")


async def typed(ctx: Ctx) -> None:
    form = ctx.form
    assert form is not None
    data = dict(form.data)
    text = " ".join(ctx.incoming.text.split())
    if form.step == "title":
        if not text or len(text) > 200:
            await ctx.say("series/ask_title")
            return
        data["title"] = text
        await _ask_guides(ctx, data)
    elif form.step == "rhythm":
        try:
            days, at = parse_rhythm(text)
        except ServiceError:
            await ctx.say("series/error_bad_rhythm")
            return
        await _rhythm_chosen(ctx, data, list(days), at)
    elif form.step == "period":
        period = _parse_period(text, ctx.app.services.series.today())
        if period is None:
            await ctx.say("series/error_bad_period")
            return
        data["starts_on"] = period[0].isoformat()
        data["ends_on"] = period[1].isoformat() if period[1] else None
        await _confirm(ctx, data)
    elif form.step == "groups":
        groups = await ctx.app.services.places.groups(int(data["ward_id"]))
        chosen = await typed_groups(ctx, groups)
        if chosen is None:
            await ctx.say("series/press_a_button")
        elif chosen:
            data["groups"], data["page"] = chosen, 1
            await _ask_groups(ctx, data)
    else:
        await ctx.say("series/press_a_button")


def _parse_period(text: str, today: date) -> tuple[date, date | None] | None:
    """"1/12 - 31/12" (start and last day) or "1/12" (from that day until all are sent)."""
    parts = [p.strip() for p in text.replace("đến", "-").replace("den", "-").split("-")
             if p.strip()]
    if not 1 <= len(parts) <= 2:
        return None
    start = parse_date(parts[0], today)
    end = parse_date(parts[1], start or today) if len(parts) == 2 else None
    if start is None or start < today or (len(parts) == 2 and (end is None or end < start)):
        return None
    return start, end


async def _ask_guides(ctx: Ctx, data: dict[str, Any], *, edit: bool = False) -> None:
    await ctx.start_form(FLOW, "guides", data)
    chosen = [str(k) for k in data.get("guides", [])]
    library = ctx.app.services.explanations.library
    guides = [ctx.button("series.pick", SeriesPress("t", key=t.key), title=title(ctx, t),
                         n=chosen.index(t.key) + 1 if t.key in chosen else 0)
              for t in library.topics.values()]
    rows = page_rows(guides, int(data.get("guide_page", 1)),
                     nav=lambda n: SeriesPress("tp", n), label=ctx.label,
                     buttons=ctx.platform.capabilities.buttons,
                     tail=[[ctx.button("series.done", SeriesPress("done"))]]).rows
    titles = [_title(ctx, k) for k in chosen]
    if edit:
        await ctx.update("series/ask_guides", titles=titles, limit=MAX_GUIDES, buttons=rows)
    else:
        await ctx.say("series/ask_guides", titles=titles, limit=MAX_GUIDES, buttons=rows)


async def _ask_rhythm(ctx: Ctx, data: dict[str, Any]) -> None:
    await ctx.start_form(FLOW, "rhythm", data)
    buttons = [[ctx.button("series.rhythm", SeriesPress("r", i), days=list(days), at=at)]
               for i, (days, at) in enumerate(RHYTHMS)]
    await ctx.say("series/ask_rhythm", buttons=buttons)


async def _rhythm_chosen(ctx: Ctx, data: dict[str, Any], days: list[str], at: str) -> None:
    if ctx.app.services.series.in_quiet_hours(at):
        await ctx.say("series/error_quiet_time", at=at)
        return
    data["days"], data["at"] = days, at
    await _ask_groups(ctx, data)


async def _ask_groups(ctx: Ctx, data: dict[str, Any], *, edit: bool = False) -> None:
    await ctx.start_form(FLOW, "groups", data)
    groups = await ctx.app.services.places.groups(int(data["ward_id"]))
    chosen = [int(g) for g in data.get("groups", [])]
    paged = group_picker(ctx, lambda action, value: SeriesPress(action, value), groups, chosen,
                         whole_ward=True, page=int(data.get("page", 1)),
                         tail=[[ctx.button("series.next", SeriesPress("next"))]])
    render = ctx.update if edit else ctx.say
    await render("series/ask_groups", buttons=paged.rows,
                 **picker_context(groups, chosen, paged))


async def _ask_period(ctx: Ctx, data: dict[str, Any]) -> None:
    await ctx.start_form(FLOW, "period", data)
    await ctx.say("series/ask_period", today=ctx.app.services.series.today(),
                  buttons=[[ctx.button("series.until_done", SeriesPress("p"))]])


async def _confirm(ctx: Ctx, data: dict[str, Any]) -> None:
    await ctx.start_form(FLOW, "confirm", data)
    preview = _preview_info(data)
    slots = ctx.app.services.series.next_slots(preview, len(preview.topic_keys))
    plan = [(_title(ctx, k), slots[i] if i < len(slots) else None)
            for i, k in enumerate(preview.topic_keys)]
    codes = await _codes(ctx, preview.ward_id, preview.group_ids)
    await ctx.say("series/confirm", s=preview, plan=plan, codes=codes,
                  buttons=[[ctx.button("series.create", SeriesPress("go"))]])


def _preview_info(data: dict[str, Any]) -> SeriesInfo:
    ends = data.get("ends_on")
    return SeriesInfo(
        id=0, ward_id=int(data["ward_id"]), title=str(data["title"]),
        topic_keys=[str(k) for k in data["guides"]], group_ids=[int(g) for g in data["groups"]],
        days=list(data["days"]), at_time=str(data["at"]),
        starts_on=date.fromisoformat(data["starts_on"]),
        ends_on=date.fromisoformat(ends) if ends else None,
        campaign_id=data.get("campaign_id"), state="active", next_index=0, sent_at=[],
    )


async def pressed(ctx: Ctx) -> None:
    """Form `cd:t:<key>|done|r:<i>|g:<id|all>|next|p|go`, list `cd:new|c:<campaign>`,
    `cd:pause|resume|end:<id>`."""
    await ctx.answer_button()
    ward_id = await _ward(ctx)
    if ward_id is None:
        return
    press = ctx.press(SeriesPress)
    action = press.action
    if action == "new":
        await _start(ctx, {"ward_id": ward_id})
        return
    if action == "c":
        await _from_campaign(ctx, ward_id, press.value)
        return
    if action == "lp":
        await _list(ctx, ward_id, press.value)
        return
    if action in ("pause", "resume", "end"):
        await _manage(ctx, ward_id, action, press.value)
        return
    form = ctx.form
    if form is None or form.flow != FLOW:
        await ctx.say("core/form_expired")
        return
    await _form_button(ctx, form.step, dict(form.data), press)


async def _form_button(ctx: Ctx, step: str, data: dict[str, Any], press: SeriesPress) -> None:
    library = ctx.app.services.explanations.library
    action, value = press.action, press.key
    if action == "tp" and step == "guides":
        data["guide_page"] = press.value
        await _ask_guides(ctx, data, edit=True)
    elif action == "t" and step == "guides" and value in library.topics:
        chosen = [str(k) for k in data.get("guides", [])]
        if value in chosen:
            chosen.remove(value)
        elif len(chosen) < MAX_GUIDES:
            chosen.append(value)
        data["guides"] = chosen
        await _ask_guides(ctx, data, edit=True)
    elif action == "done" and step == "guides":
        if not data.get("guides"):
            await ctx.say("series/error_no_guides", limit=MAX_GUIDES)
            return
        await _ask_rhythm(ctx, data)
    elif action == "r" and step == "rhythm" and 0 <= press.value < len(RHYTHMS):
        days, at = RHYTHMS[press.value]
        await _rhythm_chosen(ctx, data, list(days), at)
    elif action in ("g", "all", "pg") and step == "groups":
        if action == "pg":
            data["page"] = press.value
        else:
            allowed = [g.id for g in await ctx.app.services.places.groups(int(data["ward_id"]))]
            data["groups"] = toggle(data.get("groups", []), action, press.value, allowed)
        await _ask_groups(ctx, data, edit=True)
    elif action == "next" and step == "groups":
        if not data.get("groups"):
            await ctx.say("series/error_no_targets")
            return
        if data.get("starts_on"):  # from a campaign: its period is known
            await _confirm(ctx, data)
        else:
            await _ask_period(ctx, data)
    elif action == "p" and step == "period":
        data["starts_on"], data["ends_on"] = ctx.app.services.series.today().isoformat(), None
        await _confirm(ctx, data)
    elif action == "go" and step == "confirm":
        await _create(ctx, data)
    else:
        await ctx.say("series/press_a_button")


async def _from_campaign(ctx: Ctx, ward_id: int, campaign_id: int) -> None:
    """A campaign carries a series: its step's guide and the ones next to it, its groups,
    its period (from today if it has begun)."""
    services = ctx.app.services
    c = await services.campaigns.get(campaign_id)
    if c is None or c.ward_id != ward_id or c.state == "ended":
        await ctx.say("series/error_unknown")
        return
    step = services.progress.step(c.step_key)
    first = services.explanations.topic(step.guide) if step and step.guide else None
    keys = [first.key, *first.related] if first else []
    groups = c.group_ids or [g.id for g in await services.places.groups(ward_id)]
    today = services.series.today()
    data = {"ward_id": ward_id, "title": c.title, "campaign_id": c.id,
            "guides": [k for k in keys if services.explanations.topic(k)][:MAX_GUIDES],
            "groups": groups, "starts_on": max(c.starts_on, today).isoformat(),
            "ends_on": c.ends_on.isoformat()}
    await _ask_guides(ctx, data)


async def _create(ctx: Ctx, data: dict[str, Any]) -> None:
    info = _preview_info(data)
    try:
        created = await ctx.app.services.series.create(
            ctx.identity, info.ward_id, title=info.title, topic_keys=info.topic_keys,
            group_ids=info.group_ids, days=info.days, at_time=info.at_time,
            starts_on=info.starts_on, ends_on=info.ends_on, campaign_id=info.campaign_id,
        )
    except ServiceError as exc:
        await ctx.say(f"series/error_{exc.reason}", **exc.details)
        return
    await ctx.end_form()
    await ctx.say("series/created", s=await _describe(ctx, created))


async def _manage(ctx: Ctx, ward_id: int, action: str, series_id: int) -> None:
    state = {"pause": "paused", "resume": "active", "end": "ended"}[action]
    try:
        found = [s for s in await ctx.app.services.series.in_ward(ward_id)
                 if s.id == series_id]
        if not found:
            raise ServiceError("unknown")
        await ctx.app.services.series.set_state(ctx.identity, series_id, state)
    except ServiceError as exc:
        await ctx.say(f"series/error_{exc.reason}", **exc.details)
        return
    await _list(ctx, ward_id)


def register(router: Router) -> None:
    router.command("chuyende", series, aliases=("series",), role=Role.COORDINATOR,
                   where="private")
    router.button(SeriesPress, pressed, role=Role.COORDINATOR, scope=OWN_WARD)
    router.form(FLOW, typed)
