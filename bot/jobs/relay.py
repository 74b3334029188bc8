"""The relay job: a relay person who has not confirmed within `[relay] remind_after_hours`
is reminded once; as long again after that, the sender is told which groups still wait.
Never in quiet hours: the job waits for the morning."""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import timedelta

from bot.context import AppContext
from bot.services.relay import TaskView

log = logging.getLogger(__name__)


async def tick(app: AppContext) -> int:
    """One pass; returns how many reminders and sender messages were queued."""
    now = app.clock.now()
    if app.services.outbox.quiet_until(now) is not None:
        return 0
    after = timedelta(hours=app.config.relay.remind_after_hours)
    relays = app.services.relays
    delivery = app.services.relay_delivery
    done = 0
    for task in await relays.to_remind(now - after):
        await delivery.remind(task)
        done += 1
    late: dict[tuple[str, int], list[TaskView]] = defaultdict(list)
    for task in await relays.to_escalate(now - after):
        late[(task.kind, task.ref_id)].append(task)
    for (kind, ref_id), tasks in late.items():
        done += await _tell_sender(app, kind, ref_id, tasks)
    return done


async def _tell_sender(app: AppContext, kind: str, ref_id: int, tasks: list[TaskView]) -> int:
    """The sender (else the ward's coordinators) learns which groups still wait."""
    services = app.services
    recipients: list[tuple[str, str]] = []
    author_id = tasks[0].author_member_id
    author = await services.access.identity_of(author_id) if author_id else None
    if author is not None:
        recipients.append((author.platform, author.user_id))
    else:
        recipients = await services.access.coordinators(tasks[0].ward_id)
    summary_text = ""
    if kind in ("notice", "poll"):  # one message; reminders repeat, so no totals
        summary = await services.relays.summary(
            kind, ref_id, await services.relays.source_groups(kind, ref_id))
        summary_text = services.relay_delivery.summary_text(summary)
    locale = app.config.bot.locale
    title = app.texts.label(f"relay.{kind}_title", locale, id=ref_id) \
        if app.texts.has_label(f"relay.{kind}_title", locale) else f"#{ref_id}"
    text = app.texts.render(
        "relay/late", locale, title=title,
        waiting=sorted(t.group_code for t in tasks),
        summary_text=summary_text,
    )
    first = min(t.id for t in tasks)
    for platform, user_id in recipients:
        await services.relay_delivery.tell(platform, user_id, text,
                                           f"relay_late:{kind}:{ref_id}:{first}:{platform}:{user_id}")
    log.info("relay: %s %s still waits in %d groups; told %d people", kind, ref_id,
             len(tasks), len(recipients))
    return len(recipients)
