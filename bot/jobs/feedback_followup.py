"""Closing the loop on feedback: a few days after a ticket is resolved, its reporter is
asked "Việc này đã được khắc phục chưa?" in a private chat, with ✅ Đã xong / ❌ Chưa xong
(numbered choices on Zalo). The question leaves through the outbox, outside quiet hours."""

from __future__ import annotations

import logging

from bot.context import AppContext
from bot.core import Button
from bot.delivery.outbox import NewDelivery
from bot.services.conversations import Who

log = logging.getLogger(__name__)


def fixed_buttons(app: AppContext, number: int) -> list[list[Button]]:
    """The two answers to "is it fixed?" (also shown under a resolved ticket in /theodoi)."""
    locale = app.config.bot.locale
    return [[Button(app.texts.label("feedback.fixed_yes", locale), f"fbq:{number}:y"),
             Button(app.texts.label("feedback.fixed_no", locale), f"fbq:{number}:n")]]


async def ask_if_fixed(app: AppContext) -> int:
    """Queue the question for every ticket that is due; returns how many were queued."""
    services = app.services
    now = app.clock.now()
    not_before = app.services.outbox.quiet_until(now) or now  # never wake anyone at night
    queued = 0
    for question in await services.feedback.fixed_questions_due():
        reporter, number = question.reporter, question.ticket.number
        text = app.texts.render("feedback/ask_fixed", app.config.bot.locale, t=question.ticket)
        buttons = fixed_buttons(app, number)
        platform = app.platforms.get(reporter.platform)
        if platform is not None and not platform.capabilities.buttons:
            # Zalo: the answers become "1." / "2."; the menu is remembered for the reply.
            flat = [b for row in buttons for b in row]
            who = Who(reporter.platform, reporter.user_id, reporter.user_id)
            await services.conversations.save_menu(who, [b.payload for b in flat])
            text += "\n\n" + app.texts.render("core/numbered_menu", app.config.bot.locale,
                                              labels=[b.label for b in flat])
            buttons = []
        queued += await services.outbox.enqueue([NewDelivery(
            kind="fixedq", ref_id=number, dedupe=f"fixedq:{number}",
            platform=reporter.platform, chat_id=reporter.user_id, text=text, is_group=False,
            ward_id=question.ward_id, buttons=buttons, priority=4, not_before=not_before,
        )])
    if queued:
        log.info("asked %d reporters whether their problem is fixed", queued)
    return queued
