"""`/chiendich`: emulation campaigns, their reminders in the group chats, and the final ranking.

A coordinator creates a campaign in a short form (title → step → target → period →
reminder days and time → groups); `/chiendich` lists campaigns with their progress toward
the target and buttons to pause, resume, end, or remind now. The scheduler's tick
(`tick`) posts due reminders with each group's live figures, congratulates a group once
when it reaches the target, and posts the final ranking when a campaign ends.
"""

from __future__ import annotations

import logging
from datetime import date, datetime
from typing import Any

from bot.context import AppContext
from bot.core import Button, Role, is_number
from bot.delivery.outbox import NewDelivery
from bot.router import Ctx, Router
from bot.services.campaigns import CampaignError, CampaignInfo, parse_days, parse_time
from bot.services.progress import GroupProgress, StepCount
from bot.when import parse_period, parse_time_of_day
from handlers.staff import no_ward
from handlers.targets import group_buttons, toggle

log = logging.getLogger(__name__)

FLOW = "campaign"
TARGETS = (50, 60, 70, 80, 90, 100)
PRESETS = (("mon,wed,fri", "19:00"), ("mon,tue,wed,thu,fri,sat,sun", "19:00"),
           ("sat,sun", "08:00"))


# --- the list ------------------------------------------------------------------------------
async def campaigns(ctx: Ctx) -> None:
    ward_id = ctx.identity.ward_id
    if ward_id is None:
        await no_ward(ctx, "households/no_ward")
        return
    if ctx.identity.role_in_ward(ward_id) < Role.COORDINATOR:
        await ctx.say("core/denied", needed=Role.COORDINATOR.value, role=ctx.identity.role.value)
        return
    if ctx.args and ctx.args[0].lower() in ("tao", "moi", "new"):
        await _start(ctx, ward_id)
        return
    await _list(ctx, ward_id)


async def _list(ctx: Ctx, ward_id: int) -> None:
    services = ctx.app.services
    items = await services.campaigns.in_ward(ward_id)
    progress = await services.progress.ward(ward_id)
    lines = []
    rows: list[list[Button]] = []
    for c in items:
        lines.append((c, _campaign_total(progress.groups, c)))
        if c.state == "ended":
            continue
        pause = ("cp:resume", "campaigns.resume") if c.state == "paused" else \
            ("cp:pause", "campaigns.pause")
        rows.append([
            ctx.button(pause[1], f"{pause[0]}:{c.id}", id=c.id),
            ctx.button("campaigns.remind_now", f"cp:now:{c.id}", id=c.id),
            ctx.button("campaigns.end", f"cp:end:{c.id}", id=c.id),
        ])
    rows.append([ctx.button("campaigns.new", "cp:new")])
    steps = {s.key: s.title for s in services.progress.steps}
    await ctx.update("campaigns/list", items=lines, steps=steps, buttons=rows,
                     today=ctx.app.services.campaigns.today())


def _in_campaign(groups: list[GroupProgress], c: CampaignInfo) -> list[GroupProgress]:
    return [g for g in groups if not c.group_ids or g.group_id in c.group_ids]


def _campaign_total(groups: list[GroupProgress], c: CampaignInfo) -> StepCount:
    counts = [g.steps[c.step_key] for g in _in_campaign(groups, c) if c.step_key in g.steps]
    return StepCount(c.step_key, sum(x.done for x in counts), sum(x.total for x in counts),
                     sum(x.households_done for x in counts))


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
    elif form.step == "schedule":
        words = text.split()
        try:
            at = parse_time(words[-1]) if words else ""
            days = parse_days(" ".join(words[:-1]))
        except CampaignError:
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
    buttons = [[ctx.button("campaigns.step", f"cp:s:{s.key}", title=s.label)]
               for s in ctx.app.services.progress.steps]
    await ctx.say("campaigns/ask_step", buttons=buttons)


async def _ask_target(ctx: Ctx, data: dict[str, Any]) -> None:
    await ctx.start_form(FLOW, "target", data)
    buttons = [ctx.button("campaigns.target", f"cp:t:{n}", n=n) for n in TARGETS]
    await ctx.update("campaigns/ask_target", buttons=[buttons[:3], buttons[3:]])


async def _ask_period(ctx: Ctx, data: dict[str, Any]) -> None:
    await ctx.start_form(FLOW, "period", data)
    await ctx.say("campaigns/ask_period", today=_today(ctx))


async def _ask_schedule(ctx: Ctx, data: dict[str, Any]) -> None:
    await ctx.start_form(FLOW, "schedule", data)
    buttons = [[ctx.button("campaigns.preset", f"cp:r:{i}", days=days.split(","), at=at)]
               for i, (days, at) in enumerate(PRESETS)]
    await ctx.say("campaigns/ask_schedule", buttons=buttons)


