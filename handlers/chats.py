"""Group chats: `/lienket TDP05` binds a chat to its residential group; the bot being added,
removed or moved to a supergroup is tracked so notices always reach the right chat."""

from __future__ import annotations

import logging

from bot.context import AppContext
from bot.core import ChatEvent, Outgoing, Platform, Role
from bot.router import Ctx, Router
from bot.services.chats import BindError

log = logging.getLogger(__name__)


async def link(ctx: Ctx) -> None:
    if not ctx.args:
        binding = await ctx.app.services.chats.binding(ctx.platform.name, ctx.incoming.chat.chat_id)
        groups = [g.group_code for g in ctx.identity.groups_with(Role.LEADER)]
        await ctx.say(
            "chats/link_usage",
            current=binding.group_code if binding else "",
            groups=groups,
        )
        return
    try:
        result = await ctx.app.services.chats.bind(
            ctx.identity, ctx.platform.name, ctx.incoming.chat, ctx.args[0]
        )
    except BindError as exc:
        await ctx.say(f"chats/link_{exc.reason}", code=ctx.args[0].upper())
        return
    await ctx.say(
        "chats/linked",
        group_code=result.binding.group_code,
        group_name=result.binding.group_name,
        previous=result.previous_group_code,
    )


async def on_chat_event(app: AppContext, platform: Platform, event: ChatEvent) -> None:
    chats = app.services.chats
    actor_id: int | None = None
    if event.actor is not None and event.kind in ("added", "removed"):
        actor_id = (await app.services.access.identify(platform.name, event.actor)).member_id
    if event.kind == "added":
        await chats.bot_added(platform.name, event.chat, actor_id, can_post=event.can_post)
        if event.can_post:
            text = app.texts.render("chats/bot_added", bot=platform.bot_username)
            await app.services.courier.reply(platform, event.chat.chat_id,
                                             [Outgoing(text=text)], is_group=True)
    elif event.kind == "restricted":
        await chats.bot_added(platform.name, event.chat, actor_id, can_post=False)
    elif event.kind == "removed":
        await chats.bot_removed(platform.name, event.chat, actor_id)
    elif event.kind == "migrated" and event.new_chat_id:
        await chats.migrated(platform.name, event.chat.chat_id, event.new_chat_id)
    log.info("chat %s %s on %s", event.chat.chat_id, event.kind, platform.name)


def register(router: Router) -> None:
    router.command("lienket", link, aliases=("link",), role=Role.LEADER, where="group")
    router.chat_event(on_chat_event)
