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
Sources are listed in docs/dev/zalo-api.md. Group chat ids are kept as `group:<id>` so one
id space holds users and groups.

What the record says and this adapter does (issue #13):
- a group event's group id may come as `recipient.id`; an event of a shape we do not know is
  logged once, as its shape only (keys and types, no personal data);
- `-213` is read as "not following" by one source and "no interaction in 48 h" by another:
  it gives up that message, never the person; `-230` (no interaction in 7 days) likewise;
- a correctly signed event older than 5 minutes is answered 200 (Zalo retries a failing
  webhook for hours, then disables it) and dropped, its `msg_id` remembered;
- `-14020` when refreshing (refresh token used, or older than 3 months): the OA must be
  authorised again; the admins are told once, and sends wait until then;
- one-to-one: 8 free replies within 48 h of the resident's last message; anything else is a
  proactive (quota or paid) message, sent only within `proactive_per_month`. Both counted.
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

from bot.clock import Clock, SystemClock
from bot.config import ZaloOASection
from bot.core import (
    Attachment,
    Capabilities,
    Chat,
    DeliveryError,
    Incoming,
    Outgoing,
    Sender,
    Sent,
    parse_command_text,
)
from bot.platforms.zalo import FlagStore, MemoryFlags, MemorySeen, SeenStore
from bot.texts import split_text, to_plain
from bot.zalo_state import REAUTHORIZE_FLAG, OACounts

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


# `-213` is contested (not following / no interaction in 48 h) and `-230` means no
# interaction in 7 days: both give up that one message and keep the person. Nothing the
# OA answers is, on its own, evidence that a person is gone. See docs/dev/zalo-api.md.
GIVE_UP_CODES = frozenset({-213, -230})
REFRESH_TOKEN_DEAD = -14020
# While the OA waits to be authorised again, queued messages wait this long between tries.
REAUTHORIZE_WAIT = 3600.0


def delivery_error(exc: ZaloOAError) -> DeliveryError:
    if exc.code == REFRESH_TOKEN_DEAD:
        return DeliveryError("paused", "OA must be authorised again",
                             retry_after=REAUTHORIZE_WAIT)
    if exc.code in (-32, 429):
        return DeliveryError("retry_after", exc.message, retry_after=60.0)
    if exc.transient:
        return DeliveryError("transient", exc.message)
    return DeliveryError("rejected", exc.message)


class WindowStore(Protocol):
    """The one-to-one windows and the month's counts (the database in production)."""

    async def heard_from(self, user_id: str) -> None: ...

    async def classify(self, user_id: str) -> str: ...

    async def count(self, user_id: str, kind: str) -> None: ...

    async def counts(self, month: str | None = None) -> OACounts: ...


class MemoryWindows:
    """Everyone is always inside the free window: for tests of other things."""

    async def heard_from(self, user_id: str) -> None:
        return None

    async def classify(self, user_id: str) -> str:
        return "reply"

    async def count(self, user_id: str, kind: str) -> None:
        return None

    async def counts(self, month: str | None = None) -> OACounts:
        return OACounts(month or "", 0, 0, 0)


def shape(value: Any, depth: int = 0) -> Any:
    """An event's shape for the log: keys kept, every value replaced by its type name."""
    if depth > 7:
        return "..."
    if isinstance(value, dict):
        return {str(k)[:40]: shape(v, depth + 1) for k, v in list(value.items())[:30]}
    if isinstance(value, list):
        return [shape(value[0], depth + 1)] if value else []
    return type(value).__name__


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
        # Called when the refresh token is used up or too old: people must re-authorise.
        self.on_refresh_dead: Callable[[], Awaitable[None]] | None = None

    async def adopt_config_tokens(self) -> bool:
        """After re-authorising, the operator pastes new tokens into the config: use them
        instead of the stored (dead) ones. True if they were new."""
        stored = await self._store.load(self._config.app_id)
        configured = self._config.refresh_token.get_secret_value()
        if stored is None or stored.refresh_token == configured:
            return False
        await self._store.save(self._config.app_id, OATokens(
            access_token=self._config.access_token.get_secret_value(),
            refresh_token=configured, expires_at=self._clock.now() + timedelta(hours=1),
        ))
        return True

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
                if code == REFRESH_TOKEN_DEAD and self.on_refresh_dead is not None:
                    await self.on_refresh_dead()
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
        self, config: ZaloOASection, on_incoming: OnIncoming, client: ZaloOAClient, *,
        seen: SeenStore | None = None, flags: FlagStore | None = None,
        windows: WindowStore | None = None, clock: Clock | None = None,
    ) -> None:
        self._config = config
        self._on_incoming = on_incoming
        self.client = client
        self._clock = clock or SystemClock()
        self._seen: SeenStore = seen or MemorySeen()
        self.flags: FlagStore = flags or MemoryFlags()
        self.windows: WindowStore = windows or MemoryWindows()
        self.on_reauthorize: Callable[[], Awaitable[None]] | None = None
        self._shapes_logged: set[str] = set()
        self._background: set[asyncio.Task[None]] = set()
        self.capabilities = Capabilities(
            buttons=False, edit=False, documents=False, photos=False, polls=False, pin=False,
            max_text=TEXT_LIMIT, max_button_payload=64, markup="plain",
        )
        client.on_refresh_dead = self._refresh_dead

    @property
    def bot_username(self) -> str:
        return ""

    async def start(self) -> None:
        await self.client.open()
        if await self.flags.get(REAUTHORIZE_FLAG) and await self.client.adopt_config_tokens():
            await self.flags.clear(REAUTHORIZE_FLAG)
            log.info("zalo oa: new tokens from the config adopted after re-authorising")
        await self.client.tokens()

    async def stop(self) -> None:
        if self._background:  # events being handled finish first
            await asyncio.wait(set(self._background), timeout=5)
        await self.client.close()

    async def _refresh_dead(self) -> None:
        """The refresh token is used up or older than 3 months: tell the admins, once."""
        if await self.flags.get(REAUTHORIZE_FLAG):
            return
        await self.flags.set(REAUTHORIZE_FLAG, {"since": self._clock.now().isoformat()})
        log.error("zalo oa: refresh token refused (-14020): the OA must be authorised again")
        if self.on_reauthorize is not None:
            try:
                await self.on_reauthorize()
            except Exception:
                log.exception("zalo oa: could not tell the admins to re-authorise")

    def verify(self, headers: Mapping[str, str], raw_body: bytes) -> bool:
        """The signature only: a late but genuine event is answered 200 and dropped in
        `feed_webhook` (refusing it would make Zalo retry for hours, then disable us)."""
        return verify_signature(
            headers, raw_body, app_id=self._config.app_id,
            oa_secret_key=self._config.oa_secret_key.get_secret_value(),
        )

    def _late(self, payload: dict[str, Any]) -> bool:
        stamp = str(payload.get("timestamp", ""))
        if not stamp.isascii() or not stamp.isdigit() or len(stamp) > 16:
            return True  # a signed event without a readable time is not trusted as fresh
        sent = datetime.fromtimestamp(int(stamp) / 1000, tz=UTC)
        return abs(self._clock.now() - sent) > MAX_EVENT_AGE

    async def feed_webhook(self, payload: dict[str, Any]) -> None:
        """Answer Zalo at once (it wants an answer within about 2 s and retries) and handle
        the event in the background; a repeated message id is handled once; an event older
        than 5 minutes is dropped (its id remembered, so its retries are dropped too)."""
        message = payload.get("message")
        msg_id = str(message.get("msg_id") or "") if isinstance(message, dict) else ""
        if self._late(payload):
            await self._seen.seen_before(msg_id)
            log.warning("zalo oa: event %s older than %s dropped", msg_id[:40], MAX_EVENT_AGE)
            return
        incoming = self.to_incoming(payload)
        if incoming is None:
            return
        if await self._seen.seen_before(incoming.message_id):
            return
        if incoming.is_private:
            await self.windows.heard_from(incoming.sender.user_id)
        task = asyncio.create_task(self._handle(incoming))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _handle(self, incoming: Incoming) -> None:
        try:
            await self._on_incoming(self, incoming)
        except Exception:
            log.exception("zalo oa: update not handled")

    def _log_shape(self, event: dict[str, Any], why: str) -> None:
        """One example per event name and reason, keys and types only (no personal data)."""
        name = str(event.get("event_name", ""))[:64]
        key = f"{name}:{why}"
        if key in self._shapes_logged or len(self._shapes_logged) >= 50:
            return
        self._shapes_logged.add(key)
        log.info("zalo oa: event %r not handled (%s); its shape: %s", name, why,
                 json.dumps(shape(event), sort_keys=True))

    def to_incoming(self, event: dict[str, Any]) -> Incoming | None:
        name = str(event.get("event_name", ""))
        if name not in ("user_send_text", "user_send_group_text"):
            self._log_shape(event, "unknown event")
            return None
        sender = event.get("sender") or {}
        message = event.get("message") or {}
        recipient = event.get("recipient") or {}
        if not all(isinstance(x, dict) for x in (sender, message, recipient)):
            self._log_shape(event, "unexpected shape")
            return None
        user_id = str(sender.get("id") or "")
        if not user_id:
            self._log_shape(event, "no sender id")
            return None
        text = str(message.get("text") or "")
        if name == "user_send_group_text":
            # Integrations read the group id from `recipient.id`; older notes from
            # `recipient.group_id` or `message.conversation_id`: accept each.
            group_id = str(recipient.get("group_id") or recipient.get("id")
                           or message.get("conversation_id") or "")
            if not group_id:
                self._log_shape(event, "no group id")
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
        if await self.flags.get(REAUTHORIZE_FLAG):
            raise DeliveryError("paused", "OA must be authorised again",
                                retry_after=REAUTHORIZE_WAIT)
        message_id = ""
        group = chat_id.startswith(GROUP_PREFIX)
        try:
            for piece in split_text(to_plain(message.text), TEXT_LIMIT, markup=False):
                kind = "group" if group else await self.windows.classify(chat_id)
                if kind == "proactive" and not await self._proactive_allowed():
                    await self.windows.count(chat_id, "refused")
                    raise DeliveryError("rejected", "outside the free reply window")
                message_id = await self.client.send_text(chat_id, piece)
                if not group:
                    await self.windows.count(chat_id, kind)
        except ZaloOAError as exc:
            raise delivery_error(exc) from exc
        return Sent(chat_id=chat_id, message_id=message_id)

    async def _proactive_allowed(self) -> bool:
        limit = self._config.proactive_per_month
        if limit <= 0:
            return False
        return (await self.windows.counts()).proactive < limit

    async def edit(self, chat_id: str, message_id: str, message: Outgoing) -> Sent:
        return await self.send(chat_id, message)

    async def answer_button(self, callback_id: str, text: str = "") -> None:
        return None

    async def download(self, attachment: Attachment) -> bytes:
        return attachment.data or b""

    def invite_link(self, code: str) -> str:
        return f"/start {code}"
