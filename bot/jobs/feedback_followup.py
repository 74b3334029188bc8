"""Closing the loop on feedback: a few days after a ticket is resolved, its reporter is
asked "Việc này đã được khắc phục chưa?" in a private chat, with ✅ Đã xong / ❌ Chưa xong
(numbered choices on Zalo). The question leaves through the outbox, outside quiet hours."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

from bot.context import AppContext
from bot.core import Button
from bot.delivery.outbox import NewDelivery
from bot.payloads import Payload
from bot.services.conversations import Who, numbered_menu

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FixedAnswer(Payload, prefix="fbq"):
    """The reporter's answer to "is ticket `number` fixed?": `y` or `n`."""

    number: int
    answer: Literal["y", "n"]


@dataclass(frozen=True)
class Rating(Payload, prefix="fbr"):
    """A satisfaction tap on ticket `number`, 1 to 5."""

    number: int
    score: int

    def __post_init__(self) -> None:
        if not 1 <= self.score <= 5:
            raise ValueError("a score is 1 to 5")


def fixed_buttons(app: AppContext, number: int) -> list[list[Button]]:
    """The two answers to "is it fixed?" (also shown under a resolved ticket in /theodoi)."""
    locale = app.config.bot.locale
    return [[Button(app.texts.label("feedback.fixed_yes", locale),
                    FixedAnswer(number, "y").pack()),
             Button(app.texts.label("feedback.fixed_no", locale),
                    FixedAnswer(number, "n").pack())]]


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
            who = Who(reporter.platform, reporter.user_id, reporter.user_id)
            text = await numbered_menu(services.conversations, app.texts,
                                       app.config.bot.locale, who, text, buttons)
            buttons = []
        queued += await services.outbox.enqueue([NewDelivery(
            kind="fixedq", ref_id=number, dedupe=f"fixedq:{number}",
            platform=reporter.platform, chat_id=reporter.user_id, text=text, is_group=False,
            ward_id=question.ward_id, buttons=buttons, priority=4, not_before=not_before,
        )])
    if queued:
        log.info("asked %d reporters whether their problem is fixed", queued)
    return queued
