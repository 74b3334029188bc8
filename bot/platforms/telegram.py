"""Telegram through python-telegram-bot's `Application`, driven by hand on our event loop.

PTB fetches updates (long polling, or our aiohttp webhook feeds its update queue) and does
the HTTP; everything else — routing, conversations, schedules — is ours and platform-neutral.
`telegram.api_base_url` lets a local Bot API server or a test server stand in.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import ssl
from collections.abc import Awaitable, Callable, Sequence
from contextlib import suppress
from typing import Any
from urllib.parse import urlencode

import aiohttp
import httpx
from telegram import (
    BotCommand,
    BotCommandScopeAllGroupChats,
    BotCommandScopeAllPrivateChats,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputFile,
    Message,
    MessageEntity,
    Update,
)
from telegram._utils.defaultvalue import DEFAULT_NONE, DefaultValue
from telegram._utils.types import JSONDict, ODVInput, TimePeriod
from telegram.constants import ChatMemberStatus, ParseMode
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)
from telegram.ext import Application, ApplicationBuilder, ContextTypes, ExtBot, TypeHandler
from telegram.request import HTTPXRequest, RequestData

from bot.config import TelegramSection
from bot.core import (
    Attachment,
    Capabilities,
    Chat,
    ChatEvent,
    ChatEventKind,
    ChatKind,
    DeliveryError,
    Incoming,
    Outgoing,
    PlatformStartError,
    Sender,
    Sent,
)
from bot.log_limit import LogLimiter

log = logging.getLogger(__name__)

OnIncoming = Callable[["TelegramPlatform", Incoming], Awaitable[None]]
OnChatEvent = Callable[["TelegramPlatform", ChatEvent], Awaitable[None]]
# Told of every update skipped, with the reason ("unparseable" or "failed"): /metrics.
OnSkipped = Callable[[str], None]

ALLOWED_UPDATES = ["message", "callback_query", "my_chat_member"]
_PRESENT = {ChatMemberStatus.MEMBER, ChatMemberStatus.ADMINISTRATOR, ChatMemberStatus.OWNER}
_GONE = {ChatMemberStatus.LEFT, ChatMemberStatus.BANNED}
# Bad requests that mean the chat itself is no longer there for the bot.
_GONE_MESSAGES = ("chat not found", "group chat was deactivated", "bot was kicked",
                  "not enough rights to send", "have no rights to send", "chat_write_forbidden")


def file_url_for(api_base_url: str) -> str:
    """`https://host/bot` → `https://host/file/bot`, as the Bot API lays out file downloads."""
    base = api_base_url.rstrip("/")
    if base.endswith("/bot"):
        return base[: -len("/bot")] + "/file/bot"
    return base + "/file/bot"


# Details of an error that name fields, never values a person typed.
_SAFE_ERRORS = (TypeError, KeyError, AttributeError)


def describe_bad_update(data: object, exc: BaseException) -> str:
    """What went wrong with an update, without anything a person wrote or who they are."""
    kinds = sorted(k for k in data if k != "update_id") if isinstance(data, dict) else []
    detail = f": {str(exc)[:200]}" if isinstance(exc, _SAFE_ERRORS) else ""
    return f"kind={','.join(kinds) or '?'} error={type(exc).__name__}{detail}"


class TolerantBot(ExtBot[None]):
    """PTB's bot, except that one update it cannot read is skipped instead of failing the
    whole `getUpdates` batch.

    PTB turns a batch into objects in one go: a single update with a field missing (Telegram
    adds fields with every API version; a `my_chat_member` change to "restricted" without
    `until_date` does it) raises, the offset never moves, and polling asks for the same
    batch ~75 times a second forever, logging the raw update each time. Here each update is
    read on its own; a bad one becomes an empty `Update` with its id (so the offset moves
    past it and our handler ignores it), logged once without its content, and counted.
    """

    def __init__(self, *args: Any, on_unreadable: Callable[[int, str], None], **kw: Any) -> None:
        super().__init__(*args, **kw)
        self._on_unreadable = on_unreadable

    async def get_updates(
        self,
        offset: int | None = None,
        limit: int | None = None,
        timeout: TimePeriod | None = None,  # noqa: ASYNC109 - PTB's signature
        allowed_updates: Sequence[str] | None = None,
        *,
        read_timeout: ODVInput[float] = DEFAULT_NONE,
        write_timeout: ODVInput[float] = DEFAULT_NONE,
        connect_timeout: ODVInput[float] = DEFAULT_NONE,
        pool_timeout: ODVInput[float] = DEFAULT_NONE,
        api_kwargs: JSONDict | None = None,
    ) -> tuple[Update, ...]:
        data: JSONDict = {"timeout": timeout, "offset": offset, "limit": limit,
                          "allowed_updates": allowed_updates}
        # As Bot.get_updates: the long poll's own timeout on top of the request's.
        base = read_timeout if isinstance(read_timeout, int | float) else (
            self._request[0].read_timeout or 0
        )
        seconds = timeout.total_seconds() if isinstance(timeout, dt.timedelta) else (
            float(timeout or 0)
        )
        raw = await self._post(
            "getUpdates", data, read_timeout=base + seconds, write_timeout=write_timeout,
            connect_timeout=connect_timeout, pool_timeout=pool_timeout, api_kwargs=api_kwargs,
        )
        updates: list[Update] = []
        for item in raw if isinstance(raw, list) else ():
            try:
                update = Update.de_json(item, self)
            except Exception as exc:  # noqa: BLE001 - any unreadable update is skipped
                update_id = int(item.get("update_id", 0)) if isinstance(item, dict) else 0
                self._on_unreadable(update_id, describe_bad_update(item, exc))
                if not update_id:
                    continue
                update = Update(update_id=update_id)
            self.insert_callback_data(update)
            updates.append(update)
        return tuple(updates)

    async def post_raw(self, endpoint: str, data: JSONDict) -> Any:
        """A Bot API call with plain JSON both ways: no PTB objects built for the request's
        keyboard or parsed from the answer (≈10% of a reply's CPU, bench/README.md). Errors
        are raised exactly as by PTB's own methods (RetryAfter, BadRequest, ...)."""
        return await self._post(endpoint, data)


class TelegramPlatform:
    name = "telegram"
    capabilities = Capabilities(
        buttons=True, edit=True, documents=True, photos=True, polls=True, pin=True,
        max_text=4096, max_button_payload=64, markup="html",
    )

    def __init__(
        self,
        config: TelegramSection,
        on_incoming: OnIncoming,
        on_chat_event: OnChatEvent,
        on_skipped: OnSkipped | None = None,
    ) -> None:
        self._config = config
        self._on_incoming = on_incoming
        self._on_chat_event = on_chat_event
        self._on_skipped = on_skipped
        self._errors = LogLimiter(log)
        self._answers: set[asyncio.Task[None]] = set()
        # Told after every good answer from Telegram (an idle bot's long polls included),
        # for /healthz; set by the app.
        self.on_ok: Callable[[], None] | None = None
        # One TLS context (the CA certificates read once, ~50 ms and ~1 MB each) for both
        # of PTB's clients, which would otherwise each read them.
        tls = {"verify": httpx.create_ssl_context()}
        self._requests = (
            _WatchedRequest(self._ok, connection_pool_size=256, httpx_kwargs=tls),
            _WatchedRequest(self._ok, connection_pool_size=1, read_timeout=40, httpx_kwargs=tls),
        )
        bot = TolerantBot(
            config.token.get_secret_value(),
            base_url=config.api_base_url,
            base_file_url=file_url_for(config.api_base_url),
            request=self._requests[0],
            get_updates_request=self._requests[1],
            on_unreadable=self._unreadable,
        )
        self._bot = bot
        builder = ApplicationBuilder().bot(bot)
        if config.mode == "webhook":
            builder = builder.updater(None)
        self.application: Application[Any, Any, Any, Any, Any, Any] = builder.build()
        self.application.add_handler(TypeHandler(Update, self._handle_update))
        self.application.add_error_handler(self._handle_error)

    def _ok(self) -> None:
        if self.on_ok is not None:
            self.on_ok()

    @property
    def bot_username(self) -> str:
        return self.application.bot.username or ""

    @property
    def bot_id(self) -> int:
        return int(self.application.bot.id)

    async def start(self, commands: list[tuple[str, str, str]]) -> None:
        """Connect, set the command menu, and start polling or register the webhook.

        `commands` holds (name, description, where) with where in any/private/group.
        """
        try:
            await self.application.initialize()
            if not self.application.running:
                await self.application.start()
        except InvalidToken:
            # PTB's message holds the token itself: never pass it on.
            await self._close_requests()
            raise PlatformStartError(self.name, "bad_token") from None
        except (NetworkError, TimedOut) as exc:
            raise PlatformStartError(self.name, "unreachable", type(exc).__name__) from None
        try:
            # Receiving first: the command menu (two calls) is not needed to answer anyone.
            await self._start_receiving()
            await self._set_commands(commands)
        except InvalidToken:
            raise PlatformStartError(self.name, "bad_token") from None
        except (NetworkError, TimedOut) as exc:
            raise PlatformStartError(self.name, "unreachable", type(exc).__name__) from None

    async def _close_requests(self) -> None:
        """A start that failed leaves PTB uninitialised, so its shutdown would not close our
        HTTP sessions; close them here (an open one is a warning on the operator's screen).
        Closing twice is harmless."""
        for request in self._requests:
            with suppress(Exception):
                await request.shutdown()

    async def _start_receiving(self) -> None:
        if self._config.mode == "webhook":
            await self.application.bot.set_webhook(
                url=self._config.webhook_url,
                secret_token=self._config.webhook_secret.get_secret_value(),
                allowed_updates=ALLOWED_UPDATES,
            )
        else:
            assert self.application.updater is not None
            if self.application.updater.running:
                return
            await self.application.bot.delete_webhook()
            await self.application.updater.start_polling(
                poll_interval=0.0, timeout=30, allowed_updates=ALLOWED_UPDATES
            )
        log.info("telegram: @%s started in %s mode", self.bot_username, self._config.mode)

    async def stop(self) -> None:
        if self._answers:
            await asyncio.wait(set(self._answers), timeout=2)
        if self.application.updater is not None and self.application.updater.running:
            await self.application.updater.stop()
        if self.application.running:
            await self.application.stop()
        await self.application.shutdown()
        await self._close_requests()  # never initialised (no network yet): still close them

    async def _set_commands(self, commands: list[tuple[str, str, str]]) -> None:
        private = [BotCommand(n, d[:256]) for n, d, w in commands if w in ("any", "private")]
        group = [BotCommand(n, d[:256]) for n, d, w in commands if w in ("any", "group")]
        bot = self.application.bot
        await bot.set_my_commands(private, scope=BotCommandScopeAllPrivateChats())
        await bot.set_my_commands(group, scope=BotCommandScopeAllGroupChats())

    async def feed_webhook(self, payload: dict[str, Any]) -> None:
        """Queue an update received by our web server (the secret is checked there)."""
        try:
            update = Update.de_json(payload, self.application.bot)
        except Exception as exc:  # noqa: BLE001 - answered 200 and skipped, as in polling
            self._unreadable(int(payload.get("update_id") or 0),
                             describe_bad_update(payload, exc))
            return
        await self.application.update_queue.put(update)

    def _unreadable(self, update_id: int, what: str) -> None:
        self._errors.error("telegram: skipped update %s that cannot be read (%s)",
                           f"unreadable:{what}", update_id, what)
        if self._on_skipped is not None:
            self._on_skipped("unparseable")

    # --- incoming ------------------------------------------------------------------------
    async def _handle_update(self, update: Update, _: ContextTypes.DEFAULT_TYPE) -> None:
        try:
            await self._handle(update)
        except Exception as exc:  # noqa: BLE001 - the next update must still be handled
            self._skipped_after_error(update, exc)

    def _skipped_after_error(self, update: object, exc: BaseException) -> None:
        update_id = getattr(update, "update_id", "?")
        self._errors.exception(
            f"telegram: skipped update {update_id} after an error ({type(exc).__name__})",
            f"failed:{type(exc).__name__}", exc,
        )
        if self._on_skipped is not None:
            self._on_skipped("failed")

    async def _handle(self, update: Update) -> None:
        if update.my_chat_member is not None:
            event = self._chat_member_event(update)
            if event is not None:
                await self._on_chat_event(self, event)
            return
        message = update.message
        if message is not None and message.migrate_to_chat_id:
            await self._on_chat_event(
                self,
                ChatEvent(
                    platform=self.name, chat=_chat(message), kind="migrated",
                    new_chat_id=str(message.migrate_to_chat_id),
                ),
            )
            return
        incoming = self.to_incoming(update)
        if incoming is not None:
            await self._on_incoming(self, incoming)

    def to_incoming(self, update: Update) -> Incoming | None:
        query = update.callback_query
        if query is not None:
            msg = query.message
            private = msg is not None and msg.chat.type == "private"
            kind: ChatKind = "private" if private else "group"
            chat = (
                Chat(str(msg.chat.id), kind, msg.chat.title or "")
                if msg is not None
                else Chat(str(query.from_user.id), "private")
            )
            return Incoming(
                platform=self.name, chat=chat, sender=_sender(query.from_user),
                message_id=str(msg.message_id) if msg is not None else "",
                payload=query.data or "", callback_id=query.id, addressed=True,
            )
        message = update.message
        if message is None or message.from_user is None or message.chat.type == "channel":
            return None
        text = message.text or message.caption or ""
        entities = message.entities or message.caption_entities or ()
        command, args, target = _parse_command(text, entities)
        me = self.bot_username.lower()
        foreign = bool(command and target and target.lower() != me)
        private = message.chat.type == "private"
        addressed = private or bool(command and target and target.lower() == me)
        if not addressed:
            mention = f"@{me}"
            # Entity offsets count UTF-16 units (an emoji is two): let PTB cut the text.
            parsed = message.parse_entities() or message.parse_caption_entities()
            addressed = any(
                e.type == MessageEntity.MENTION and found.lower() == mention
                for e, found in parsed.items()
            ) or (
                message.reply_to_message is not None
                and message.reply_to_message.from_user is not None
                and message.reply_to_message.from_user.id == self.bot_id
            )
        replied = message.reply_to_message
        reply_to = str(replied.message_id) if (
            replied is not None and replied.from_user is not None
            and replied.from_user.id == self.bot_id
        ) else ""
        return Incoming(
            platform=self.name, chat=_chat(message), sender=_sender(message.from_user),
            text=text, message_id=str(message.message_id), command=command, args=args,
            attachments=_attachments(message), addressed=addressed, foreign_command=foreign,
            reply_to=reply_to,
        )

    def _chat_member_event(self, update: Update) -> ChatEvent | None:
        change = update.my_chat_member
        assert change is not None
        if change.chat.type not in ("group", "supergroup"):
            return None
        old, new = change.old_chat_member.status, change.new_chat_member.status
        chat = Chat(str(change.chat.id), "group", change.chat.title or "")
        actor = _sender(change.from_user)
        can_send = getattr(change.new_chat_member, "can_send_messages", True)
        kind: ChatEventKind
        if new in _GONE:
            kind = "removed"
        elif new == ChatMemberStatus.RESTRICTED and not can_send:
            kind = "restricted"
        elif new in _PRESENT or new == ChatMemberStatus.RESTRICTED:
            if old in _PRESENT:
                return None
            kind = "added"
        else:
            return None
        return ChatEvent(
            platform=self.name, chat=chat, kind=kind, actor=actor, can_post=kind == "added"
        )

    async def _handle_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        # Never the update itself in the log: it holds names and messages.
        error = context.error or RuntimeError("unknown error")
        self._skipped_after_error(update, error)

    # --- outgoing ------------------------------------------------------------------------
    async def send(self, chat_id: str, message: Outgoing) -> Sent:
        try:
            return await self._send(chat_id, message)
        except TelegramError as exc:
            raise _delivery_error(exc) from exc

    async def _send(self, chat_id: str, message: Outgoing) -> Sent:
        bot = self.application.bot
        target = _chat_id(chat_id)
        sent: Message
        if message.attachment is not None and (message.attachment.data or
                                               message.attachment.file_id):
            markup = _markup(message)
            file: InputFile | str = (
                InputFile(message.attachment.data, filename=message.attachment.filename)
                if message.attachment.data is not None else message.attachment.file_id
            )
            if message.attachment.kind == "photo":
                sent = await bot.send_photo(
                    target, photo=file, caption=message.text or None,
                    parse_mode=ParseMode.HTML, reply_markup=markup,
                )
            else:
                sent = await bot.send_document(
                    target, document=file, caption=message.text or None,
                    parse_mode=ParseMode.HTML, reply_markup=markup,
                )
        else:
            raw = await self._bot.post_raw("sendMessage", _text_payload(target, message))
            sent_id = int(raw["message_id"])
            await self._pin(bot, chat_id, target, sent_id, message)
            return Sent(chat_id=chat_id, message_id=str(sent_id))
        await self._pin(bot, chat_id, target, sent.message_id, message)
        return Sent(chat_id=chat_id, message_id=str(sent.message_id))

    async def _pin(self, bot: Any, chat_id: str, target: int | str, message_id: int,
                   message: Outgoing) -> None:
        if message.pin:
            try:
                await bot.pin_chat_message(target, message_id, disable_notification=True)
            except BadRequest as exc:
                log.info("telegram: cannot pin in %s: %s", chat_id, exc.message)

    async def edit(self, chat_id: str, message_id: str, message: Outgoing) -> Sent:
        try:
            payload = _text_payload(_chat_id(chat_id), message)
            payload["message_id"] = int(message_id)
            await self._bot.post_raw("editMessageText", payload)
        except BadRequest as exc:
            if "not modified" in exc.message.lower():
                return Sent(chat_id=chat_id, message_id=message_id)
            if "message to edit not found" in exc.message.lower() or "can't be edited" in (
                exc.message.lower()
            ):
                return await self.send(chat_id, message)
            raise _delivery_error(exc) from exc
        except TelegramError as exc:  # a 429 on an edit is waited out like one on a send
            raise _delivery_error(exc) from exc
        return Sent(chat_id=chat_id, message_id=message_id)

    async def answer_button(self, callback_id: str, text: str = "") -> None:
        """Answer a press without waiting for Telegram: the edit or reply that follows goes
        out at the same time instead of one round trip later (bench/README.md)."""
        task = asyncio.create_task(self._answer(callback_id, text))
        self._answers.add(task)
        task.add_done_callback(self._answers.discard)

    async def _answer(self, callback_id: str, text: str) -> None:
        try:
            await self.application.bot.answer_callback_query(callback_id, text=text or None)
        except Exception as exc:  # noqa: BLE001 - an unanswered press only spins a while
            self._errors.error("telegram: could not answer a button press: %s",
                               f"answer:{type(exc).__name__}", type(exc).__name__)

    async def download(self, attachment: Attachment) -> bytes:
        file = await self.application.bot.get_file(attachment.file_id)
        return bytes(await file.download_as_bytearray())

    def invite_link(self, code: str) -> str:
        return f"https://t.me/{self.bot_username}?start={code}"


def _delivery_error(exc: TelegramError) -> DeliveryError:
    """PTB's exceptions in the words delivery acts on (see `DeliveryError`)."""
    if isinstance(exc, RetryAfter):
        retry = exc.retry_after
        seconds = retry.total_seconds() if hasattr(retry, "total_seconds") else float(retry)
        return DeliveryError("retry_after", exc.message, retry_after=seconds)
    if isinstance(exc, ChatMigrated):
        return DeliveryError("migrated", exc.message, new_chat_id=str(exc.new_chat_id))
    if isinstance(exc, Forbidden):
        return DeliveryError("gone", exc.message)
    if isinstance(exc, BadRequest):
        gone = any(m in exc.message.lower() for m in _GONE_MESSAGES)
        return DeliveryError("gone" if gone else "rejected", exc.message)
    if isinstance(exc, (TimedOut, NetworkError)):
        return DeliveryError("transient", exc.message)
    return DeliveryError("rejected", exc.message)


class _WatchedRequest(HTTPXRequest):
    """PTB's HTTP client, telling us each time Telegram answered.

    Calls without files (every text, edit, button answer and long poll) go through aiohttp
    instead of httpx: httpx costs about 1 ms of CPU per call here (headers and body in two
    socket writes, every idle pooled connection's socket checked before each request; a
    button press makes two calls), aiohttp a fraction of it (bench/README.md). The request
    is the same (form-encoded parameters, PTB's User-Agent), and PTB reads the answer and
    raises its errors exactly as before; a failed connection or a timeout is PTB's
    `NetworkError` or `TimedOut`, as with httpx. Uploads keep PTB's own httpx path.
    """

    def __init__(self, on_ok: Callable[[], None], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._on_ok = on_ok
        verify = kwargs.get("httpx_kwargs", {}).get("verify")
        self._ssl: ssl.SSLContext | bool = verify if isinstance(verify, ssl.SSLContext) else True
        self._pool_size = int(kwargs.get("connection_pool_size", 1))
        self._session: aiohttp.ClientSession | None = None

    def _aiohttp(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._pool_size, ssl=self._ssl),
                headers={"User-Agent": self.USER_AGENT},
                skip_auto_headers=("Accept-Encoding",),
            )
        return self._session

    async def shutdown(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
        await super().shutdown()

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: ODVInput[float] = DEFAULT_NONE,
        write_timeout: ODVInput[float] = DEFAULT_NONE,
        connect_timeout: ODVInput[float] = DEFAULT_NONE,
        pool_timeout: ODVInput[float] = DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        if request_data is not None and request_data.contains_files:
            code, payload = await super().do_request(
                url, method, request_data, read_timeout=read_timeout,
                write_timeout=write_timeout, connect_timeout=connect_timeout,
                pool_timeout=pool_timeout,
            )
        else:
            code, payload = await self._plain(
                url, method, request_data, read_timeout, connect_timeout, pool_timeout,
            )
        if 200 <= code < 300:
            self._on_ok()
        return code, payload

    async def _plain(
        self,
        url: str,
        method: str,
        request_data: RequestData | None,
        read_timeout: ODVInput[float],
        connect_timeout: ODVInput[float],
        pool_timeout: ODVInput[float],
    ) -> tuple[int, bytes]:
        if self._client.is_closed:
            raise RuntimeError("This HTTPXRequest is not initialized!")
        timeouts = self._client.timeout  # PTB's defaults, as its httpx path uses them
        read = timeouts.read if isinstance(read_timeout, DefaultValue) else read_timeout
        connect = timeouts.connect if isinstance(connect_timeout, DefaultValue) else (
            connect_timeout)
        pool = timeouts.pool if isinstance(pool_timeout, DefaultValue) else pool_timeout
        # aiohttp's `connect` covers waiting for a pooled connection and opening one.
        timeout = aiohttp.ClientTimeout(
            connect=None if connect is None or pool is None else connect + pool,
            sock_read=read,
        )
        body = None
        headers = None
        if request_data is not None:
            # What httpx sends for PTB's `data=`: the same form-encoded parameters.
            body = urlencode(request_data.json_parameters).encode()
            headers = _FORM
        try:
            async with self._aiohttp().request(
                method, url, data=body, headers=headers, timeout=timeout,
            ) as response:
                return response.status, await response.read()
        except TimeoutError as err:
            raise TimedOut from err
        except aiohttp.ClientError as err:
            raise NetworkError(f"aiohttp.{err.__class__.__name__}: {err}") from err


_FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def _chat_id(chat_id: str) -> int | str:
    return int(chat_id) if chat_id.lstrip("-").isdigit() else chat_id


def _text_payload(target: int | str, message: Outgoing) -> JSONDict:
    """sendMessage / editMessageText parameters as the Bot API takes them."""
    payload: JSONDict = {
        "chat_id": target, "text": message.text, "parse_mode": ParseMode.HTML.value,
        "link_preview_options": {"is_disabled": True},
    }
    if message.buttons:
        payload["reply_markup"] = {"inline_keyboard": [
            [{"text": b.label, "url": b.url} if b.url
             else {"text": b.label, "callback_data": b.payload} for b in row]
            for row in message.buttons
        ]}
    return payload


def _markup(message: Outgoing) -> InlineKeyboardMarkup | None:
    if not message.buttons:
        return None
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(b.label, url=b.url) if b.url
          else InlineKeyboardButton(b.label, callback_data=b.payload) for b in row]
         for row in message.buttons]
    )


