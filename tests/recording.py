"""A platform that records what the bot says, for tests of the router and handlers."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from bot.core import (
    Attachment,
    Capabilities,
    Chat,
    Incoming,
    Outgoing,
    Sender,
    Sent,
    parse_command_text,
)
from bot.texts import to_plain


@dataclass
class Said:
    chat_id: str
    message: Outgoing
    message_id: str
    edited: bool = False

    @property
    def text(self) -> str:
        return to_plain(self.message.text)

    @property
    def labels(self) -> list[str]:
        return [b.label for row in self.message.buttons for b in row]

    @property
    def payloads(self) -> list[str]:
        return [b.payload for row in self.message.buttons for b in row]


@dataclass
class RecordingPlatform:
    name: str = "telegram"
    capabilities: Capabilities = field(default_factory=Capabilities)
    said: list[Said] = field(default_factory=list)
    answered: list[tuple[str, str]] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def bot_username(self) -> str:
        return "cds_test_bot"

    async def send(self, chat_id: str, message: Outgoing) -> Sent:
        said = Said(chat_id, message, str(next(self._ids)))
        self.said.append(said)
        return Sent(chat_id, said.message_id)

    async def edit(self, chat_id: str, message_id: str, message: Outgoing) -> Sent:
        self.said.append(Said(chat_id, message, message_id, edited=True))
        return Sent(chat_id, message_id)

    async def answer_button(self, callback_id: str, text: str = "") -> None:
        self.answered.append((callback_id, text))

    async def download(self, attachment: Attachment) -> bytes:
        return attachment.data or b""

    def invite_link(self, code: str) -> str:
        return f"https://t.me/cds_test_bot?start={code}"

    @property
    def last(self) -> Said:
        assert self.said, "the bot said nothing"
        return self.said[-1]

    def texts(self) -> list[str]:
        return [s.text for s in self.said]


def message(
    text: str,
    *,
    user: str = "100",
    chat: str | None = None,
    group: bool = False,
    name: str = "Nguyễn Văn An",
    addressed: bool | None = None,
    platform: str = "telegram",
) -> Incoming:
    command, args, target = parse_command_text(text)
    foreign = bool(target and target != "cds_test_bot")
    return Incoming(
        platform=platform,
        chat=Chat(chat or (f"-{user}9" if group else user), "group" if group else "private"),
        sender=Sender(user_id=user, name=name),
        text=text,
        message_id="1",
        command=command,
        args=args,
        addressed=(not group or target == "cds_test_bot") if addressed is None else addressed,
        foreign_command=foreign,
    )


def press(
    payload: str, *, user: str = "100", chat: str | None = None, group: bool = False,
    message_id: str = "1", platform: str = "telegram",
) -> Incoming:
    return Incoming(
        platform=platform,
        chat=Chat(chat or (f"-{user}9" if group else user), "group" if group else "private"),
        sender=Sender(user_id=user, name="Nguyễn Văn An"),
        message_id=message_id,
        payload=payload,
        callback_id=f"cb-{payload}",
        addressed=True,
    )
