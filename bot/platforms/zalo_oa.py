"""Zalo Official Account (OA Open API v3): where a bot account cannot join a group, the
ward's OA reaches residents who follow it and the OA's group chats (GMF).

- Sending: `POST {api}/v3.0/oa/message/cs` to a user, `POST {api}/v3.0/oa/group/message` to a
  group, JSON `{"recipient": {"user_id"|"group_id": id}, "message": {"text": ...}}`, header
  `access_token`. Answers `{"error": 0, "message": "Success", "data": {...}}`; error -216
  means the access token expired: refresh once and retry.
- Tokens: access tokens live about 25 hours; `POST {oauth}/v4/oa/access_token` with header
  `secret_key` (the app secret) and form `app_id, refresh_token, grant_type=refresh_token`
  returns a new access token AND a new refresh token (the old one is used up), so both are
  stored (`TokenStore`) and never logged.
- Webhook: events such as `user_send_text` and `user_send_group_text` arrive signed:
  header `X-ZEvent-Signature: mac=<sha256(app_id + raw body + timestamp + OA secret key)>`.
Sources are listed in docs/zalo.md. Group chat ids are kept as `group:<id>` so one id space
holds users and groups.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import aiohttp

from bot.clock import Clock
from bot.config import ZaloOASection
from bot.core import (
    Attachment,
    Capabilities,
    Chat,
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

GROUP_PREFIX = "group:"
TEXT_LIMIT = 2000
TOKEN_EXPIRED = -216

OnIncoming = Callable[["ZaloOAPlatform", Incoming], Awaitable[None]]


@dataclass(frozen=True)
class OATokens:
    access_token: str
    refresh_token: str
    expires_at: datetime


class TokenStore(Protocol):
    """Where the rotating OA tokens live (the database in production)."""

    async def load(self, app_id: str) -> OATokens | None: ...

    async def save(self, app_id: str, tokens: OATokens) -> None: ...


class MemoryTokenStore:
    """Keeps tokens in memory only: for tests and for a single short-lived process."""

    def __init__(self) -> None:
        self._tokens: dict[str, OATokens] = {}

    async def load(self, app_id: str) -> OATokens | None:
        return self._tokens.get(app_id)

    async def save(self, app_id: str, tokens: OATokens) -> None:
        self._tokens[app_id] = tokens


class ZaloOAError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"zalo oa: {code} {message}")
        self.code = code
        self.message = message

    @property
    def transient(self) -> bool:
        return self.code in (-32, 429) or self.code >= 500  # -32: rate limit exceeded


# OA Open API codes meaning "this person cannot be reached any more": -213, the user does
# not follow the OA (any more). -230 (no interaction in the last 7 days) only closes the
# window for now: such a message is given up, the chat kept. See docs/zalo.md.
GONE_CODES = frozenset({-213})


def delivery_error(exc: ZaloOAError) -> DeliveryError:
    if exc.code in (-32, 429):
        return DeliveryError("retry_after", exc.message, retry_after=60.0)
    if exc.transient:
        return DeliveryError("transient", exc.message)
    if exc.code in GONE_CODES:
        return DeliveryError("gone", exc.message)
    return DeliveryError("rejected", exc.message)


def expected_signature(app_id: str, raw_body: bytes, timestamp: str, oa_secret_key: str) -> str:
    digest = hashlib.sha256(
        app_id.encode() + raw_body + timestamp.encode() + oa_secret_key.encode()
    ).hexdigest()
    return f"mac={digest}"


MAX_EVENT_AGE = timedelta(minutes=5)


def verify_signature(
    headers: Mapping[str, str], raw_body: bytes, *, app_id: str, oa_secret_key: str,
    now: datetime | None = None,
) -> bool:
    """Check `X-ZEvent-Signature` against the body, and (given `now`) that the event's
    timestamp is recent, so a captured signed event cannot be replayed later."""
    given = headers.get("X-ZEvent-Signature", "").strip()
    if not given or not oa_secret_key:
        return False
    try:
        payload = json.loads(raw_body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return False
    if not isinstance(payload, dict):
        return False
    timestamp = str(payload.get("timestamp", ""))
    if now is not None:
        if not timestamp.isascii() or not timestamp.isdigit() or len(timestamp) > 16:
            return False
        sent = datetime.fromtimestamp(int(timestamp) / 1000, tz=UTC)
        if abs(now - sent) > MAX_EVENT_AGE:
            return False
    signer = str(payload.get("app_id") or app_id)
    if signer != app_id:
        return False
    expected = expected_signature(app_id, raw_body, timestamp, oa_secret_key)
    if not given.startswith("mac="):
        given = f"mac={given}"
    return hmac.compare_digest(given.lower(), expected)


class ZaloOAClient:
    def now(self) -> datetime:
        return self._clock.now()

    def __init__(self, config: ZaloOASection, store: TokenStore, clock: Clock) -> None:
        self._config = config
        self._store = store
        self._clock = clock
        self._session: aiohttp.ClientSession | None = None
        self._lock = asyncio.Lock()

    async def open(self) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15))

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def tokens(self) -> OATokens:
        stored = await self._store.load(self._config.app_id)
        if stored is not None:
            return stored
        # First start: the tokens an operator pasted into the config.
        first = OATokens(
            access_token=self._config.access_token.get_secret_value(),
            refresh_token=self._config.refresh_token.get_secret_value(),
            expires_at=self._clock.now() + timedelta(hours=1),
        )
        await self._store.save(self._config.app_id, first)
        return first

    async def refresh(self, used: OATokens) -> OATokens:
        """Trade the refresh token for new tokens, once even if many senders ask at once."""
        async with self._lock:
            current = await self.tokens()
            if current.access_token != used.access_token:
                return current  # another caller refreshed already
            await self.open()
            assert self._session is not None
            async with self._session.post(
                f"{self._config.oauth_base_url.rstrip('/')}/v4/oa/access_token",
                data={
                    "app_id": self._config.app_id,
                    "refresh_token": current.refresh_token,
                    "grant_type": "refresh_token",
                },
                headers={"secret_key": self._config.secret_key.get_secret_value()},
            ) as response:
                body = await response.json(content_type=None)
            if not isinstance(body, dict) or not body.get("access_token"):
                code = int(body.get("error", -1)) if isinstance(body, dict) else -1
                raise ZaloOAError(code, "could not refresh the access token")
            fresh = OATokens(
                access_token=str(body["access_token"]),
                refresh_token=str(body.get("refresh_token") or current.refresh_token),
                expires_at=self._clock.now()
                + timedelta(seconds=int(body.get("expires_in", 90000))),
            )
            await self._store.save(self._config.app_id, fresh)
            log.info("zalo oa: access token refreshed")
            return fresh

    async def send_text(self, chat_id: str, text: str) -> str:
        if chat_id.startswith(GROUP_PREFIX):
            path, recipient = "/v3.0/oa/group/message", {"group_id": chat_id[len(GROUP_PREFIX):]}
        else:
            path, recipient = "/v3.0/oa/message/cs", {"user_id": chat_id}
        payload = {"recipient": recipient, "message": {"text": text}}
        tokens = await self.tokens()
        if tokens.expires_at <= self._clock.now():
            tokens = await self.refresh(tokens)
        try:
            data = await self._post(path, payload, tokens.access_token)
        except ZaloOAError as exc:
            if exc.code != TOKEN_EXPIRED:
                raise
            tokens = await self.refresh(tokens)
            data = await self._post(path, payload, tokens.access_token)
        return str(data.get("message_id", ""))

    async def _post(self, path: str, payload: dict[str, Any], token: str) -> dict[str, Any]:
        await self.open()
        assert self._session is not None
        try:
            async with self._session.post(
                f"{self._config.api_base_url.rstrip('/')}{path}", json=payload,
                headers={"access_token": token},
            ) as response:
                body = await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ZaloOAError(503, f"network: {exc}") from None
        if not isinstance(body, dict):
            raise ZaloOAError(502, "unexpected answer")
        code = int(body.get("error", 0))
        if code != 0:
            raise ZaloOAError(code, str(body.get("message", "")))
        data = body.get("data")
        return data if isinstance(data, dict) else {}


class ZaloOAPlatform:
    name = "zalo_oa"

    def __init__(
        self, config: ZaloOASection, on_incoming: OnIncoming, client: ZaloOAClient
    ) -> None:
        self._config = config
        self._on_incoming = on_incoming
        self.client = client
        self._seen = RecentIds()
        self._background: set[asyncio.Task[None]] = set()
        self.capabilities = Capabilities(
            buttons=False, edit=False, documents=False, photos=False, polls=False, pin=False,
            max_text=TEXT_LIMIT, max_button_payload=64, markup="plain",
        )

    @property
    def bot_username(self) -> str:
        return ""

    async def start(self) -> None:
        await self.client.open()
        await self.client.tokens()

    async def stop(self) -> None:
        await self.client.close()

    def verify(self, headers: Mapping[str, str], raw_body: bytes) -> bool:
        return verify_signature(
            headers, raw_body, app_id=self._config.app_id,
            oa_secret_key=self._config.oa_secret_key.get_secret_value(),
            now=self.client.now(),
        )

    async def feed_webhook(self, payload: dict[str, Any]) -> None:
        """Answer Zalo at once (it wants an answer within about 2 s and retries) and handle
        the event in the background; a repeated message id is handled once."""
        incoming = self.to_incoming(payload)
        if incoming is None:
            return
        if self._seen.seen_before(incoming.message_id):
            return
        task = asyncio.create_task(self._handle(incoming))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _handle(self, incoming: Incoming) -> None:
        try:
            await self._on_incoming(self, incoming)
        except Exception:
            log.exception("zalo oa: update not handled")

    def to_incoming(self, event: dict[str, Any]) -> Incoming | None:
        name = str(event.get("event_name", ""))
        if name not in ("user_send_text", "user_send_group_text"):
            return None
        sender = event.get("sender") or {}
        message = event.get("message") or {}
        recipient = event.get("recipient") or {}
        user_id = str(sender.get("id") or "")
        if not user_id:
            return None
        text = str(message.get("text") or "")
        if name == "user_send_group_text":
            group_id = str(recipient.get("group_id") or message.get("conversation_id") or "")
            if not group_id:
                return None
            chat = Chat(GROUP_PREFIX + group_id, "group")
        else:
            chat = Chat(user_id, "private")
        command, args, _ = parse_command_text(text)
        return Incoming(
            platform=self.name, chat=chat, sender=Sender(user_id=user_id),
            text=text, message_id=str(message.get("msg_id") or ""), command=command, args=args,
            addressed=chat.kind == "private",
        )

    async def send(self, chat_id: str, message: Outgoing) -> Sent:
        message_id = ""
        try:
            for piece in split_text(to_plain(message.text), TEXT_LIMIT, markup=False):
                message_id = await self.client.send_text(chat_id, piece)
        except ZaloOAError as exc:
            raise delivery_error(exc) from exc
        return Sent(chat_id=chat_id, message_id=message_id)

    async def edit(self, chat_id: str, message_id: str, message: Outgoing) -> Sent:
        return await self.send(chat_id, message)

    async def answer_button(self, callback_id: str, text: str = "") -> None:
        return None

    async def download(self, attachment: Attachment) -> bytes:
        return attachment.data or b""

    def invite_link(self, code: str) -> str:
        return f"/start {code}"
