"""The series job: at each slot of a series' rhythm, its next guide goes to its groups.

Run every minute by the jobs leader. `Series.due` finds the slots that have come (never in
quiet hours); this queues each guide through the outbox, one row per group chat, records the
posts so reads can be counted per group, and only then marks the guide sent. The outbox keys
name the series, the guide's place and the chat, so a run repeated after a crash (or by a
second instance) queues nothing twice, and a crash before the mark loses nothing.
"""

from __future__ import annotations

import logging

from bot.context import AppContext
from bot.delivery.outbox import NewDelivery
from bot.services.guides import PostTarget
from bot.services.series import SeriesRun
from handlers.guide_posts import guide_body, post

log = logging.getLogger(__name__)


async def post_due(app: AppContext) -> int:
    """Post every series guide whose slot has come; returns how many guides went out."""
    done = 0
    for run in await app.services.series.due():
        queued = await post_run(app, run)
        if await app.services.series.mark_sent(run) and queued:
            done += 1
    return done


async def post_run(app: AppContext, run: SeriesRun) -> int:
    """Queue one series guide to each chat of the series' groups; returns chats queued."""
    services = app.services
    s = run.series
    topic = services.explanations.topic(run.topic_key)
    if topic is None:
        log.warning("series %s: guide %s is no longer in the library", s.id, run.topic_key)
        return 0
    locale = app.config.bot.locale
    body = await guide_body(app, topic, s.ward_id, locale)
    header = {"title": s.title, "index": run.index + 1, "total": len(s.topic_keys)}
    chats = await services.chats.active_by_group(s.ward_id)
    items: list[NewDelivery] = []
    posts: list[PostTarget] = []
    for group_id in s.group_ids:
        for chat in chats.get(group_id, []):
            dedupe = f"series:{s.id}:{run.index}:{chat.platform}:{chat.chat_id}"
            text, buttons = post(app, body, chat.platform, group_id, locale, series=header)
            items.append(NewDelivery(
                kind="guide", ref_id=s.id, dedupe=dedupe, platform=chat.platform,
                chat_id=chat.chat_id, text=text, ward_id=s.ward_id, group_id=group_id,
                buttons=buttons))
            posts.append(PostTarget(group_id, chat.platform, chat.chat_id, dedupe))
    await services.guides.record_posts(s.ward_id, topic.key, "series", s.id, posts)
    await services.outbox.enqueue(items)
    log.info("series %s: guide %d/%d (%s) queued to %d chats", s.id, run.index + 1,
             len(s.topic_keys), topic.key, len(items))
    return len(items)
