"""Progress, as the ward reads it every evening: `/tiendo`, `/xephang`, `/xuat`.

`/tiendo` the ward (one line per group), `/tiendo TDP05` one group (its steps, this week's
change, the households still missing a step), `/tiendo vneid` one step across groups.
Everyone sees percentages; household names only those who visit them (helpers and leaders
of the group, coordinators).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

from bot.core import Attachment
from bot.keyboards import nav_rows, page_count
from bot.payloads import Payload
from bot.roles import Role
from bot.router import Ctx, Router, own_group
from bot.services.places import GroupInfo
from bot.services.progress import WardProgress
from bot.services.reports import bar_chart_png
from handlers.staff import no_ward

PAGE = 15


@dataclass(frozen=True)
class ProgressPress(Payload, prefix="pg"):
    """`s` step `key` across groups; `c` the chart of step `key` (all steps when empty)."""

    action: Literal["s", "c"]
    key: str = ""


@dataclass(frozen=True)
class Missing(Payload, prefix="pgm"):
    """Page `page` (1-based) of the households of group `group` still missing step `key`
    (any step when empty): names, so only for helpers and leaders of that group. Page 0,
    the button under the group's progress, opens the list in a new message; ◀ ▶ edit it."""

    group: int
    key: str = ""
    page: int = 0


async def missing_place(ctx: Ctx) -> tuple[int, int | None] | None:
    group = await ctx.app.services.places.group(ctx.press(Missing).group)
    return None if group is None else (group.ward_id, group.id)


async def progress(ctx: Ctx) -> None:
    ward_id = ctx.identity.ward_id
    if ward_id is None:
        await no_ward(ctx, "households/no_ward")
        return
    steps = ctx.app.services.progress
    words = list(ctx.args)
    group = None
    step_key: str | None = None
    for word in words:
        found = await ctx.app.services.places.group_by_code(ward_id, word)
        if found is not None and group is None:
            group = found
        elif steps.step(word.lower()) is not None and step_key is None:
            step_key = word.lower()
        else:
            await ctx.say("progress/usage", word=word, steps=[s.key for s in steps.steps])
            return
    if group is not None:
        await _group(ctx, group, step_key)
    elif step_key is not None:
        await _step(ctx, ward_id, step_key)
    else:
        await _ward(ctx, ward_id)


async def _ward(ctx: Ctx, ward_id: int) -> None:
    ward = await ctx.app.services.progress.ward(ward_id)
    buttons = [[ctx.button("progress.step", ProgressPress("s", s.key), title=s.label)]
               for s in ward.steps]
    buttons.append([ctx.button("progress.chart_button", ProgressPress("c"))])
    reach = await ctx.app.services.relays.reach(ward_id)  # how each group gets notices
    contests = [await ctx.app.services.contests.standings(c.id)
                for c in await ctx.app.services.contests.open_for({ward_id})]
    await ctx.say("progress/ward", ward=ward, buttons=buttons, contests=contests, reach=reach)


async def _step(ctx: Ctx, ward_id: int, key: str) -> None:
    ward = await ctx.app.services.progress.ward(ward_id)
    step = ctx.app.services.progress.step(key)
    await ctx.say("progress/step", ward=ward, step=step, ranked=ward.ranked(key),
                  total=ward.step_total(key),
                  buttons=[[ctx.button("progress.chart_button", ProgressPress("c", key))]])


def _sees_households(ctx: Ctx, group: GroupInfo) -> bool:
    return ctx.identity.role_in_group(group.ward_id, group.id) >= Role.HELPER


async def _group(ctx: Ctx, group: GroupInfo, step_key: str | None) -> None:
    ward = await ctx.app.services.progress.ward(group.ward_id, [group.id])
    week_start = ctx.app.clock.now() - timedelta(days=7)
    change = await ctx.app.services.progress.change_since(group.id, week_start)
    buttons = []
    if _sees_households(ctx, group) and ctx.incoming.is_private:  # names stay out of groups
        buttons.append([ctx.button("progress.missing", Missing(group.id, step_key or ""))])
    reach = (await ctx.app.services.relays.reach(group.ward_id, [group.id])).get(group.id)
    await ctx.say("progress/group", group=ward.groups[0], steps=ward.steps, change=change,
                  buttons=buttons, reach=reach)


