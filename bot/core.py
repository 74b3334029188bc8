"""Platform-neutral messages: what handlers read (`Incoming`) and write (`Outgoing`).

Handlers never see python-telegram-bot or Zalo types; each adapter in `bot/platforms/`
translates to and from these, and declares what it can do in `Capabilities`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal, Protocol

ChatKind = Literal["private", "group"]


class Role(StrEnum):
    """Roles in rising order of power; each may do what the ones below it may."""

    GUEST = "guest"
    RESIDENT = "resident"
    HELPER = "helper"
    LEADER = "leader"
    COORDINATOR = "coordinator"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return _RANKS[self]

    def __ge__(self, other: object) -> bool:
        if not isinstance(other, Role):
            return NotImplemented
        return self.rank >= other.rank

    def __gt__(self, other: object) -> bool:
        if not isinstance(other, Role):
            return NotImplemented
        return self.rank > other.rank

    def __le__(self, other: object) -> bool:
        if not isinstance(other, Role):
            return NotImplemented
        return self.rank <= other.rank

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Role):
            return NotImplemented
        return self.rank < other.rank


_RANKS = {role: rank for rank, role in enumerate(Role)}

# Roles that are granted per residential group rather than for the whole ward.
GROUP_ROLES = frozenset({Role.RESIDENT, Role.HELPER, Role.LEADER})


@dataclass(frozen=True)
class Button:
    label: str
    payload: str
    url: str = ""  # a link button (Telegram deep link); platforms without buttons skip it


@dataclass(frozen=True)
class Attachment:
    """A file going out (`data`) or coming in (`file_id`, fetched through the platform)."""

    kind: Literal["photo", "document"]
    filename: str = ""
    data: bytes | None = None
    mime_type: str = ""
    file_id: str = ""
    size: int = 0


@dataclass(frozen=True)
class Outgoing:
    """A message to show. `text` is the small HTML subset Telegram accepts."""

    text: str
    buttons: tuple[tuple[Button, ...], ...] = ()
    attachment: Attachment | None = None
    pin: bool = False


@dataclass(frozen=True)
class Sender:
    user_id: str
    name: str = ""
    username: str = ""
    locale: str = ""


@dataclass(frozen=True)
class Chat:
    chat_id: str
    kind: ChatKind
    title: str = ""


@dataclass(frozen=True)
class Incoming:
    """One thing a person did: a message, a command or a button press."""

    platform: str
    chat: Chat
    sender: Sender
    text: str = ""
    message_id: str = ""
    command: str | None = None
    args: tuple[str, ...] = ()
    payload: str | None = None
    callback_id: str | None = None
    attachments: tuple[Attachment, ...] = ()
    addressed: bool = False
    foreign_command: bool = False
    reply_to: str = ""  # the bot's own message this one answers, if any

    @property
    def args_text(self) -> str:
        return " ".join(self.args)

    @property
    def is_private(self) -> bool:
        return self.chat.kind == "private"


ChatEventKind = Literal["added", "removed", "migrated", "restricted"]


@dataclass(frozen=True)
class ChatEvent:
    """The bot's own membership in a group chat changed."""

    platform: str
    chat: Chat
    kind: ChatEventKind
    actor: Sender | None = None
    new_chat_id: str | None = None
    can_post: bool = True


@dataclass(frozen=True)
class Capabilities:
    buttons: bool = True
    edit: bool = True
    documents: bool = True
    photos: bool = True
    polls: bool = False
    pin: bool = False
    max_text: int = 4096
    max_button_payload: int = 64
    markup: Literal["html", "plain", "terminal"] = "html"


DeliveryProblem = Literal["retry_after", "gone", "migrated", "transient", "rejected"]


class DeliveryError(Exception):
    """A platform refused a message, said in the words the outbox acts on: wait
    (`retry_after` seconds), `gone` (bot removed or blocked, chat deleted: stop sending
    there), `migrated` (follow `new_chat_id`), `transient` (try again later), `rejected`
    (this message will never go: give up on it, keep the chat)."""

    def __init__(
        self, problem: DeliveryProblem, description: str = "", *,
        retry_after: float = 0.0, new_chat_id: str | None = None,
    ) -> None:
        super().__init__(f"{problem}: {description}")
        self.problem = problem
        self.description = description
        self.retry_after = retry_after
        self.new_chat_id = new_chat_id


@dataclass(frozen=True)
class Sent:
    chat_id: str
    message_id: str


class Platform(Protocol):
    """The one seam between the bot and a chat platform."""

    name: str
    capabilities: Capabilities

    @property
    def bot_username(self) -> str: ...

    async def send(self, chat_id: str, message: Outgoing) -> Sent: ...

    async def edit(self, chat_id: str, message_id: str, message: Outgoing) -> Sent: ...

    async def answer_button(self, callback_id: str, text: str = "") -> None: ...

    async def download(self, attachment: Attachment) -> bytes: ...

    def invite_link(self, code: str) -> str: ...


class RecentIds:
    """The last `size` message ids seen, to drop a platform's repeated deliveries."""

    def __init__(self, size: int = 5000) -> None:
        self._size = size
        self._ids: dict[str, None] = {}  # insertion-ordered: the oldest go first

    def seen_before(self, message_id: str) -> bool:
        """Remember this id; True if it was already there. Empty ids are never repeats."""
        if not message_id:
            return False
        if message_id in self._ids:
            return True
        self._ids[message_id] = None
        while len(self._ids) > self._size:
            self._ids.pop(next(iter(self._ids)))
        return False


def is_number(text: str) -> bool:
    """Plain digits that fit an id: "12" yes; "²", "①", "٣" or 3000000000 no (str.isdigit
    accepts the first ones and int() then fails; PostgreSQL refuses the last)."""
    return text.isascii() and text.isdigit() and len(text) <= 9


def parse_command_text(text: str) -> tuple[str | None, tuple[str, ...], str | None]:
    """`/lienket@cds_bot TDP05` → ("lienket", ("TDP05",), "cds_bot"), for platforms that
    send plain text without command entities."""
    stripped = text.strip()
    if not stripped.startswith("/") or len(stripped) < 2:
        return None, (), None
    word, *rest = stripped.split()
    name, _, target = word[1:].partition("@")
    if not name or not all(ch.isalnum() or ch == "_" for ch in name):
        return None, (), None
    return name.lower(), tuple(rest), target or None


class PlatformStartError(Exception):
    """A platform could not start. `reason`: `bad_token` (the platform refused the token:
    the operator must act, retrying cannot help) or `unreachable` (no network, the platform
    blocked or down: keep trying). `detail` never holds the token."""

    def __init__(self, platform: str, reason: str, detail: str = "") -> None:
        super().__init__(f"{platform}: {reason}")
        self.platform = platform
        self.reason = reason
        self.detail = detail

    @property
    def retry(self) -> bool:
        return self.reason != "bad_token"
