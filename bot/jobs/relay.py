"""The relay job: a relay person who has not confirmed within `[relay] remind_after_hours`
is reminded once; as long again after that, the sender is told which groups still wait.
Never in quiet hours: the job waits for the morning."""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import timedelta

from bot.clock import Clock
from bot.delivery.outbox import Outbox
from bot.services.access import Access
from bot.services.relay import Relays, TaskView
from bot.services.relay_delivery import RelayDelivery
from bot.texts import Texts

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RelayJobs:
    relays: Relays
    relay_delivery: RelayDelivery
    access: Access
    outbox: Outbox
    texts: Texts
    clock: Clock
    locale: str
    remind_after_hours: float

    async def tick(self) -> int:
        """One pass; returns how many reminders and sender messages were queued."""
        now = self.clock.now()
        if self.outbox.quiet_until(now) is not None:
            return 0
        after = timedelta(hours=self.remind_after_hours)
        done = 0
        for task in await self.relays.to_remind(now - after):
            await self.relay_delivery.remind(task)
            done += 1
        late: dict[tuple[str, int], list[TaskView]] = defaultdict(list)
        for task in await self.relays.to_escalate(now - after):
            late[(task.kind, task.ref_id)].append(task)
        for (kind, ref_id), tasks in late.items():
            done += await self._tell_sender(kind, ref_id, tasks)
        return done

    async def _tell_sender(self, kind: str, ref_id: int, tasks: list[TaskView]) -> int:
        """The sender (else the ward's coordinators) learns which groups still wait."""
        recipients: list[tuple[str, str]] = []
        author_id = tasks[0].author_member_id
        author = await self.access.identity_of(author_id) if author_id else None
        if author is not None:
            recipients.append((author.platform, author.user_id))
        else:
            recipients = await self.access.coordinators(tasks[0].ward_id)
        summary_text = ""
        if kind in ("notice", "poll"):  # one message; reminders repeat, so no totals
            summary = await self.relays.summary(
                kind, ref_id, await self.relays.source_groups(kind, ref_id))
            summary_text = self.relay_delivery.summary_text(summary)
        locale = self.locale
        title = self.texts.label(f"relay.{kind}_title", locale, id=ref_id) \
            if self.texts.has_label(f"relay.{kind}_title", locale) else f"#{ref_id}"
        text = self.texts.render(
            "relay/late", locale, title=title,
            waiting=sorted(t.group_code for t in tasks),
            summary_text=summary_text,
        )
        first = min(t.id for t in tasks)
        for platform, user_id in recipients:
            await self.relay_delivery.tell(
                platform, user_id, text, f"relay_late:{kind}:{ref_id}:{first}:{platform}:{user_id}")
        log.info("relay: %s %s still waits in %d groups; told %d people", kind, ref_id,
                 len(tasks), len(recipients))
        return len(recipients)
