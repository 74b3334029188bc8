"""What the scheduler does for feedback: nudge whoever holds each overdue ticket (or the
ward's staff when nobody does), as outbox rows to their private chats."""

from __future__ import annotations

from dataclasses import dataclass

from bot.clock import Clock
from bot.delivery.outbox import NewDelivery, Outbox
from bot.services.feedback import Feedbacks
from bot.texts import Texts


@dataclass(frozen=True)
class FeedbackJobs:
    feedback: Feedbacks
    outbox: Outbox
    texts: Texts
    clock: Clock
    locale: str

    async def nudge_overdue(self) -> int:
        """Queue one nudge per person per overdue ticket; returns nudges queued."""
        stamp = self.clock.now().strftime("%Y%m%d%H%M")
        items = []
        for nudge in await self.feedback.overdue_nudges():
            text = self.texts.render("feedback/nudge", self.locale, t=nudge.ticket)
            items += [
                NewDelivery(kind="nudge", ref_id=nudge.ticket.number, platform=person.platform,
                            chat_id=person.user_id, text=text, is_group=False, priority=3,
                            dedupe=f"nudge:{nudge.ticket.number}:{stamp}:{person.platform}:"
                                   f"{person.user_id}")
                for person in nudge.recipients
            ]
        await self.outbox.enqueue(items)
        return len(items)
