"""Zalo Bot Platform: a thin aiohttp client and the adapter behind our platform protocol.

The API is Telegram-like: `POST {api_base_url}{token}/{method}` with a JSON body, answered
`{"ok": true, "result": ...}` or `{"ok": false, "error_code": N, "description": "..."}`.
`getUpdates` long-polls and returns ONE update (not a list); a poll that ends without an
update is answered with error_code 408. Zalo shows no inline buttons, cannot edit messages,
sends photos only by URL and limits texts to 2,000 characters: the router turns button menus
into numbered lists (see `bot.router`), and this adapter splits long texts. Sources: docs/zalo.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

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
        """Worth retrying later: rate limits, timeouts, server errors."""
        return self.error_code in (408, 429) or self.error_code >= 500


# Zalo says nothing of how long to wait after a 429: wait this long before trying again.
RETRY_AFTER_SECONDS = 10.0
_GONE_WORDS = ("not found", "blocked", "not a member", "kicked", "removed", "forbidden")


def delivery_error(exc: ZaloApiError) -> DeliveryError:
    """Zalo's answers in the outbox's words: wait, try later, stop sending there, give up."""
    if exc.error_code == 429:
        return DeliveryError("retry_after", exc.description, retry_after=RETRY_AFTER_SECONDS)
    if exc.transient:
        return DeliveryError("transient", exc.description)
    if exc.error_code == 403 or any(w in exc.description.lower() for w in _GONE_WORDS):
        return DeliveryError("gone", exc.description)
    return DeliveryError("rejected", exc.description)


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
        self._seen = RecentIds()
        self._background: set[asyncio.Task[None]] = set()

    @property
    def bot_username(self) -> str:
        return str(self._me.get("account_name") or self._me.get("name") or "")

    @property
    def can_join_groups(self) -> bool:
        return bool(self._me.get("can_join_groups", False))

    async def start(self) -> None:
        await self.client.open()
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
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
            self._poller = None
        await self.client.close()

    async def _poll(self) -> None:
        backoff = 1.0
        while True:
            try:
                update = await self.client.get_update()
                backoff = 1.0
            except ZaloApiError as exc:
                log.warning("zalo: polling failed (%s); retrying in %.0f s", exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 60.0)
                continue
            if update is not None:
                await self._handle(update)

    async def feed_webhook(self, payload: dict[str, Any]) -> None:
        """Answer Zalo at once (it retries a slow webhook, which would run commands twice)
        and handle the update in the background; repeats are dropped by message id."""
        update = unwrap_update(payload)
        if update is None:
            raise ValueError("not a Zalo update")
        task = asyncio.create_task(self._handle(update))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _handle(self, update: dict[str, Any]) -> None:
        """Never raises: one malformed update must not stop the poller."""
        try:
            incoming = self.to_incoming(update)
            if incoming is None:
                return
            if self._seen.seen_before(incoming.message_id):
                return  # the platform sent it again (a webhook retry): handled already
            await self._on_incoming(self, incoming)
        except Exception:
            log.exception("zalo: update not handled: %s", str(update.get("event_name"))[:64])

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
        command, args, target = parse_command_text(text)
        me = self.bot_username.lower()
        mentioned = bool(me) and f"@{me}" in text.lower()
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
            # A bare /command in a group may be meant for another bot: only a mention or
            # /cmd@thisbot counts as talking to us (known commands still run, see router).
            addressed=kind == "private" or mentioned or bool(command and target),
            foreign_command=bool(command and target and target.lower() != me),
        )

    # --- outgoing ------------------------------------------------------------------------
    async def send(self, chat_id: str, message: Outgoing) -> Sent:
        text = to_plain(message.text)
        result: dict[str, Any] = {}
        try:
            for piece in split_text(text, TEXT_LIMIT, markup=False):
                result = await self.client.send_message(chat_id, piece)
        except ZaloApiError as exc:
            raise delivery_error(exc) from exc
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
