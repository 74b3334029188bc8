"""What the scheduler does for polls: close the ones whose time has come and send the
results to the author, and to the groups when the author chose so (outbox rows)."""

from __future__ import annotations

from dataclasses import dataclass

from bot.delivery.outbox import NewDelivery, Outbox
from bot.services.access import Access
from bot.services.chats import Chats
from bot.services.polls import PollInfo, Polls
from bot.texts import Texts


@dataclass(frozen=True)
class PollJobs:
    polls: Polls
    access: Access
    chats: Chats
    outbox: Outbox
    texts: Texts
    locale: str

    async def publish(self, closed: PollInfo, *, tell_author: bool = True) -> None:
        """A poll closed: results to its author, and to its groups if chosen."""
        results = await self.polls.results(closed.id)
        text = self.texts.render("polls/results", self.locale, r=results, rows=results.shares())
        items = []
        if tell_author:
            author = await self.access.identity_of(closed.author_member_id)
            if author is not None:
                items.append(NewDelivery(
                    kind="poll_result", ref_id=closed.id, platform=author.platform,
                    chat_id=author.user_id, dedupe=f"pres:{closed.id}:{author.platform}:author",
                    text=text, is_group=False, priority=3))
        if closed.post_results:
            chats = await self.chats.active_by_group(closed.ward_id)
            items += [
                NewDelivery(kind="poll_result", ref_id=closed.id, platform=chat.platform,
                            chat_id=chat.chat_id, text=text, ward_id=closed.ward_id,
                            group_id=gid, dedupe=f"pres:{closed.id}:{chat.platform}:{chat.chat_id}")
                for gid in closed.group_ids for chat in chats.get(gid, [])
            ]
        await self.outbox.enqueue(items)

    async def close_due(self) -> int:
        """Close every poll past its closing time; returns how many were closed."""
        closed = 0
        for poll_id in await self.polls.due_to_close():
            found = await self.polls.close(poll_id)
            if found is not None:
                await self.publish(found)
                closed += 1
        return closed
