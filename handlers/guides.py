"""Guides in the group chats: "📣 Gửi vào nhóm" under a guide, and the steps opened from a
group post.

Share: a leader or coordinator presses "📣 Gửi vào nhóm" under a guide; the notice flow
opens with the guide as its body (targets, pin, now or later, quiet hours, delivery report
are the notices'). A resident who taps "📝 Xem từng bước" in a group post (Telegram: a deep
link `/start g_<key>_<group>`) gets the steps in his private chat, counted as a read for the
group. Series (`/chuyende`) are in `handlers/series.py`.
"""

from __future__ import annotations

from dataclasses import replace

from bot.core import Role
from bot.router import Ctx, Router
from bot.services.guides import LINK_PREFIX, parse_link
from handlers import notices
from handlers.explanations import open_from_post
from handlers.guide_posts import guide_body
from handlers.targets import sending_ward


# --- share a guide --------------------------------------------------------------------------
async def share(ctx: Ctx) -> None:
    """`gsh:<key>`: the notice flow, with the guide as its body."""
    await ctx.answer_button()
    key = (ctx.incoming.payload or "").partition(":")[2]
    topic = ctx.app.services.explanations.topic(key)
    if topic is None or not ctx.incoming.is_private:
        await ctx.say("core/form_expired")
        return
    ward_id = await sending_ward(ctx)
    if ward_id is None:
        return
    body = await guide_body(ctx.app, topic, ward_id, ctx.locale)
    # The preview and its choices come as new messages under the guide, which stays as
    # it is (the notice flow edits the message whose button was pressed).
    ctx.incoming = replace(ctx.incoming, payload=None)
    await notices.open_with(ctx, {"ward_id": ward_id, "pin": False, "text": body.title,
                                  "guide": body.as_data()})


async def open_link(ctx: Ctx, payload: str) -> bool:
    """`/start g_<key>_<group>` from a group post: the steps here, a read for the group.
    False if the payload is not a guide link (an invite code, say)."""
    if not payload.startswith(LINK_PREFIX):
        return False
    found = parse_link(payload, set(ctx.app.services.explanations.library.topics))
    if found is None:  # a guide taken out of the library since it was posted
        await ctx.say("guides/gone")
        return True
    if not ctx.incoming.is_private:  # the steps never go into a group
        await ctx.reply(ctx.label("guides.steps_in_private", bot=ctx.platform.bot_username))
        return True
    topic = ctx.app.services.explanations.topic(found[0])
    assert topic is not None
    await open_from_post(ctx, topic, found[1], "link")
    return True


def register(router: Router) -> None:
    router.button("gsh", share, role=Role.LEADER)
