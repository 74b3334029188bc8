"""Personal reminders, sent by the jobs leader every few minutes in the daytime: each due
household's linked residents get its missing steps with a guide button for each, "Tôi đã
làm xong" and "Nhờ tổ công nghệ số đến giúp" (numbered choices on Zalo), through the outbox."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

from bot.context import AppContext
from bot.core import Button
from bot.delivery.outbox import NewDelivery
from bot.faq import FaqPress
from bot.payloads import Payload
from bot.services.conversations import Who, numbered_menu
from bot.services.reminders import Nudge

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DidIt(Payload, prefix="me"):
    """A resident says his household finished step `key` (handled in handlers/households.py)."""

    action: Literal["d"]
    key: str


@dataclass(frozen=True)
class AskVisit(Payload, prefix="rv"):
    """Under a personal reminder: ask the tech team to come and help with step `step`."""

    step: str = ""


def _buttons(app: AppContext, nudge: Nudge) -> list[list[Button]]:
    locale, services = app.config.bot.locale, app.services
    guides = services.explanations.library.topics
    rows = []
    for key in nudge.missing[:4]:  # the campaign's step first; four keep the message short
        step = services.households.step(key)
        if step is not None and step.guide in guides:
            rows.append([Button(app.texts.label("reminders.guide", locale, step=step.label),
                                FaqPress("t", step.guide).pack())])
    rows.append([Button(app.texts.label("reminders.done", locale),
                        DidIt("d", nudge.step_key).pack())])
    rows.append([Button(app.texts.label("reminders.visit", locale),
                        AskVisit(nudge.step_key[:32]).pack())])
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
                who = Who(person.platform, person.user_id, person.user_id)
                body = await numbered_menu(services.conversations, app.texts,
                                           app.config.bot.locale, who, text, buttons)
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
