"""The one way out: everything the bot says leaves through here.

- `reply`: the answer to the person who just wrote (and the apology when something broke).
  It goes first: it takes the token's very next slot, ahead of any outbox row, and is sent
  by this process at once when this process is the token's sender. A 429 rests the chat (or
  the whole token) and the message is sent again after `retry_after`; a reply is never
  dropped: when the wait would hold the conversation up for more than `max_wait` seconds,
  or when another instance is the token's sender, the rest of the reply becomes outbox rows
  of the highest priority, sent by whoever sends for the token.
- `tell`: a message to someone else (a ticket's news, a report, a nudge): a durable outbox
  row, sent after replies and before bulk, retried, never lost in a restart.
- `answer_button`: the little acknowledgement of a button press, straight to the platform
  (it is not a chat message and must come within seconds or the button keeps spinning).
"""

from __future__ import annotations

import base64
import logging
import secrets
from collections.abc import Sequence
from datetime import timedelta

from bot.core import Button, DeliveryError, Outgoing, Platform, Sent
from bot.delivery.outbox import NewDelivery, Outbox
from bot.delivery.pacer import Priority
from bot.metrics import Metrics

log = logging.getLogger(__name__)

Buttons = Sequence[Sequence[Button]]


class _Later(Exception):
    """This piece cannot go within the wait a conversation may bear: hand it over."""

    def __init__(self, delay: float) -> None:
        super().__init__(f"later: {delay:.1f} s")
        self.delay = delay


class Courier:
    def __init__(self, outbox: Outbox, metrics: Metrics, *, max_wait: float = 10.0,
                 transient_tries: int = 3) -> None:
        self._outbox = outbox
        self._metrics = metrics
        self._clock = outbox.clock
        self._sleeper = outbox.sleeper
        self._lanes = outbox.lanes
        self._leases = outbox.leases
        self.max_wait = max_wait
        self._transient_tries = transient_tries

    async def reply(
        self, target: Platform, chat_id: str, pieces: Sequence[Outgoing], *, is_group: bool,
        edit_of: str = "",
    ) -> Sent:
        """Send the pieces of one answer in order; returns the last one sent (its id is
        empty when it was handed to the outbox)."""
        platform = target.name
        if not self._leases.holds(platform):
            return await self._hand_over(platform, chat_id, pieces, is_group, edit_of, 0.0)
        sent = Sent(chat_id, "")
        for index, piece in enumerate(pieces):
            try:
                sent = await self._send_now(target, sent.chat_id or chat_id, piece, is_group,
                                            edit_of if len(pieces) == 1 else "")
            except _Later as later:
                return await self._hand_over(platform, sent.chat_id or chat_id,
                                             pieces[index:], is_group, edit_of, later.delay)
        return sent

    async def tell(
        self, platform: str, chat_id: str, text: str, buttons: Buttons = (), *,
        is_group: bool = False, kind: str = "person", ref_id: int | None = None,
        dedupe: str = "", ward_id: int | None = None, group_id: int | None = None,
    ) -> None:
        """A message to someone other than the person who wrote: a durable outbox row,
        sent after replies and before bulk. `dedupe` (when given) makes repeating the call
        harmless."""
        await self._outbox.enqueue([NewDelivery(
            kind=kind, ref_id=ref_id, dedupe=dedupe or f"{kind}:{secrets.token_hex(10)}",
            platform=platform, chat_id=chat_id, text=text, is_group=is_group,
            ward_id=ward_id, group_id=group_id, buttons=buttons, priority=Priority.PERSON,
        )])

    async def answer_button(self, platform: Platform, callback_id: str, text: str = "") -> None:
        await platform.answer_button(callback_id, text)

    async def _send_now(
        self, target: Platform, chat_id: str, piece: Outgoing, is_group: bool, edit_of: str,
    ) -> Sent:
        name = target.name
        bytes_inside = piece.attachment is not None and piece.attachment.data is not None
        # A file made on the spot is big to hand over: wait for it longer instead.
        deadline = self._sleeper.monotonic() + self.max_wait * (30 if bytes_inside else 1)
        transient = 0
        while True:
            rest = self._lanes.resting(name, chat_id)
            if rest > 0:
                if self._sleeper.monotonic() + rest > deadline:
                    raise _Later(rest)
                await self._sleeper.sleep(rest)
            await self._lanes.pacer(name).acquire(Priority.REPLY)
            if not self._leases.holds(name):
                raise _Later(0.0)
            self._lanes.sent(name, chat_id, is_group)
            try:
                if edit_of and target.capabilities.edit:
                    return await target.edit(chat_id, edit_of, piece)
                return await target.send(chat_id, piece)
            except DeliveryError as exc:
                self._metrics.deliveries.labels(name, exc.problem).inc()
                if exc.problem == "retry_after":
                    wait = max(exc.retry_after, 1.0)
                    self._lanes.refused(name, chat_id, is_group, wait)
                    log.info("delivery: reply to %s refused (429), again in %.0f s",
                             chat_id, wait)
                    if self._sleeper.monotonic() + wait > deadline:
                        raise _Later(wait) from exc
                elif exc.problem == "migrated" and exc.new_chat_id:
                    await self._outbox.hooks.moved(name, chat_id, exc.new_chat_id)
                    self._lanes.moved(name, chat_id, exc.new_chat_id)
                    chat_id = exc.new_chat_id
                elif exc.problem == "transient":
                    transient += 1
                    if transient >= self._transient_tries:
                        raise _Later(2.0 ** transient) from exc
                    await self._sleeper.sleep(0.5 * 2 ** transient)
                else:
                    if exc.problem == "gone" and is_group:
                        await self._outbox.hooks.gone(name, chat_id)
                    raise

    async def _hand_over(
        self, platform: str, chat_id: str, pieces: Sequence[Outgoing], is_group: bool,
        edit_of: str, delay: float,
    ) -> Sent:
        """The rest of a reply as outbox rows of the highest priority, in order."""
        when = self._clock.now() + timedelta(seconds=delay)
        key = secrets.token_hex(8)
        items = []
        for n, piece in enumerate(pieces):
            attachment: dict[str, str] = {}
            if piece.attachment is not None:
                a = piece.attachment
                attachment = {"kind": a.kind, "filename": a.filename, "platform": platform,
                              "file_id": a.file_id, "mime_type": a.mime_type}
                if a.data is not None:
                    attachment["data_b64"] = base64.b64encode(a.data).decode("ascii")
            items.append(NewDelivery(
                kind="reply", ref_id=None, dedupe=f"reply:{key}:{n}", platform=platform,
                chat_id=chat_id, text=piece.text, is_group=is_group, buttons=piece.buttons,
                attachment=attachment, pin=piece.pin, priority=Priority.REPLY,
                not_before=when, edit_of=edit_of if len(pieces) == 1 else "",
            ))
        await self._outbox.enqueue(items)
        self._metrics.deliveries.labels(platform, "handed_over").inc()
        return Sent(chat_id, "")
