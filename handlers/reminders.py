"""Personal reminders as residents meet them: `/tatnhac` stops them, `/batnhac` starts them
again, and "Nhờ tổ công nghệ số đến giúp" under a reminder asks the group's helpers to come
by (they are told at once, and the household is marked in their "not done yet" list)."""

from __future__ import annotations

from bot.core import Role
from bot.router import Ctx, Router
from bot.services.reminders import ReminderError


async def mute(ctx: Ctx) -> None:
    await ctx.app.services.reminders.mute(ctx.identity, muted=True)
    await ctx.say("reminders/muted")


async def unmute(ctx: Ctx) -> None:
    await ctx.app.services.reminders.mute(ctx.identity, muted=False)
    await ctx.say("reminders/unmuted")


async def ask_visit(ctx: Ctx) -> None:
    """`rv:<step>`: the household asks for a visit from the tech team."""
    await ctx.answer_button()
    step_key = (ctx.incoming.payload or "rv:").split(":", 1)[1][:32]
    if step_key and ctx.app.services.households.step(step_key) is None:
        step_key = ""
    try:
        asked = await ctx.app.services.reminders.ask_visit(ctx.identity, step_key)
    except ReminderError:
        await ctx.say("reminders/visit_not_linked")
        return
    if asked.created:
        step = ctx.app.services.households.step(step_key) if step_key else None
        text = ctx.t("reminders/visit_to_helper", code=asked.household_code,
                     who=ctx.identity.name, step=step.title if step else "")
        for person in asked.helpers:
            await ctx.notify(person.platform, person.user_id, text)
    await ctx.say("reminders/visit_asked", created=asked.created, helpers=len(asked.helpers))


def register(router: Router) -> None:
    router.command("tatnhac", mute, aliases=("mute",), role=Role.RESIDENT, where="private")
    router.command("batnhac", unmute, aliases=("unmute",), role=Role.RESIDENT, where="private")
    router.button("rv", ask_visit, role=Role.RESIDENT)