async def _ask_groups(ctx: Ctx, data: dict[str, Any], *, edit: bool = False) -> None:
    await ctx.start_form(FLOW, "groups", data)
    groups = await ctx.app.services.places.groups(int(data["ward_id"]))
    chosen = [int(g) for g in data.get("groups", [])]
    rows = group_buttons(ctx, "cp", groups, chosen, whole_ward=True)
    rows.append([ctx.button("campaigns.create", "cp:ok")])
    step = ctx.app.services.progress.step(str(data["step"]))
    codes = [g.code for g in groups if g.id in set(chosen)]
    summary = dict(data, starts_on=date.fromisoformat(data["starts_on"]),
                   ends_on=date.fromisoformat(data["ends_on"]))
    if edit:
        await ctx.update("campaigns/confirm", c=summary, step=step, codes=codes, buttons=rows)
    else:
        await ctx.say("campaigns/confirm", c=summary, step=step, codes=codes, buttons=rows)


async def pressed(ctx: Ctx) -> None:
    """Form buttons `cp:s|t|r|g|ok|new`, list buttons `cp:pause|resume|end|now:<id>`."""
    await ctx.answer_button()
    parts = (ctx.incoming.payload or "").split(":")
    action = parts[1] if len(parts) > 1 else ""
    value = parts[2] if len(parts) > 2 else ""
    ward_id = ctx.identity.ward_id
    if ward_id is None or ctx.identity.role_in_ward(ward_id) < Role.COORDINATOR:
        await ctx.say("core/denied", needed=Role.COORDINATOR.value, role=ctx.identity.role.value)
        return
    if action == "new":
        await _start(ctx, ward_id)
        return
    if action in ("pause", "resume", "end", "now") and is_number(value):
        await _manage(ctx, ward_id, action, int(value))
        return
    form = ctx.form
    if form is None or form.flow != FLOW:
        await ctx.say("core/form_expired")
        return
    data = dict(form.data)
    if action == "s" and form.step == "step" and ctx.app.services.progress.step(value):
        data["step"] = value
        await _ask_target(ctx, data)
    elif action == "t" and form.step == "target" and value in {str(n) for n in TARGETS}:
        data["target"] = int(value)
        await _ask_period(ctx, data)
    elif action == "r" and form.step == "schedule" and value in {
            str(i) for i in range(len(PRESETS))}:
        days, at = PRESETS[int(value)]
        data["days"], data["at"] = days.split(","), at
        await _ask_groups(ctx, data)
    elif action == "g" and form.step == "groups":
        allowed = [g.id for g in await ctx.app.services.places.groups(ward_id)]
        data["groups"] = toggle(data.get("groups", []), value, allowed)
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
    except CampaignError as exc:
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
                raise CampaignError("unknown")
            stamp = ctx.app.clock.now().strftime("%Y%m%d%H%M%S")
            sent = await remind(ctx.app, found, run_key=f"now{stamp}")
            await ctx.say("campaigns/reminded", c=found, chats=sent)
            return
        state = {"pause": "paused", "resume": "active", "end": "ended"}[action]
        changed = await services.campaigns.set_state(ctx.identity, campaign_id, state)
        if changed.ward_id != ward_id:
            raise CampaignError("unknown")
    except CampaignError as exc:
        await ctx.say(f"campaigns/error_{exc.reason}")
        return
    if state == "ended":
        await finish(ctx.app, changed)
    await _list(ctx, ward_id)


# --- what the scheduler runs -------------------------------------------------------------------
async def remind(app: AppContext, c: CampaignInfo, *, run_key: str) -> int:
    """Queue one reminder per chat of each group in the campaign, with its live figures, and
    congratulate (once) the groups that reached the target. Returns chats queued."""
    services = app.services
    progress = await services.progress.ward(c.ward_id)
    step = services.progress.step(c.step_key)
    if step is None:
        log.warning("campaign %s: step %s is no longer configured", c.id, c.step_key)
        return 0
    ranked = [(g, s) for g, s in progress.ranked(c.step_key) if not c.group_ids
              or g.group_id in c.group_ids]
    chats = await services.chats.active_by_group(c.ward_id)
    guide = [[Button(app.texts.label("campaigns.guide", app.config.bot.locale),
                     f"faq:t:{step.guide}")]] if step.guide in \
        services.explanations.library.topics else []
    reached = [g.group_id for g, s in ranked if s.ratio >= c.target]
    new_winners = set(await services.campaigns.congratulate(c.id, reached))
    items = []
    for rank, (group, count) in enumerate(ranked, start=1):
        text = app.texts.render(
            "campaigns/reminder", app.config.bot.locale, c=c, step=step, group=group,
            count=count, rank=rank, groups=len(ranked), left=max(count.total - count.done, 0),
            days_left=(c.ends_on - services.campaigns.today()).days,
        )
        for chat in chats.get(group.group_id, []):
            items.append(NewDelivery(
                kind="reminder", ref_id=c.id, platform=chat.platform, chat_id=chat.chat_id,
                dedupe=f"rem:{c.id}:{run_key}:{chat.platform}:{chat.chat_id}", text=text,
                ward_id=c.ward_id, group_id=group.group_id, buttons=guide,
            ))
            if group.group_id in new_winners:
                items.append(NewDelivery(
                    kind="congrats", ref_id=c.id, platform=chat.platform, chat_id=chat.chat_id,
                    dedupe=f"congr:{c.id}:{group.group_id}:{chat.platform}:{chat.chat_id}",
                    text=app.texts.render("campaigns/congrats", app.config.bot.locale, c=c,
                                          step=step, group=group, count=count),
                    ward_id=c.ward_id, group_id=group.group_id,
                ))
    await services.outbox.enqueue(items)
    return sum(1 for i in items if i.kind == "reminder")


