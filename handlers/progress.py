"""Progress, as the ward reads it every evening: `/tiendo`, `/xephang`, `/xuat`.

`/tiendo` the ward (one line per group), `/tiendo TDP05` one group (its steps, this week's
change, the households still missing a step), `/tiendo vneid` one step across groups.
Everyone sees percentages; household names only those who visit them (helpers and leaders
of the group, coordinators).
"""

from __future__ import annotations

from datetime import timedelta

from bot.context import AppContext
from bot.core import Attachment, Role, is_number
from bot.router import Ctx, Router
from bot.services.places import GroupInfo
from bot.services.progress import WardProgress
from bot.services.reports import bar_chart_png, progress_xlsx
from handlers.staff import no_ward

PAGE = 15


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
    buttons = [[ctx.button("progress.step", f"pg:s:{s.key}", title=s.label)] for s in ward.steps]
    buttons.append([ctx.button("progress.chart_button", "pg:c:*")])
    contests = [await ctx.app.services.contests.standings(c.id)
                for c in await ctx.app.services.contests.open_for({ward_id})]
    await ctx.say("progress/ward", ward=ward, buttons=buttons, contests=contests)


async def _step(ctx: Ctx, ward_id: int, key: str) -> None:
    ward = await ctx.app.services.progress.ward(ward_id)
    step = ctx.app.services.progress.step(key)
    await ctx.say("progress/step", ward=ward, step=step, ranked=ward.ranked(key),
                  total=ward.step_total(key),
                  buttons=[[ctx.button("progress.chart_button", f"pg:c:{key}")]])


def _sees_households(ctx: Ctx, group: GroupInfo) -> bool:
    return ctx.identity.role_in_group(group.ward_id, group.id) >= Role.HELPER


async def _group(ctx: Ctx, group: GroupInfo, step_key: str | None) -> None:
    ward = await ctx.app.services.progress.ward(group.ward_id, [group.id])
    week_start = ctx.app.clock.now() - timedelta(days=7)
    change = await ctx.app.services.progress.change_since(group.id, week_start)
    buttons = []
    if _sees_households(ctx, group) and ctx.incoming.is_private:  # names stay out of groups
        buttons.append([ctx.button("progress.missing", f"pg:m:{group.id}:{step_key or '*'}:0")])
    await ctx.say("progress/group", group=ward.groups[0], steps=ward.steps, change=change,
                  buttons=buttons)


async def pressed(ctx: Ctx) -> None:
    """`pg:s:<step>`, `pg:c:<step|*>` chart, `pg:m:<group>:<step|*>:<page>` households left."""
    await ctx.answer_button()
    parts = (ctx.incoming.payload or "").split(":")
    ward_id = ctx.identity.ward_id
    if ward_id is None or len(parts) < 3:
        await no_ward(ctx, "households/no_ward")
        return
    steps = ctx.app.services.progress
    if parts[1] == "s" and steps.step(parts[2]):
        await _step(ctx, ward_id, parts[2])
    elif parts[1] == "c":
        key = parts[2] if steps.step(parts[2]) else None
        await _chart(ctx, ward_id, key)
    elif parts[1] == "m" and len(parts) == 5 and is_number(parts[2]) and is_number(parts[4]):
        await _missing(ctx, int(parts[2]), parts[3] if steps.step(parts[3]) else None,
                       int(parts[4]))
    else:
        await ctx.answer_button("core.stale_button")


async def _missing(ctx: Ctx, group_id: int, step_key: str | None, page: int) -> None:
    if not ctx.incoming.is_private:
        await ctx.say("core/private_only", command="tiendo", bot=ctx.platform.bot_username)
        return
    group = await ctx.app.services.places.group(group_id)
    if group is None or not _sees_households(ctx, group):
        await ctx.say("core/denied", needed=Role.HELPER.value, role=ctx.identity.role.value)
        return
    rows, total = await ctx.app.services.households.missing(
        group_id, step_key, offset=page * PAGE, limit=PAGE
    )
    pages = max(1, -(-total // PAGE))
    buttons = []
    if page + 1 < pages:
        more = f"pg:m:{group_id}:{step_key or '*'}:{page + 1}"
        buttons.append([ctx.button("progress.more", more)])
    step = ctx.app.services.progress.step(step_key) if step_key else None
    titles = {s.key: s.title for s in ctx.app.services.progress.steps}
    visits = await ctx.app.services.reminders.visits(group_id)
    await ctx.say("progress/missing", group=group, rows=rows, total=total, page=page + 1,
                  pages=pages, step=step, titles=titles, start=page * PAGE, buttons=buttons,
                  visits=visits)


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


XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


async def export_file(app: AppContext, ward_id: int) -> tuple[str, bytes, int]:
    """The progress workbook of a ward: (file name, bytes, households in it)."""
    ward = await app.services.places.ward(ward_id)
    progress = await app.services.progress.ward(ward_id)
    rows = await app.services.registry.household_rows(ward_id)
    data = progress_xlsx(progress, rows, app.texts.label, app.config.bot.tz)
    day = app.clock.now().astimezone(app.config.bot.tz).strftime("%Y-%m-%d")
    code = ward.code if ward else "phuong"
    return f"tien-do-{code}-{day}.xlsx", data, len(rows)


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
    filename, data, households = await export_file(ctx.app, ward_id)
    await ctx.reply(ctx.t("progress/export_caption", households=households),
                    attachment=Attachment(kind="document", filename=filename, data=data,
                                          mime_type=XLSX_TYPE))


def register(router: Router) -> None:
    router.command("tiendo", progress, aliases=("progress",), role=Role.RESIDENT)
    router.command("xephang", ranking, aliases=("ranking",), role=Role.RESIDENT)
    router.command("xuat", export, aliases=("export",), role=Role.COORDINATOR, where="private")
    router.button("pg", pressed, role=Role.RESIDENT)
