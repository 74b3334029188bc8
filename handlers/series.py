"""`/chuyende` (`/series`): a series of guides posted one at a time to the group chats.

A coordinator picks guides in order, a rhythm ("thứ Ba và thứ Sáu, 19:00", "mỗi tuần một
bài"), groups and a period — or starts from a campaign, which brings its step's guides, its
groups and its period — and sees the whole plan before creating it. The jobs leader posts the
next guide at each slot (`bot/jobs/series.py`). `/chuyende` lists the series with what was
sent and what comes next, with buttons to pause, resume or end each.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from bot.core import Button, Role, is_number
from bot.router import Ctx, Router
from bot.services.series import MAX_GUIDES, SeriesError, SeriesInfo, parse_rhythm
from bot.when import parse_date
from handlers.explanations import title
from handlers.targets import group_buttons, toggle

FLOW = "series"
RHYTHMS = ((("tue", "fri"), "19:00"), (("mon",), "19:00"), (("sat",), "08:00"))
COMING_SHOWN = 3
ENDED_SHOWN = 5  # the list keeps only the latest finished series
MAX_TOPICS_SHOWN = 90  # Telegram takes at most 100 buttons a message (until the shared pager)


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


async def _list(ctx: Ctx, ward_id: int) -> None:
    services = ctx.app.services
    found = await services.series.in_ward(ward_id)
    running = [s for s in found if s.state != "ended"]
    items = running + [s for s in found if s.state == "ended"][:ENDED_SHOWN]
    lines = [await _describe(ctx, s) for s in items]
    rows: list[list[Button]] = []
    for s in items:
        if s.state == "ended":
            continue
        pause = ("resume", "series.resume") if s.state == "paused" else ("pause", "series.pause")
        rows.append([ctx.button(pause[1], f"cd:{pause[0]}:{s.id}", id=s.id),
                     ctx.button("series.end", f"cd:end:{s.id}", id=s.id)])
    rows.append([ctx.button("series.new", "cd:new")])
    for c in await services.campaigns.in_ward(ward_id):
        if c.state != "ended":
            rows.append([ctx.button("series.from_campaign", f"cd:c:{c.id}", title=c.title)])
    await ctx.update("series/list", items=lines, buttons=rows)


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
        except SeriesError:
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
    rows = [[ctx.button("series.pick", f"cd:t:{t.key}", title=title(ctx, t),
                        n=chosen.index(t.key) + 1 if t.key in chosen else 0)]
            for t in list(library.topics.values())[:MAX_TOPICS_SHOWN]]
    rows.append([ctx.button("series.done", "cd:done")])
    titles = [_title(ctx, k) for k in chosen]
    if edit:
        await ctx.update("series/ask_guides", titles=titles, limit=MAX_GUIDES, buttons=rows)
    else:
        await ctx.say("series/ask_guides", titles=titles, limit=MAX_GUIDES, buttons=rows)


async def _ask_rhythm(ctx: Ctx, data: dict[str, Any]) -> None:
    await ctx.start_form(FLOW, "rhythm", data)
    buttons = [[ctx.button("series.rhythm", f"cd:r:{i}", days=list(days), at=at)]
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
    rows = group_buttons(ctx, "cd", groups, chosen, whole_ward=True)
    rows.append([ctx.button("series.next", "cd:next")])
    codes = [g.code for g in groups if g.id in set(chosen)]
    if edit:
        await ctx.update("series/ask_groups", codes=codes, buttons=rows)
    else:
        await ctx.say("series/ask_groups", codes=codes, buttons=rows)


async def _ask_period(ctx: Ctx, data: dict[str, Any]) -> None:
    await ctx.start_form(FLOW, "period", data)
    await ctx.say("series/ask_period", today=ctx.app.services.series.today(),
                  buttons=[[ctx.button("series.until_done", "cd:p")]])


async def _confirm(ctx: Ctx, data: dict[str, Any]) -> None:
    await ctx.start_form(FLOW, "confirm", data)
    preview = _preview_info(data)
    slots = ctx.app.services.series.next_slots(preview, len(preview.topic_keys))
    plan = [(_title(ctx, k), slots[i] if i < len(slots) else None)
            for i, k in enumerate(preview.topic_keys)]
    codes = await _codes(ctx, preview.ward_id, preview.group_ids)
    await ctx.say("series/confirm", s=preview, plan=plan, codes=codes,
                  buttons=[[ctx.button("series.create", "cd:go")]])


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
    _, action, value = ((ctx.incoming.payload or "").split(":", 2) + ["", ""])[:3]
    if action == "new":
        await _start(ctx, {"ward_id": ward_id})
        return
    if action == "c" and is_number(value):
        await _from_campaign(ctx, ward_id, int(value))
        return
    if action in ("pause", "resume", "end") and is_number(value):
        await _manage(ctx, ward_id, action, int(value))
        return
    form = ctx.form
    if form is None or form.flow != FLOW:
        await ctx.say("core/form_expired")
        return
    await _form_button(ctx, form.step, dict(form.data), action, value)


async def _form_button(ctx: Ctx, step: str, data: dict[str, Any], action: str,
                       value: str) -> None:
    library = ctx.app.services.explanations.library
    if action == "t" and step == "guides" and value in library.topics:
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
    elif action == "r" and step == "rhythm" and value in {str(i) for i in range(len(RHYTHMS))}:
        days, at = RHYTHMS[int(value)]
        await _rhythm_chosen(ctx, data, list(days), at)
    elif action == "g" and step == "groups":
        allowed = [g.id for g in await ctx.app.services.places.groups(int(data["ward_id"]))]
        data["groups"] = toggle(data.get("groups", []), value, allowed)
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
    except SeriesError as exc:
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
            raise SeriesError("unknown")
        await ctx.app.services.series.set_state(ctx.identity, series_id, state)
    except SeriesError as exc:
        await ctx.say(f"series/error_{exc.reason}", **exc.details)
        return
    await _list(ctx, ward_id)


def register(router: Router) -> None:
    router.command("chuyende", series, aliases=("series",), role=Role.COORDINATOR,
                   where="private")
    router.button("cd", pressed, role=Role.COORDINATOR)
    router.form(FLOW, typed)
