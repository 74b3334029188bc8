"""Zalo Bot Platform: a thin aiohttp client and the adapter behind our platform protocol.

The API is Telegram-like: `POST {api_base_url}{token}/{method}` with a JSON body, answered
`{"ok": true, "result": ...}` or `{"ok": false, "error_code": N, "description": "..."}`.
`getUpdates` long-polls and returns ONE update (not a list); a poll that ends without an
update is answered with error_code 408. Zalo shows no inline buttons, cannot edit messages,
sends photos only by URL and limits texts to 2,000 characters: the router turns button menus
into numbered lists (see `bot.router`), and this adapter splits long texts.

What Zalo's own error table and field reports say, and what this adapter does about it
(sources: docs/dev/zalo-api.md):
- 403 is "Internal server error": retried, never read as "the bot was removed"; a chat is
  given up only on evidence (a description saying so, or repeated 404s for that chat).
- 429 is "Quota exceeded" (the plan's monthly messages), not a per-second wait: bulk sends
  stop, their rows stay queued, the ward's staff are told once, and one send an hour probes
  whether the quota is back (`QuotaGuard`); an admin can also resume at once.
- In groups Zalo delivers only messages that pick the bot from the @ list or reply to it,
  so every group message is addressed to us; the mention shows the bot's display name.
- getUpdates has no offset: a consumed update may come back, so ids are remembered in the
  database (`SeenStore`) and polls keep a minimum interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import re
import time
import unicodedata
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any, Protocol

import aiohttp

from bot.clock import Clock, SystemClock
from bot.config import ZaloSection
from bot.core import (
    Attachment,
    Capabilities,
    Chat,
    ChatKind,
    DeliveryError,
    Incoming,
    Outgoing,
    RecentIds,
    Sender,
    Sent,
    parse_command_text,
)
from bot.texts import split_text, to_plain
from bot.zalo_state import QUOTA_FLAG

log = logging.getLogger(__name__)

TEXT_LIMIT = 2000
POLL_TIMEOUT = 30
NO_UPDATE = 408

OnIncoming = Callable[["ZaloPlatform", Incoming], Awaitable[None]]


class ZaloApiError(Exception):
    """An `ok: false` answer (or an HTTP failure) from the Zalo Bot API."""

    def __init__(self, method: str, error_code: int, description: str) -> None:
        super().__init__(f"zalo {method}: {error_code} {description}")
        self.method = method
        self.error_code = error_code
        self.description = description

    @property
    def transient(self) -> bool:
        """Worth retrying later: timeouts and server errors. Zalo's table names 403
        "Internal server error"; 429 is the used-up quota (see `QuotaGuard`)."""
        return self.error_code in (403, 408) or self.error_code >= 500


QUOTA_EXCEEDED = 429
# Words in a description that are evidence the chat is gone for the bot.
_GONE_WORDS = ("chat not found", "user not found", "group not found", "blocked",
               "not a member", "kicked", "removed", "left the group")
# A chat answered "404" this many times in a row, with no success between, is gone.
GONE_AFTER_404S = 3


def delivery_error(exc: ZaloApiError, *, repeated_404: int = 0) -> DeliveryError:
    """Zalo's answers in the outbox's words: wait, try later, stop sending there, give up."""
    if exc.error_code == QUOTA_EXCEEDED:
        return DeliveryError("paused", "quota exceeded",
                             retry_after=PROBE_EVERY.total_seconds())
    if any(w in exc.description.lower() for w in _GONE_WORDS):
        return DeliveryError("gone", exc.description)
    if exc.error_code == 404:
        if repeated_404 >= GONE_AFTER_404S:
            return DeliveryError("gone", f"{exc.description} ({repeated_404} times)")
        return DeliveryError("transient", exc.description)
    if exc.transient:
        return DeliveryError("transient", exc.description)
    return DeliveryError("rejected", exc.description)


class SeenStore(Protocol):
    """Message ids already handled (the database in production)."""

    async def seen_before(self, message_id: str) -> bool: ...


class MemorySeen:
    def __init__(self) -> None:
        self._ids = RecentIds()

    async def seen_before(self, message_id: str) -> bool:
        return self._ids.seen_before(message_id)


class FlagStore(Protocol):
    """Named platform flags that outlive a restart (the database in production)."""

    async def get(self, key: str) -> dict[str, Any] | None: ...

    async def set(self, key: str, value: dict[str, Any]) -> None: ...

    async def clear(self, key: str) -> bool: ...


class MemoryFlags:
    def __init__(self) -> None:
        self._flags: dict[str, dict[str, Any]] = {}

    async def get(self, key: str) -> dict[str, Any] | None:
        return self._flags.get(key)

    async def set(self, key: str, value: dict[str, Any]) -> None:
        self._flags[key] = dict(value)

    async def clear(self, key: str) -> bool:
        return self._flags.pop(key, None) is not None


PROBE_EVERY = timedelta(hours=1)
QuotaChanged = Callable[[str, datetime], Awaitable[None]]  # ("exceeded"|"resumed", since)


class QuotaGuard:
    """The bot's monthly quota: once Zalo answers 429, nothing more is sent (bulk rows stay
    queued and come back when told to wait) except one probe an hour; the first success
    ends it, as does an admin's `resume`. Changes are told once through `on_change`."""

    def __init__(self, flags: FlagStore, clock: Clock,
                 on_change: QuotaChanged | None = None) -> None:
        self._flags = flags
        self._clock = clock
        self.on_change = on_change
        self.since: datetime | None = None
        self.next_probe: datetime | None = None

    async def load(self) -> None:
        value = await self._flags.get(QUOTA_FLAG)
        if value:
            self.since = datetime.fromisoformat(str(value["since"]))
            self.next_probe = datetime.fromisoformat(str(value["next_probe"]))

    @property
    def exceeded(self) -> bool:
        return self.since is not None

    def status(self) -> dict[str, Any]:
        return {
            "quota_exceeded": self.exceeded,
            "since": self.since.isoformat() if self.since else None,
            "next_probe": self.next_probe.isoformat() if self.next_probe else None,
        }

    async def may_send(self) -> float:
        """0 when a send may go (normal, or this hour's probe); else seconds to wait."""
        if self.since is None or self.next_probe is None:
            return 0.0
        now = self._clock.now()
        if now >= self.next_probe:
            self.next_probe = now + PROBE_EVERY  # one probe an hour, however many rows wait
            await self._save()
            return 0.0
        return max((self.next_probe - now).total_seconds(), 1.0)

    async def hit(self) -> None:
        """Zalo answered 429."""
        now = self._clock.now()
        first = self.since is None
        if first:
            self.since = now
        self.next_probe = now + PROBE_EVERY
        await self._save()
        if first:
            log.warning("zalo: monthly quota used up; bulk sends paused, probing hourly")
            await self._tell("exceeded")

    async def ok(self) -> None:
        """A send went through: the quota is back."""
        if self.since is not None:
            await self.resume()

    async def resume(self) -> bool:
        """End the pause (a send succeeded, or an admin said so); False if none."""
        if self.since is None:
            return False
        since = self.since
        self.since = self.next_probe = None
        await self._flags.clear(QUOTA_FLAG)
        log.info("zalo: sending again (quota paused since %s)", since.isoformat())
        await self._tell("resumed", since)
        return True

    async def _save(self) -> None:
        assert self.since is not None and self.next_probe is not None
        await self._flags.set(QUOTA_FLAG, {"since": self.since.isoformat(),
                                           "next_probe": self.next_probe.isoformat()})

    async def _tell(self, what: str, since: datetime | None = None) -> None:
        if self.on_change is None:
            return
        try:
            await self.on_change(what, since or self.since or self._clock.now())
        except Exception:
            log.exception("zalo: could not tell about the quota (%s)", what)