async def pressed(ctx: Ctx) -> None:
    """A `ProgressPress`: one step across the groups, or a chart."""
    await ctx.answer_button()
    press = ctx.press(ProgressPress)
    ward_id = ctx.identity.ward_id
    if ward_id is None:
        await no_ward(ctx, "households/no_ward")
        return
    key = press.key if ctx.app.services.progress.step(press.key) else None
    if press.action == "s" and key is not None:
        await _step(ctx, ward_id, key)
    elif press.action == "c":
        await _chart(ctx, ward_id, key)
    else:
        await ctx.answer_button("core.stale_button")


async def missing(ctx: Ctx) -> None:
    """A `Missing` page; the router has checked the group is the helper's own."""
    await ctx.answer_button()
    press = ctx.press(Missing)
    if not ctx.incoming.is_private:
        await ctx.say("core/private_only", command="tiendo", bot=ctx.platform.bot_username)
        return
    group = await ctx.app.services.places.group(press.group)
    if group is None:
        await ctx.answer_button("core.stale_button")
        return
    step_key = press.key if ctx.app.services.progress.step(press.key) else None
    page = max(press.page, 1)
    rows, total = await ctx.app.services.households.missing(
        group.id, step_key, offset=(page - 1) * PAGE, limit=PAGE
    )
    pages = page_count(total, PAGE)
    buttons = nav_rows(page, pages, lambda n: Missing(group.id, step_key or "", n),
                       label=ctx.label, buttons=ctx.platform.capabilities.buttons)
    step = ctx.app.services.progress.step(step_key) if step_key else None
    titles = {s.key: s.title for s in ctx.app.services.progress.steps}
    visits = await ctx.app.services.reminders.visits(group.id)
    render = ctx.say if press.page == 0 else ctx.update
    await render("progress/missing", group=group, rows=rows, total=total, page=page,
                 pages=pages, step=step, titles=titles, start=(page - 1) * PAGE,
                 buttons=buttons, visits=visits)


async def _chart(ctx: Ctx, ward_id: int, key: str | None) -> None:
    if not ctx.platform.capabilities.photos:
        await ctx.say("progress/no_pictures")
        return
    ward = await ctx.app.services.progress.ward(ward_id)
    step = ctx.app.services.progress.step(key) if key else None
    title = ctx.label("progress.chart.title", step=step.title if step else "")
    png = bar_chart_png(ward.ranked(key), title, ctx.label)
    caption = ctx.t("progress/chart_caption", step=step, ward=ward)
    await ctx.reply(caption, attachment=Attachment(
        kind="photo", filename="tien-do.png", data=png, mime_type="image/png",
    ))


async def ranking(ctx: Ctx) -> None:
    ward_id = ctx.identity.ward_id
    if ward_id is None:
        await no_ward(ctx, "households/no_ward")
        return
    key = ctx.args[0].lower() if ctx.args else None
    steps = ctx.app.services.progress
    if key is not None and steps.step(key) is None:
        await ctx.say("progress/usage", word=key, steps=[s.key for s in steps.steps])
        return
    ward: WardProgress = await steps.ward(ward_id)
    await ctx.say("progress/ranking", ranked=ward.ranked(key),
                  step=steps.step(key) if key else None,
                  buttons=[[ctx.button("progress.chart_button", f"pg:c:{key or '*'}")]])


async def export(ctx: Ctx) -> None:
    ward_id = ctx.identity.ward_id
    if ward_id is None:
        await no_ward(ctx, "households/no_ward")
        return
    if not ctx.platform.capabilities.documents:
        public_url = ctx.app.config.web.public_url
        if not public_url:
            await ctx.say("progress/no_documents")
            return
        token = await ctx.app.services.downloads.create(ctx.identity, "progress_xlsx", ward_id)
        await ctx.say("progress/download_link", url=f"{public_url.rstrip('/')}/download/{token}")
        return
    book = await ctx.app.services.reports.progress_workbook(ward_id, ctx.label)
    await ctx.reply(ctx.t("progress/export_caption", households=book.households),
                    attachment=Attachment(kind="document", filename=book.filename,
                                          data=book.data, mime_type=book.content_type))


def register(router: Router) -> None:
    router.command("tiendo", progress, aliases=("progress",), role=Role.RESIDENT)
    router.command("xephang", ranking, aliases=("ranking",), role=Role.RESIDENT)
    router.command("xuat", export, aliases=("export",), role=Role.COORDINATOR, where="private")
    router.button(ProgressPress, pressed, role=Role.RESIDENT)
    router.button(Missing, missing, role=Role.HELPER, scope=own_group(missing_place))
