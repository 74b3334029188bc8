"""What runs when the outbox has finished a notice: its author gets the delivery report
(how many chats got it, and why the others did not), once, as an outbox row."""

from __future__ import annotations

from dataclasses import dataclass

from bot.delivery.outbox import NewDelivery, Outbox
from bot.services.access import Access
from bot.services.notices import Notices
from bot.texts import Texts


@dataclass(frozen=True)
class NoticeJobs:
    notices: Notices
    access: Access
    outbox: Outbox
    texts: Texts
    locale: str

    async def report(self, notice_id: int) -> bool:
        """Queue the delivery report for the notice's author; False if there is none to
        send (already reported, or the author is gone)."""
        finished = await self.notices.finish(notice_id)
        if finished is None:
            return False
        view, lines = finished
        author = await self.access.identity_of(view.author_member_id)
        if author is None:
            return False
        text = self.texts.render("notices/report", author.locale or self.locale,
                                 notice=view, lines=lines,
                                 sent=sum(1 for line in lines if line.state == "sent"))
        await self.outbox.enqueue([NewDelivery(
            kind="notice_report", ref_id=notice_id, platform=author.platform,
            chat_id=author.user_id, dedupe=f"nrep:{notice_id}:{author.platform}", text=text,
            is_group=False, priority=3,
        )])
        return True

    async def finished(self, kind: str, notice_id: int) -> None:
        """The outbox's finished-callback for kind "notice"."""
        await self.report(notice_id)