def strip_mention(text: str, names: tuple[str, ...]) -> str:
    """Drop a leading "@Bot name" (the display name Zalo shows in the @ list, or the
    account name), so "@Trợ lý phường /trogiup" reads as "/trogiup". Unknown names: a
    leading "@..." directly followed by a command is dropped too."""
    stripped = unicodedata.normalize("NFC", text).lstrip()
    if not stripped.startswith("@"):
        return text
    body = stripped[1:]
    match = _MENTION_THEN_COMMAND.match(stripped)
    command = stripped[match.end() - 1:] if match else None
    for name in sorted((n for n in names if n), key=len, reverse=True):
        norm = unicodedata.normalize("NFC", name).lstrip("@")
        if body[: len(norm)].casefold() == norm.casefold():
            rest = body[len(norm):]
            if not rest or not (rest[0].isalnum() or rest[0] == "_"):
                rest = rest.lstrip(" \t:,\u00a0")
                # A longer name that only begins like ours ("Trợ lý Phường Hòa Bình"):
                # the command after it still counts.
                return command if command is not None and not rest.startswith("/") else rest
    return command if command is not None else text


_MENTION_THEN_COMMAND = re.compile(r"^@[^/\n]{1,64}?\s/")


class ZaloClient:
    """Calls the Zalo Bot API; knows nothing of our domain."""

    def __init__(self, token: str, api_base_url: str, *, timeout: float = 15) -> None:
        self._url = f"{api_base_url}{token}/"  # as for Telegram, the token is appended
        self._timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> ZaloClient:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def open(self) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def call(
        self, method: str, payload: dict[str, Any] | None = None, *, wait: float | None = None
    ) -> Any:
        if self._session is None:
            await self.open()
        assert self._session is not None
        try:
            async with self._session.post(
                self._url + method,
                json=payload or {},
                timeout=aiohttp.ClientTimeout(total=wait or self._timeout),
            ) as response:
                try:
                    body = await response.json(content_type=None)
                except (aiohttp.ContentTypeError, ValueError):
                    raise ZaloApiError(method, response.status, "not JSON") from None
        except TimeoutError:
            raise ZaloApiError(method, 408, "timed out") from None
        except aiohttp.ClientError as exc:
            raise ZaloApiError(method, 503, f"network: {exc}") from None
        if not isinstance(body, dict):
            raise ZaloApiError(method, 502, "unexpected answer")
        if not body.get("ok"):
            raise ZaloApiError(
                method, int(body.get("error_code") or response.status),
                str(body.get("description") or ""),
            )
        return body.get("result")

    async def get_me(self) -> dict[str, Any]:
        result = await self.call("getMe")
        return result if isinstance(result, dict) else {}

    async def get_update(self, poll_seconds: int = POLL_TIMEOUT) -> dict[str, Any] | None:
        """One long poll: an update, or None when the poll ended empty."""
        try:
            result = await self.call(
                "getUpdates", {"timeout": str(poll_seconds)}, wait=poll_seconds + 10
            )
        except ZaloApiError as exc:
            if exc.error_code == NO_UPDATE:
                return None
            raise
        return result if isinstance(result, dict) else None

    async def send_message(self, chat_id: str, text: str) -> dict[str, Any]:
        result = await self.call("sendMessage", {"chat_id": chat_id, "text": text})
        return result if isinstance(result, dict) else {}

    async def send_photo(self, chat_id: str, photo_url: str, caption: str) -> dict[str, Any]:
        payload = {"chat_id": chat_id, "photo": photo_url}
        if caption:
            payload["caption"] = caption
        result = await self.call("sendPhoto", payload)
        return result if isinstance(result, dict) else {}

    async def send_chat_action(self, chat_id: str, action: str = "typing") -> None:
        await self.call("sendChatAction", {"chat_id": chat_id, "action": action})

    async def set_webhook(self, url: str, secret_token: str) -> None:
        await self.call("setWebhook", {"url": url, "secret_token": secret_token})

    async def delete_webhook(self) -> None:
        await self.call("deleteWebhook")

    async def get_webhook_info(self) -> dict[str, Any]:
        result = await self.call("getWebhookInfo")
        return result if isinstance(result, dict) else {}


