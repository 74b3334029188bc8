"""People chatting with the bot through the fake Telegram Bot API server: what they send,
the buttons they press, and what they read (tags dropped, entities decoded)."""

from __future__ import annotations

import asyncio
import html
import re
from collections.abc import Callable
from typing import Any

from bot.app import BotApp
from bot.clock import FrozenClock
from tests.fake_telegram import SEND_METHODS, FakeTelegram


def plain(message: dict[str, Any]) -> str:
    """The text as the person reads it: tags dropped, entities decoded."""
    raw = str(message.get("text") or message.get("caption") or "")
    return html.unescape(re.sub(r"<[^>]+>", "", raw))


def labels(message: dict[str, Any]) -> list[str]:
    rows = (message.get("reply_markup") or {}).get("inline_keyboard", [])
    return [b["text"] for row in rows for b in row]


async def until(condition: Callable[[], bool], what: str) -> None:
    for _ in range(250):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


class Ward:
    """The people of one ward, chatting with the bot through the fake server."""

    def __init__(self, tg: FakeTelegram, app: BotApp, clock: FrozenClock) -> None:
        self.tg = tg
        self.app = app
        self.clock = clock

    def inbox(self, user: int) -> list[str]:
        """Everything the bot sent to a person's private chat, as it reads now (after edits)."""
        return [plain(m) for m in self.tg.sent_to(user)]

    def everything(self, user: int) -> str:
        edits = [plain(c.params) for c in self.tg.calls_to("editMessageText")
                 if str(c.params.get("chat_id")) == str(user)]
        return "\n".join(self.inbox(user) + edits)

    async def say(self, user: int, text: str, *, count: int = 1, name: str = "An") -> list[str]:
        before = len(self.tg.sent_to(user))
        self.tg.message(user, user, text, first_name=name)
        sent = await self.tg.wait_sent(user, before + count)
        return [plain(m) for m in sent[before:]]

    async def send_photo(self, user: int) -> str:
        before = len(self.tg.sent_to(user))
        self.tg.photo_message(user, user, b"\xff\xd8\xff fake jpeg")
        sent = await self.tg.wait_sent(user, before + 1)
        return plain(sent[-1])

    async def press(self, user: int, label: str, *, edit: bool = False) -> str:
        """Press the newest button with this label in a person's chat. Returns the message
        the bot edited (edit=True) or the next message it sent to that person."""
        found = next(((m, k) for m, k in reversed(self.keyboards(user))
                      if label in labels({"reply_markup": k})), None)
        if found is None:
            raise AssertionError(f"no button {label!r} for {user}: {self.inbox(user)[-3:]}")
        message_id, markup = found
        rows = markup["inline_keyboard"]
        payload = next(b["callback_data"] for row in rows for b in row if b["text"] == label)
        edits = len(self.tg.calls_to("editMessageText"))
        before = len(self.tg.sent_to(user))
        self.tg.callback(user, user, message_id, payload)
        if edit:
            await until(lambda: len(self.tg.calls_to("editMessageText")) > edits, "an edit")
            return plain(self.tg.calls_to("editMessageText")[-1].params)
        sent = await self.tg.wait_sent(user, before + 1)
        return plain(sent[before])

    def keyboards(self, user: int) -> list[tuple[int, dict[str, Any]]]:
        """(message id, buttons) as the person sees them now, oldest first: a message the
        bot edited shows its latest buttons, and counts as new from the edit on."""
        shown: dict[int, dict[str, Any]] = {}
        for call in self.tg.calls:
            if str(call.params.get("chat_id")) != str(user):
                continue
            if call.method == "editMessageText":
                message_id = int(call.params["message_id"])
            elif call.method in SEND_METHODS and "_result" in call.params:
                message_id = int(call.params["_result"]["message_id"])
            else:
                continue
            shown.pop(message_id, None)
            shown[message_id] = call.params.get("reply_markup") or {}
        return list(shown.items())

    async def told(self, user: int, count: int) -> list[str]:
        """Wait until a person has received `count` messages in all; return them."""
        return [plain(m) for m in await self.tg.wait_sent(user, count)]

    async def send_file(self, user: int, name: str, content: bytes, mime: str) -> str:
        before = len(self.tg.sent_to(user))
        self.tg.document_message(user, user, name, content, mime)
        sent = await self.tg.wait_sent(user, before + 1)
        return plain(sent[before])

    def file_sent(self, user: int, method: str) -> bytes:
        """The bytes of the newest photo or document the bot uploaded to a person."""
        field = "photo" if method == "sendPhoto" else "document"
        calls = [c for c in self.tg.calls_to(method) if str(c.params.get("chat_id")) == str(user)]
        assert calls, f"no {method} to {user}"
        return calls[-1].files[field].data
