"""Personal reminders, sent by the jobs leader every few minutes in the daytime: each due
household's linked residents get its missing steps with a guide button for each, "Tôi đã
làm xong" and "Nhờ tổ công nghệ số đến giúp" (numbered choices on Zalo), through the outbox."""

from __future__ import annotations

import logging

from bot.context import AppContext
from bot.core import Button
from bot.delivery.outbox import NewDelivery
from bot.services.conversations import Who
from bot.services.reminders import Nudge

log = logging.getLogger(__name__)


def _buttons(app: AppContext, nudge: Nudge) -> list[list[Button]]:
    locale, services = app.config.bot.locale, app.services
    guides = services.explanations.library.topics
    rows = []
    for key in nudge.missing[:4]:  # the campaign's step first; four keep the message short
        step = services.households.step(key)
        if step is not None and step.guide in guides:
            rows.append([Button(app.texts.label("reminders.guide", locale, step=step.label),
                                f"faq:t:{step.guide}")])
    rows.append([Button(app.texts.label("reminders.done", locale), f"me:d:{nudge.step_key}")])
    rows.append([Button(app.texts.label("reminders.visit", locale), f"rv:{nudge.step_key}")])
    return rows


async def send_personal_reminders(app: AppContext) -> int:
    """Plan and queue the due reminders; nothing at night. Returns messages queued."""
    if not app.config.reminders.enabled:
        return 0
    services = app.services
    if services.outbox.quiet_until(app.clock.now()) is not None:
        return 0
    await services.reminders.plan()
    items = []
    for nudge in await services.reminders.take_due():
        steps = [s for s in (services.households.step(k) for k in nudge.missing) if s]
        text = app.texts.render("reminders/personal", app.config.bot.locale, nudge=nudge,
                                steps=steps)
        buttons = _buttons(app, nudge)
        for person in nudge.recipients:
            body, rows = text, buttons
            platform = app.platforms.get(person.platform)
            if platform is not None and not platform.capabilities.buttons:
                flat = [b for row in buttons for b in row]
                await services.conversations.save_menu(
                    Who(person.platform, person.user_id, person.user_id),
                    [b.payload for b in flat])
                body += "\n\n" + app.texts.render("core/numbered_menu", app.config.bot.locale,
                                                  labels=[b.label for b in flat])
                rows = []
            items.append(NewDelivery(
                kind="personal", ref_id=nudge.reminder_id,
                dedupe=f"pr:{nudge.reminder_id}:{person.platform}:{person.user_id}",
                platform=person.platform, chat_id=person.user_id, text=body, is_group=False,
                ward_id=nudge.ward_id, group_id=nudge.group_id, buttons=rows, priority=6,
            ))
    queued = await services.outbox.enqueue(items)
    if queued:
        log.info("personal reminders: %d messages queued", queued)
    return queued