def _sender(user: Any) -> Sender:
    return Sender(
        user_id=str(user.id), name=user.full_name or "", username=user.username or "",
        locale=(user.language_code or "")[:2],
    )


def _chat(message: Message) -> Chat:
    kind: ChatKind = "private" if message.chat.type == "private" else "group"
    title = message.chat.title or message.chat.full_name or ""
    return Chat(str(message.chat.id), kind, title)


def _parse_command(
    text: str, entities: Any
) -> tuple[str | None, tuple[str, ...], str | None]:
    """`/lienket@cds_bot TDP05` → ("lienket", ("TDP05",), "cds_bot")."""
    first = next((e for e in entities if e.offset == 0), None)
    if first is None or first.type != MessageEntity.BOT_COMMAND:
        return None, (), None
    word = text[1 : first.length]
    name, _, target = word.partition("@")
    args = tuple(text[first.length :].split())
    return name.lower(), args, target or None


def _attachments(message: Message) -> tuple[Attachment, ...]:
    if message.document is not None:
        doc = message.document
        return (
            Attachment(
                kind="document", filename=doc.file_name or "", mime_type=doc.mime_type or "",
                file_id=doc.file_id, size=doc.file_size or 0,
            ),
        )
    if message.photo:
        best = message.photo[-1]
        return (Attachment(kind="photo", file_id=best.file_id, size=best.file_size or 0),)
    return ()
