"""The terminal chat: the same router and handlers, printed to a terminal.

Buttons are shown numbered; typing the number presses the button. Photos and documents are
saved to a folder and their path printed, so an invite's QR code can be opened and looked at.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path

from bot.core import Attachment, Button, Capabilities, Outgoing, Sent
from bot.texts import to_terminal


class ConsolePlatform:
    name = "console"
    capabilities = Capabilities(
        buttons=True, edit=False, documents=True, photos=True, polls=False, pin=False,
        max_text=4096, max_button_payload=64, markup="terminal",
    )

    def __init__(self, write: Callable[[str], None], *, files_dir: Path, color: bool) -> None:
        self._write = write
        self._files_dir = files_dir
        self._color = color
        self._ids = itertools.count(1)
        self.buttons: list[Button] = []
        # The chat of the person at the keyboard; anything sent elsewhere is shown under a
        # header naming who it was for ("→ gửi tới …", "📣 [nhóm TDP01]").
        self.own_chat = ""
        self.recipients: dict[str, str] = {}
        self.unknown_recipient = "→ {chat_id}:"

    @property
    def bot_username(self) -> str:
        return "cds_bot"

    async def send(self, chat_id: str, message: Outgoing) -> Sent:
        message_id = str(next(self._ids))
        mine = not self.own_chat or chat_id == self.own_chat
        lines = [""]
        if not mine:
            lines.append(self.recipients.get(chat_id)
                         or self.unknown_recipient.format(chat_id=chat_id))
        text = to_terminal(message.text, color=self._color)
        lines.append(text if mine else "\n".join(f"   │ {line}" for line in text.splitlines()))
        if message.attachment is not None and message.attachment.data is not None:
            path = self._save(message.attachment, message_id)
            lines.append(f"📎 {path}")
        if mine:
            # Only the newest message's buttons can be pressed: a number typed after a
            # question without buttons is an answer, not a press of an old menu.
            self.buttons = [b for row in message.buttons for b in row]
            lines.extend(f"  [{i}] {b.label}" for i, b in enumerate(self.buttons, start=1))
        elif message.buttons:
            labels = " · ".join(b.label for row in message.buttons for b in row)
            lines.append(f"   │ [{labels}]")
        self._write("\n".join(lines))
        return Sent(chat_id=chat_id, message_id=message_id)

    async def edit(self, chat_id: str, message_id: str, message: Outgoing) -> Sent:
        return await self.send(chat_id, message)

    async def answer_button(self, callback_id: str, text: str = "") -> None:
        if text:
            self._write(f"ℹ️  {text}")

    async def download(self, attachment: Attachment) -> bytes:
        # The terminal chat hands files over in memory; there is nothing to fetch.
        return attachment.data or b""

    def invite_link(self, code: str) -> str:
        return f"/start {code}"

    def press(self, number: int) -> Button | None:
        if 1 <= number <= len(self.buttons):
            return self.buttons[number - 1]
        return None

    def _save(self, attachment: Attachment, message_id: str) -> Path:
        self._files_dir.mkdir(parents=True, exist_ok=True)
        name = attachment.filename or f"file-{message_id}"
        path = self._files_dir / name
        assert attachment.data is not None
        path.write_bytes(attachment.data)
        return path