def unwrap_update(payload: dict[str, Any]) -> dict[str, Any] | None:
    """Webhook bodies come flat (`{event_name, message}`) or wrapped (`{ok, result}`)."""
    if payload.get("ok") is True and isinstance(payload.get("result"), dict):
        payload = payload["result"]
    return payload if isinstance(payload.get("event_name"), str) else None


class ZaloPlatform:
    name = "zalo"

    def __init__(
        self,
        config: ZaloSection,
        on_incoming: OnIncoming,
        *,
        client: ZaloClient | None = None,
        seen: SeenStore | None = None,
        flags: FlagStore | None = None,
        clock: Clock | None = None,
    ) -> None:
        self._config = config
        self._on_incoming = on_incoming
        self.client = client or ZaloClient(config.token.get_secret_value(), config.api_base_url)
        self.capabilities = Capabilities(
            buttons=False, edit=False, documents=False, photos=False, polls=False, pin=False,
            max_text=TEXT_LIMIT, max_button_payload=64, markup="plain",
        )
        self._me: dict[str, Any] = {}
        self._poller: asyncio.Task[None] | None = None
        self._ids = itertools.count(1)
        self._seen: SeenStore = seen or MemorySeen()
        self.quota = QuotaGuard(flags or MemoryFlags(), clock or SystemClock())
        self._not_found: dict[str, int] = {}  # chat → 404s in a row
        self._background: set[asyncio.Task[Any]] = set()
        self._idle = asyncio.Event()  # the poller is not handling an update right now
        self._idle.set()

    @property
    def bot_username(self) -> str:
        return str(self._me.get("account_name") or self._me.get("name") or "")

    @property
    def display_name(self) -> str:
        """The name Zalo shows in a group's @ list (getMe does not return it: configured)."""
        return self._config.display_name

    @property
    def can_join_groups(self) -> bool:
        return bool(self._me.get("can_join_groups", False))

    async def start(self) -> None:
        await self.client.open()
        await self.quota.load()
        self._me = await self.client.get_me()
        if self._config.mode == "webhook":
            await self.client.set_webhook(
                self._config.webhook_url, self._config.webhook_secret.get_secret_value()
            )
        else:
            # getUpdates works only while no webhook is set.
            with contextlib.suppress(ZaloApiError):
                await self.client.delete_webhook()
            self._poller = asyncio.create_task(self._poll(), name="zalo-poll")
        log.info("zalo: %s started in %s mode", self.bot_username, self._config.mode)

    async def stop(self) -> None:
        """Let the update being handled finish (a stop must not cut a database write in
        half), then stop polling."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), timeout=5)
        if self._background:
            await asyncio.wait(set(self._background), timeout=5)
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
            self._poller = None
        await self.client.close()

    async def _poll(self) -> None:
        """Long-poll for ever, never faster than `poll_interval_seconds` between two polls;
        errors and repeated updates (Zalo may hand a consumed one back) back off."""
        backoff = 0.0
        interval = self._config.poll_interval_seconds
        last = 0.0
        while True:
            wait = max(interval - (time.monotonic() - last), backoff)
            if wait > 0:
                await asyncio.sleep(wait)
            last = time.monotonic()
            try:
                update = await self.client.get_update()
            except ZaloApiError as exc:
                backoff = min(max(backoff * 2, 1.0), 60.0)
                log.warning("zalo: polling failed (%s); retrying in %.0f s", exc, backoff)
                continue
            if update is None:
                backoff = 0.0
                continue
            self._idle.clear()
            try:
                fresh = await self._handle(update)
            finally:
                self._idle.set()
            # A repeat: Zalo gave a consumed update back; do not spin on it.
            backoff = 0.0 if fresh else min(max(backoff * 2, 2.0), 30.0)

    async def feed_webhook(self, payload: dict[str, Any]) -> None:
        """Answer Zalo at once (it retries a slow webhook, which would run commands twice)
        and handle the update in the background; repeats are dropped by message id."""
        update = unwrap_update(payload)
        if update is None:
            raise ValueError("not a Zalo update")
        task = asyncio.create_task(self._handle(update))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _handle(self, update: dict[str, Any]) -> bool:
        """Never raises: one malformed update must not stop the poller. False for a repeat."""
        try:
            incoming = self.to_incoming(update)
            if incoming is None:
                return True
            if await self._seen.seen_before(incoming.message_id):
                log.info("zalo: update %s seen before: dropped", incoming.message_id[:40])
                return False  # the platform sent it again: handled already
            await self._on_incoming(self, incoming)
        except Exception:
            log.exception("zalo: update not handled: %s", str(update.get("event_name"))[:64])
        return True

    def to_incoming(self, update: dict[str, Any]) -> Incoming | None:
        event = str(update.get("event_name", ""))
        message = update.get("message")
        if not isinstance(message, dict):
            return None
        sender = message.get("from") or {}
        chat = message.get("chat") or {}
        if not isinstance(sender, dict) or not isinstance(chat, dict):
            return None
        if not sender.get("id") or not chat.get("id"):
            return None
        kind: ChatKind = "group" if str(chat.get("chat_type", "")).upper() == "GROUP" else "private"
        text = ""
        attachments: tuple[Attachment, ...] = ()
        if event == "message.text.received":
            text = str(message.get("text") or "")
        elif event == "message.image.received":
            text = str(message.get("caption") or "")
            url = message.get("photo_url") or message.get("photo") or ""
            attachments = (Attachment(kind="photo", file_id=str(url)),) if url else ()
        else:
            return None  # stickers and unsupported messages carry nothing to answer
        if kind == "group":
            text = strip_mention(text, (self.display_name, self.bot_username))
        command, args, target = parse_command_text(text)
        me = self.bot_username.lower()
        return Incoming(
            platform=self.name,
            chat=Chat(str(chat["id"]), kind, str(chat.get("title") or "")),
            sender=Sender(user_id=str(sender["id"]), name=str(sender.get("display_name")
                          or sender.get("name") or "")),
            text=text,
            message_id=str(message.get("message_id") or ""),
            command=command,
            args=args,
            attachments=attachments,
            # Zalo hands a bot only the group messages that pick it from the @ list or
            # reply to it: every one is meant for us.
            addressed=True,
            foreign_command=bool(command and target and target.lower() != me),
        )

    # --- outgoing ------------------------------------------------------------------------
    async def send(self, chat_id: str, message: Outgoing) -> Sent:
        wait = await self.quota.may_send()
        if wait:
            raise DeliveryError("paused", "quota exceeded", retry_after=wait)
        text = to_plain(message.text)
        result: dict[str, Any] = {}
        try:
            for piece in split_text(text, TEXT_LIMIT, markup=False):
                result = await self.client.send_message(chat_id, piece)
        except ZaloApiError as exc:
            if exc.error_code == QUOTA_EXCEEDED:
                await self.quota.hit()
            repeated = 0
            if exc.error_code == 404:
                repeated = self._not_found[chat_id] = self._not_found.get(chat_id, 0) + 1
            raise delivery_error(exc, repeated_404=repeated) from exc
        self._not_found.pop(chat_id, None)
        await self.quota.ok()
        return Sent(chat_id=chat_id, message_id=str(result.get("message_id") or next(self._ids)))

    async def edit(self, chat_id: str, message_id: str, message: Outgoing) -> Sent:
        return await self.send(chat_id, message)

    async def answer_button(self, callback_id: str, text: str = "") -> None:
        return None  # Zalo has no button presses to acknowledge

    async def download(self, attachment: Attachment) -> bytes:
        assert self.client is not None
        async with aiohttp.ClientSession() as http, http.get(attachment.file_id) as response:
            response.raise_for_status()
            return await response.read()

    def invite_link(self, code: str) -> str:
        return f"/start {code}"
