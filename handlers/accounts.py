"""`/lienketzalo`: use the bot from both Telegram and Zalo as one person."""

from __future__ import annotations

from bot.router import Ctx, Router
from bot.services.errors import ServiceError


async def link_account(ctx: Ctx) -> None:
    """Without a code: make one to type on the other app. With a code: join the two."""
    accounts = ctx.app.services.accounts
    if not ctx.args:
        offer = await accounts.offer(ctx.identity)
        await ctx.say("accounts/offer", code=offer.code, platform=ctx.platform.name)
        return
    try:
        linked = await accounts.redeem(ctx.identity, ctx.args[0])
    except ServiceError as exc:
        await ctx.say(f"accounts/link_{exc.reason}")
        return
    ctx.identity = await ctx.app.services.access.identify(ctx.platform.name, ctx.incoming.sender)
    await ctx.say(
        "accounts/linked", other=linked.other_platform, already=linked.already,
        roles=[g.role.value for g in ctx.identity.grants],
    )


def register(router: Router) -> None:
    router.command("lienketzalo", link_account, aliases=("linkaccount",), where="private")
