"""The contest's group posts, by the jobs leader: the announcement when it opens, the
standing at half time, the final result at the end (also to the ward's coordinators). Group
posts wait for the morning in quiet hours (the outbox holds them)."""

from __future__ import annotations

import logging

from bot.context import AppContext
from bot.delivery.outbox import NewDelivery

log = logging.getLogger(__name__)


async def post_contest_news(app: AppContext) -> int:
    """Queue every due post; returns messages queued."""
    services = app.services
    items: list[NewDelivery] = []
    for info, kind in await services.contests.due_posts():
        standings = await services.contests.standings(info.id)
        text = app.texts.render(f"contests/post_{kind}", app.config.bot.locale, s=standings)
        chats = await services.chats.active_by_group(info.ward_id)
        groups = info.group_ids or tuple(chats)
        for group_id in groups:
            for chat in chats.get(group_id, []):
                items.append(NewDelivery(
                    kind="contest", ref_id=info.id, platform=chat.platform, chat_id=chat.chat_id,
                    dedupe=f"contest:{info.id}:{kind}:{chat.platform}:{chat.chat_id}", text=text,
                    ward_id=info.ward_id, group_id=group_id,
                ))
        if kind == "final":
            items += [
                NewDelivery(kind="contest", ref_id=info.id, platform=platform, chat_id=user_id,
                            dedupe=f"contest:{info.id}:final:{platform}:{user_id}", text=text,
                            is_group=False, ward_id=info.ward_id, priority=3)
                for platform, user_id in await services.access.coordinators(info.ward_id)
            ]
        log.info("contest %s: %s queued", info.id, kind)
    return await services.outbox.enqueue(items)
