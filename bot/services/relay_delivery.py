"""Relay, the sending side: a message for groups the bot cannot post to goes to each
group's relay person, as text he can forward as it is, then one line asking him to confirm.

Two outbox rows per task, in order: `relay` (the text to forward: plain, no buttons, the
ward's name and the date, at most 2,000 characters — Zalo's limit) and, once it is sent
(finished-callback), `relay_ask` (the instruction and "✅ Đã chuyển vào nhóm"; a numbered
choice on Zalo). Nothing goes at night: rows due in quiet hours wait for the morning.

A service (not bot/delivery/): it keeps the relay tasks' state through `Relays` and the
numbered choice through `Conversations`, and queues outbox rows like any other service.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Self

from bot.clock import Clock
from bot.core import Button, Platform
from bot.delivery.outbox import NewDelivery, Outbox
from bot.delivery.quiet import QuietHours
from bot.payloads import Payload
from bot.services.conversations import Conversations, Who, numbered_menu
from bot.services.relay import Reach, Relays, Summary, TaskView
from bot.texts import Texts, to_plain

log = logging.getLogger(__name__)

FORWARD_LIMIT = 2000  # Zalo's text limit: the forwarded text must fit one message anywhere
AllDelivered = Callable[[str, int], Awaitable[None]]


@dataclass(frozen=True)
class RelayPress(Payload, prefix="rl"):
    """`ok` + task: the relay person has forwarded it ("✅ Đã chuyển vào nhóm", drawn here);
    `s` + notice: how a notice went, group by group (under its report, drawn by
    bot/jobs/notices.py). Here, not in handlers/relay.py, since bot/ never imports handlers/."""

    action: Literal["ok", "s"]
    ref: int

    @classmethod
    def unpack(cls, payload: str) -> Self:
        # Reports sent before the codec carry "rl:s:notice:<id>"; their button promises the
        # status "at any time" (docs/zalo.md), so it still unpacks, as "rl:s:<id>".
        old = "rl:s:notice:"
        return super().unpack("rl:s:" + payload[len(old):] if payload.startswith(old)
                              else payload)


def confirm_payload(task_id: int) -> str:
    # "rl:ok:<task>", as before the codec: asks already queued for the morning, or
    # remembered as a numbered choice on Zalo, still work.
    return RelayPress("ok", task_id).pack()


class RelayDelivery:
    def __init__(self, relays: Relays, outbox: Outbox, texts: Texts,
                 conversations: Conversations, platforms: Mapping[str, Platform],
                 clock: Clock, quiet: QuietHours, locale: str) -> None:
        self._relays = relays
        self._outbox = outbox
        self._texts = texts
        self._conversations = conversations
        self._platforms = platforms
        self._clock = clock
        self._quiet = quiet
        self._locale = locale
        self._all_delivered: dict[str, AllDelivered] = {}

    def on_all_delivered(self, kind: str, callback: AllDelivered) -> None:
        """Call back when every relay text of one notice (…) has reached its person or
        failed to: the sender's report can then count waiting groups."""
        self._all_delivered[kind] = callback

    def install(self) -> None:
        self._outbox.on_finished("relay", lambda _kind, ref: self.text_finished(ref))

    # --- texts ------------------------------------------------------------------------
    def forward_text(self, *, ward_name: str, when: datetime, body: str) -> str:
        """The text to forward as it is: plain, signed with the ward and the date."""
        plain = to_plain(body).strip()
        text = self._texts.render("relay/forward", self._locale, ward_name=ward_name,
                                  when=when, body=plain)
        excess = len(to_plain(text)) - FORWARD_LIMIT
        if excess > 0:  # measured as read (entities decoded), cut with an ellipsis
            text = self._texts.render("relay/forward", self._locale, ward_name=ward_name,
                                      when=when, body=plain[:len(plain) - excess - 1] + "…")
        return text

    def summary_text(self, summary: Summary) -> str:
        return self._texts.render("relay/summary", self._locale, summary=summary)

    # --- sending ----------------------------------------------------------------------
    async def send(self, *, kind: str, ref_id: int, ward_id: int, ward_name: str,
                   author_member_id: int | None, reaches: Sequence[Reach], body: str,
                   when: datetime, wake: bool = True, run: str = "") -> list[TaskView]:
        """Give each group's relay person the text; returns the tasks (failed ones too).
        `run` tells apart the runs of a recurring message (a campaign's reminders)."""
        if not reaches:
            return []
        text = self.forward_text(ward_name=ward_name, when=when, body=body)
        tasks = await self._relays.create_tasks(
            kind=kind, ref_id=ref_id, ward_id=ward_id, author_member_id=author_member_id,
            reaches=reaches, text=text, run=run)
        for index, task in enumerate(tasks):  # his platform does not run here: now, not never
            if task.state == "queued" and task.platform not in self._platforms:
                tasks[index] = await self._relays.delivered(task.id, False) or task
        not_before = self._quiet.next_allowed(when)
        await self._outbox.enqueue(wake=wake, items=[
            NewDelivery(kind="relay", ref_id=t.id, dedupe=f"relay:{t.id}:text",
                        platform=t.platform, chat_id=t.user_id, text=t.text, is_group=False,
                        ward_id=ward_id, group_id=t.group_id, not_before=not_before)
            for t in tasks if t.state == "queued"
        ])
        if not any(t.state == "queued" for t in tasks):
            await self._tell_all_delivered(kind, ref_id)
        return tasks

    async def cancel(self, kind: str, ref_id: int) -> int:
        """Drop the relay texts of a cancelled message that have not gone yet."""
        cancelled = await self._relays.cancel(kind, ref_id)
        for task_id in cancelled:
            await self._outbox.cancel("relay", task_id)
        return len(cancelled)

    async def text_finished(self, task_id: int) -> None:
        """The text reached the relay person (or could not): ask him to confirm."""
        rows = await self._outbox.rows("relay", task_id)
        ok = bool(rows) and all(r.state == "sent" for r in rows)
        task = await self._relays.delivered(task_id, ok)
        if task is None:
            return
        if ok:
            await self._ask(task, "relay/ask", "ask")
        if not await self._relays.queued(task.kind, task.ref_id):
            await self._tell_all_delivered(task.kind, task.ref_id)

    async def remind(self, task: TaskView) -> None:
        """Once, after `remind_after_hours`: the same question again."""
        await self._ask(task, "relay/remind", "remind")

    async def _ask(self, task: TaskView, template: str, step: str) -> None:
        label = self._texts.label("relay.done", self._locale)
        text = self._texts.render(template, self._locale, task=task)
        buttons: tuple[tuple[Button, ...], ...] = ((Button(label, confirm_payload(task.id)),),)
        platform = self._platforms.get(task.platform)
        if platform is not None and not platform.capabilities.buttons:
            # No buttons (Zalo): a numbered choice, as the router does for replies.
            who = Who(task.platform, task.user_id, task.user_id)
            text = await numbered_menu(self._conversations, self._texts, self._locale, who,
                                       text, buttons)
            text = f"{text}\n{self._texts.label('relay.or_command', self._locale)}"
            buttons = ()
        await self._outbox.enqueue([NewDelivery(
            kind=f"relay_{step}", ref_id=task.id, dedupe=f"relay:{task.id}:{step}",
            platform=task.platform, chat_id=task.user_id, text=text, is_group=False,
            ward_id=task.ward_id, group_id=task.group_id, buttons=buttons,
            not_before=self._quiet.next_allowed(self._clock.now()),
        )])

    async def tell(self, platform: str, user_id: str, text: str, dedupe: str) -> None:
        """A message to the sender about his relays (which groups still wait)."""
        await self._outbox.enqueue([NewDelivery(
            kind="relay_late", ref_id=None, dedupe=dedupe, platform=platform,
            chat_id=user_id, text=text, is_group=False,
        )])

    async def _tell_all_delivered(self, kind: str, ref_id: int) -> None:
        callback = self._all_delivered.get(kind)
        if callback is None:
            return
        try:
            await callback(kind, ref_id)
        except Exception:
            log.exception("relay: all-delivered callback for %s %s failed", kind, ref_id)
