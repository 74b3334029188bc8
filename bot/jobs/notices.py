"""What runs when the outbox has finished a notice (its chats, and the relay texts to the
people who forward it): its author gets the delivery report (how many chats got it, why the
others did not, and which groups were reached through a person or still wait), once, as an
outbox row."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from bot.core import Button, Platform
from bot.delivery.outbox import NewDelivery, Outbox
from bot.services.access import Access
from bot.services.notices import Notices
from bot.services.relay import Relays
from bot.services.relay_delivery import RelayDelivery, RelayPress
from bot.texts import Texts


@dataclass(frozen=True)
class NoticeJobs:
    notices: Notices
    access: Access
    outbox: Outbox
    texts: Texts
    locale: str
    relays: Relays
    relay_delivery: RelayDelivery
    platforms: Mapping[str, Platform]  # the running platforms: buttons only where they work
    remind_after_hours: float

    async def report(self, notice_id: int) -> bool:
        """Queue the delivery report for the notice's author; False if there is none to
        send (already reported, the author is gone, or relay texts still to deliver)."""
        if not await self.notices.all_sent(notice_id):
            return False
        finished = await self.notices.finish(notice_id)
        if finished is None:
            return False
        view, lines = finished
        author = await self.access.identity_of(view.author_member_id)
        if author is None:
            return False
        summary = await self.relays.summary("notice", notice_id, view.group_ids)
        relay = summary.relayed + summary.waiting > 0
        locale = author.locale or self.locale
        text = self.texts.render("notices/report", locale,
                                 notice=view, lines=lines,
                                 sent=sum(1 for line in lines if line.state == "sent"),
                                 relay_text=self.relay_delivery.summary_text(summary)
                                 if relay else "",
                                 remind_hours=f"{self.remind_after_hours:g}")
        platform = self.platforms.get(author.platform)
        buttons = [[Button(self.texts.label("relay.status", locale),
                           RelayPress("s", notice_id).pack())]] \
            if relay and platform is not None and platform.capabilities.buttons else []
        await self.outbox.enqueue([NewDelivery(
            kind="notice_report", ref_id=notice_id, platform=author.platform,
            chat_id=author.user_id, dedupe=f"nrep:{notice_id}:{author.platform}", text=text,
            is_group=False, priority=3, buttons=buttons,
        )])
        return True

    async def finished(self, kind: str, notice_id: int) -> None:
        """The outbox's finished-callback for kind "notice" (and the relay's all-delivered
        one: whichever comes last sends the report)."""
        await self.report(notice_id)
