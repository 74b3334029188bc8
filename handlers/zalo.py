"""`/zalo` for admins: is the Zalo bot sending (its monthly quota), how many OA messages
went this month (free replies, proactive), must the OA be authorised again;
`/zalo tieptuc` lets the Zalo bot send again at once after the quota was raised."""

from __future__ import annotations

from bot.roles import Role
from bot.router import Ctx, Router


async def zalo(ctx: Ctx) -> None:
    status = ctx.app.services.zalo_status
    if ctx.args and ctx.args[0].lower() in ("tieptuc", "resume"):
        resumed = await status.resume(ctx.identity)
        await ctx.say("zalo/resumed", resumed=resumed)
        return
    if ctx.args:
        await ctx.say("zalo/usage")
        return
    state = await status.state()
    await ctx.say(
        "zalo/status",
        bot={"quota_exceeded": state.quota_exceeded} if state.bot_enabled else None,
        since=state.since, next_probe=state.next_probe,
        oa=state.oa if state.oa_enabled else None, oa_reauthorize=state.oa_reauthorize,
        proactive_limit=state.proactive_limit,
    )


def register(router: Router) -> None:
    router.command("zalo", zalo, role=Role.ADMIN, where="private")
