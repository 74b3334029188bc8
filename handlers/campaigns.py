"""`/chiendich`: emulation campaigns, their reminders in the group chats, and the final ranking.

A coordinator creates a campaign in a short form (title → step → target → period →
reminder days and time → groups); `/chiendich` lists campaigns with their progress toward
the target and buttons to pause, resume, end, or remind now. The scheduled side (due
reminders, congratulations, the final ranking, the daily digest) is `bot/jobs/campaigns.py`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

from bot.core import Button, is_number
from bot.keyboards import page_rows
from bot.payloads import Payload
from bot.roles import Role
from bot.router import OWN_WARD, Ctx, Router
from bot.services.campaigns import campaign_total, parse_days, parse_time
from bot.services.errors import ServiceError
from bot.when import parse_period
from handlers.staff import no_ward
from handlers.targets import group_picker, picker_context, toggle, typed_groups

FLOW = "campaign"
TARGETS = (50, 60, 70, 80, 90, 100)
PRESETS = (("mon,wed,fri", "19:00"), ("mon,tue,wed,thu,fri,sat,sun", "19:00"),
           ("sat,sun", "08:00"))


@dataclass(frozen=True)
class CampaignPress(Payload, prefix="cp"):
    """The form: `s` step `key`, `t` target `value`, `r` preset `value`, `g` toggle group
    `value`, `all`, `pg` picker page, `ok`; the list: `new`, `pause|resume|end|now` campaign
    `value`, `lp` page `value` of the list."""

    action: Literal["s", "t", "r", "g", "all", "pg", "ok", "new", "pause", "resume", "end",
                    "now", "lp"]
    value: int = 0
    key: str = ""


# --- the list ------------------------------------------------------------------------------
async def campaigns(ctx: Ctx) -> None:
    ward_id = ctx.identity.ward_id
    if ward_id is None:
        await no_ward(ctx, "households/no_ward")
        return
    if ctx.args and ctx.args[0].lower() in ("tao", "moi", "new"):
        await _start(ctx, ward_id)
        return
    await _list(ctx, ward_id)


async def _list(ctx: Ctx, ward_id: int, page: int = 1) -> None:
    services = ctx.app.services
    items = await services.campaigns.in_ward(ward_id)
    progress = await services.progress.ward(ward_id)
    lines = []
    rows: list[list[Button]] = []
    for c in items:
        lines.append((c, campaign_total(progress.groups, c)))
        if c.state == "ended":
            continue
        pause: tuple[Literal["resume", "pause"], str] = (
            ("resume", "campaigns.resume") if c.state == "paused" else
            ("pause", "campaigns.pause"))
        rows.append([
            ctx.button(pause[1], CampaignPress(pause[0], c.id), id=c.id),
            ctx.button("campaigns.remind_now", CampaignPress("now", c.id), id=c.id),
            ctx.button("campaigns.end", CampaignPress("end", c.id), id=c.id),
        ])
    paged = page_rows(rows, page, nav=lambda n: CampaignPress("lp", n), label=ctx.label,
                      buttons=ctx.platform.capabilities.buttons,
                      tail=[[ctx.button("campaigns.new", CampaignPress("new"))]])
    steps = {s.key: s.title for s in services.progress.steps}
    await ctx.update("campaigns/list", items=lines, steps=steps, buttons=paged.rows,
                     today=ctx.app.services.campaigns.today())


# --- the form ------------------------------------------------------------------------------
async def _start(ctx: Ctx, ward_id: int) -> None:
    await ctx.start_form(FLOW, "title", {"ward_id": ward_id})
    await ctx.say("campaigns/ask_title")


async def typed(ctx: Ctx) -> None:
    form = ctx.form
    assert form is not None
    data = dict(form.data)
    text = " ".join(ctx.incoming.text.split())
    if form.step == "title":
        if not text or len(text) > 200:
            await ctx.say("campaigns/ask_title")
            return
        data["title"] = text
        await _ask_step(ctx, data)
    elif form.step == "target":
        number = text.rstrip("%").strip()
        if not is_number(number) or not 1 <= int(number) <= 100:
            await ctx.say("campaigns/bad_target")
            return
        data["target"] = int(number)
        await _ask_period(ctx, data)
    elif form.step == "period":
        period = _parse_period(text, _today(ctx))
        if period is None:
            await ctx.say("campaigns/bad_period")
            return
        data["starts_on"], data["ends_on"] = period[0].isoformat(), period[1].isoformat()
        await _ask_schedule(ctx, data)
    elif form.step == "groups":
        groups = await ctx.app.services.places.groups(int(data["ward_id"]))
        chosen = await typed_groups(ctx, groups)
        if chosen is None:
            await ctx.say("campaigns/press_a_button")
        elif chosen:
            data["groups"], data["page"] = chosen, 1
            await _ask_groups(ctx, data)
    elif form.step == "schedule":
        words = text.split()
        try:
            at = parse_time(words[-1]) if words else ""
            days = parse_days(" ".join(words[:-1]))
        except ServiceError:
            await ctx.say("campaigns/bad_schedule")
            return
        data["days"], data["at"] = days, at
        await _ask_groups(ctx, data)
    else:
        await ctx.say("campaigns/press_a_button")


def _today(ctx: Ctx) -> date:
    return ctx.app.services.campaigns.today()


def _parse_period(text: str, today: date) -> tuple[date, date] | None:
    return parse_period(text, today)


async def _ask_step(ctx: Ctx, data: dict[str, Any]) -> None:
    await ctx.start_form(FLOW, "step", data)
    buttons = [[ctx.button("campaigns.step", CampaignPress("s", key=s.key), title=s.label)]
               for s in ctx.app.services.progress.steps]
    await ctx.say("campaigns/ask_step", buttons=buttons)


async def _ask_target(ctx: Ctx, data: dict[str, Any]) -> None:
    await ctx.start_form(FLOW, "target", data)
    buttons = [ctx.button("campaigns.target", CampaignPress("t", n), n=n) for n in TARGETS]
    await ctx.update("campaigns/ask_target", buttons=[buttons[:3], buttons[3:]])


async def _ask_period(ctx: Ctx, data: dict[str, Any]) -> None:
    await ctx.start_form(FLOW, "period", data)
    await ctx.say("campaigns/ask_period", today=_today(ctx))


async def _ask_schedule(ctx: Ctx, data: dict[str, Any]) -> None:
    await ctx.start_form(FLOW, "schedule", data)
    buttons = [[ctx.button("campaigns.preset", CampaignPress("r", i), days=days.split(","),
                           at=at)]
               for i, (days, at) in enumerate(PRESETS)]
    await ctx.say("campaigns/ask_schedule", buttons=buttons)


async def _ask_groups(ctx: Ctx, data: dict[str, Any], *, edit: bool = False) -> None:
    await ctx.start_form(FLOW, "groups", data)
    groups = await ctx.app.services.places.groups(int(data["ward_id"]))
    chosen = [int(g) for g in data.get("groups", [])]
    paged = group_picker(ctx, lambda action, value: CampaignPress(action, value), groups,
                         chosen, whole_ward=True, page=int(data.get("page", 1)),
                         tail=[[ctx.button("campaigns.create", CampaignPress("ok"))]])
    step = ctx.app.services.progress.step(str(data["step"]))
    summary = dict(data, starts_on=date.fromisoformat(data["starts_on"]),
                   ends_on=date.fromisoformat(data["ends_on"]))
    render = ctx.update if edit else ctx.say
    await render("campaigns/confirm", c=summary, step=step, buttons=paged.rows,
                 **picker_context(groups, chosen, paged))


async def pressed(ctx: Ctx) -> None:
    """A `CampaignPress`: the form's buttons, or the list's (the router has checked that the
    person is a coordinator of their own ward)."""
    await ctx.answer_button()
    press = ctx.press(CampaignPress)
    action, value = press.action, press.value
    ward_id = ctx.identity.ward_id
    assert ward_id is not None  # the route's OWN_WARD scope
    if action == "new":
        await _start(ctx, ward_id)
        return
    if action in ("pause", "resume", "end", "now"):
        await _manage(ctx, ward_id, action, value)
        return
    if action == "lp":
        await _list(ctx, ward_id, value)
        return
    form = ctx.form
    if form is None or form.flow != FLOW:
        await ctx.say("core/form_expired")
        return
    data = dict(form.data)
    if action == "s" and form.step == "step" and ctx.app.services.progress.step(press.key):
        data["step"] = press.key
        await _ask_target(ctx, data)
    elif action == "t" and form.step == "target" and value in TARGETS:
        data["target"] = value
        await _ask_period(ctx, data)
    elif action == "r" and form.step == "schedule" and 0 <= value < len(PRESETS):
        days, at = PRESETS[value]
        data["days"], data["at"] = days.split(","), at
        await _ask_groups(ctx, data)
    elif action in ("g", "all", "pg") and form.step == "groups":
        if action == "pg":
            data["page"] = value
        else:
            allowed = [g.id for g in await ctx.app.services.places.groups(ward_id)]
            data["groups"] = toggle(data.get("groups", []), action, value, allowed)
        await _ask_groups(ctx, data, edit=True)
    elif action == "ok" and form.step == "groups":
        await _create(ctx, ward_id, data)
    else:
        await ctx.say("campaigns/press_a_button")


async def _create(ctx: Ctx, ward_id: int, data: dict[str, Any]) -> None:
    try:
        created = await ctx.app.services.campaigns.create(
            ctx.identity, ward_id, title=str(data["title"]), step_key=str(data["step"]),
            target=int(data["target"]), starts_on=date.fromisoformat(data["starts_on"]),
            ends_on=date.fromisoformat(data["ends_on"]),
            group_ids=[int(g) for g in data.get("groups", [])], days=list(data["days"]),
            at_time=str(data["at"]),
        )
    except ServiceError as exc:
        await ctx.say(f"campaigns/error_{exc.reason}")
        return
    await ctx.end_form()
    await ctx.update("campaigns/created", c=created,
                     step=ctx.app.services.progress.step(created.step_key))


async def _manage(ctx: Ctx, ward_id: int, action: str, campaign_id: int) -> None:
    services = ctx.app.services
    try:
        if action == "now":
            found = await services.campaigns.get(campaign_id)
            if found is None or found.ward_id != ward_id:
                raise ServiceError("unknown")
            stamp = ctx.app.clock.now().strftime("%Y%m%d%H%M%S")
            sent = await ctx.app.jobs.campaigns.remind(found, run_key=f"now{stamp}")
            await ctx.say("campaigns/reminded", c=found, chats=sent)
            return
        state = {"pause": "paused", "resume": "active", "end": "ended"}[action]
        changed = await services.campaigns.set_state(ctx.identity, campaign_id, state)
        if changed.ward_id != ward_id:
            raise ServiceError("unknown")
    except ServiceError as exc:
        await ctx.say(f"campaigns/error_{exc.reason}")
        return
    if state == "ended":
        await ctx.app.jobs.campaigns.finish(changed)
    await _list(ctx, ward_id)


def register(router: Router) -> None:
    router.command("chiendich", campaigns, aliases=("campaign",), role=Role.COORDINATOR,
                   where="private", scope=OWN_WARD)
    router.button(CampaignPress, pressed, role=Role.COORDINATOR, scope=OWN_WARD)
    router.form(FLOW, typed)

