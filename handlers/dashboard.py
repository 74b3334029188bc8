"""`/dashboard`: a one-time sign-in link to the web dashboard, in a private chat only."""

from __future__ import annotations

from bot.core import Role
from bot.router import Ctx, Router
from handlers.staff import no_ward


async def dashboard(ctx: Ctx) -> None:
    public_url = ctx.app.config.web.public_url
    if not public_url:
        await ctx.say("dashboard/not_configured")
        return
    if ctx.identity.ward_id is None:
        await no_ward(ctx, "dashboard/no_ward")
        return
    token = await ctx.app.services.dashboard_logins.create(ctx.identity)
    await ctx.say("dashboard/link", url=f"{public_url.rstrip('/')}/login/{token}")


def register(router: Router) -> None:
    router.command("dashboard", dashboard, role=Role.LEADER, where="private")