async def finish(app: AppContext, c: CampaignInfo) -> None:
    """Post the final ranking to the groups and the coordinators, once."""
    services = app.services
    if not await services.campaigns.end(c.id):
        return
    progress = await services.progress.ward(c.ward_id)
    step = services.progress.step(c.step_key)
    ranked = [(g, s) for g, s in progress.ranked(c.step_key) if not c.group_ids
              or g.group_id in c.group_ids]
    text = app.texts.render("campaigns/final", app.config.bot.locale, c=c, step=step,
                            ranked=ranked, total=_campaign_total(progress.groups, c))
    chats = await services.chats.active_by_group(c.ward_id)
    items = [
        NewDelivery(kind="final", ref_id=c.id, platform=chat.platform, chat_id=chat.chat_id,
                    dedupe=f"final:{c.id}:{chat.platform}:{chat.chat_id}", text=text,
                    ward_id=c.ward_id, group_id=group.group_id)
        for group, _ in ranked for chat in chats.get(group.group_id, [])
    ]
    effect = await services.reminders.effect(c.id)
    if effect:  # the coordinators' copy also says what the personal reminders achieved
        text += "\n\n" + app.texts.render("campaigns/reminder_effect", app.config.bot.locale,
                                          effect=effect)
    items += [
        NewDelivery(kind="final", ref_id=c.id, platform=platform, chat_id=user_id,
                    dedupe=f"final:{c.id}:{platform}:{user_id}", text=text, is_group=False,
                    ward_id=c.ward_id, priority=3)
        for platform, user_id in await services.access.coordinators(c.ward_id)
    ]
    await services.outbox.enqueue(items)


async def digest(app: AppContext, ward_id: int, now: datetime) -> int:
    """The coordinators' daily digest: today's progress per group and feedback to handle."""
    services = app.services
    tz = app.config.bot.tz
    midnight = datetime.combine(now.astimezone(tz).date(), datetime.min.time(), tzinfo=tz)
    progress = await services.progress.ward(ward_id)
    today = await services.progress.change_by_group(ward_id, midnight)
    counts = await services.feedback.counts(ward_id)
    text = app.texts.render("campaigns/digest", app.config.bot.locale, progress=progress,
                            today=today, feedback=counts, day=now)
    people = await services.access.coordinators(ward_id)
    stamp = now.astimezone(tz).date().isoformat()
    await services.outbox.enqueue([
        NewDelivery(kind="digest", ref_id=ward_id, platform=platform, chat_id=user_id,
                    dedupe=f"digest:{ward_id}:{stamp}:{platform}:{user_id}", text=text,
                    is_group=False, ward_id=ward_id, priority=3)
        for platform, user_id in people
    ])
    return len(people)


async def tick(app: AppContext) -> int:
    """Every minute on the scheduler leader: due reminders (one per missed run), campaigns
    past their end, the daily digests. Returns how many things it did."""
    services = app.services
    done = 0
    today = services.campaigns.today()
    for c in await services.campaigns.due_runs():
        await services.campaigns.mark_run(c.id)
        if c.starts_on <= today <= c.ends_on:
            slot = app.clock.now().astimezone(app.config.bot.tz).strftime("%Y%m%d%H")
            await remind(app, c, run_key=slot)
            done += 1
    for c in await services.campaigns.past_end() + await services.campaigns.ended_by_hand():
        await finish(app, c)
        done += 1
    at = parse_time_of_day(app.config.schedule.digest_time)
    assert at is not None  # the config validates the format
    for ward in await services.places.wards():
        if await services.campaigns.daily_due(f"digest:{ward.id}", at):
            await digest(app, ward.id, app.clock.now())
            done += 1
    return done


def register(router: Router) -> None:
    router.command("chiendich", campaigns, aliases=("campaign",), role=Role.COORDINATOR,
                   where="private")
    router.button("cp", pressed, role=Role.COORDINATOR)
    router.form(FLOW, typed)

