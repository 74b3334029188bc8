"""A fake Telegram Bot API server on 127.0.0.1 that the real python-telegram-bot talks to.

It answers like api.telegram.org (`{"ok": true, "result": ...}` or `{"ok": false,
"error_code", "description", "parameters"}` with the matching HTTP status), long-polls
getUpdates, keeps the bot's messages per chat so edits work, records every call for
assertions, and can be told to fail (429 with retry_after, 403, 400, 5xx, migration).
"""

from __future__ import annotations

import asyncio
import html
import itertools
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class UploadedFile:
    filename: str
    content_type: str
    data: bytes


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    files: dict[str, UploadedFile] = field(default_factory=dict)


@dataclass
class _Failure:
    method: str
    chat_id: str | None
    error_code: int
    description: str
    retry_after: int | None
    migrate_to_chat_id: int | None
    times: int


SEND_METHODS = {"sendMessage": "text", "sendPhoto": "photo", "sendDocument": "document",
                "sendPoll": "poll"}


class FakeTelegram:
    def __init__(
        self, token: str = "123456:TEST-TOKEN", bot_username: str = "cds_test_bot",
        bot_id: int = 123456, *, enforce_limits: bool = False, port: int = 0,
        now: Callable[[], float] | None = None,
    ) -> None:
        self.token = token
        self._now = now or time.monotonic  # the limits' time: the bot's virtual time in tests
        self.bot_username = bot_username
        self.bot_id = bot_id
        self.enforce_limits = enforce_limits
        self.calls: list[Call] = []
        self._sends: dict[str, list[Call]] = {}  # chat id -> its send calls (tests poll often)
        self.webhook: dict[str, Any] = {}
        self.commands: dict[str, list[dict[str, Any]]] = {}
        self._updates: list[dict[str, Any]] = []
        self._update_ids = itertools.count(1)
        self._message_ids: dict[str, itertools.count[int]] = {}
        self._messages: dict[tuple[str, int], dict[str, Any]] = {}
        self._files: dict[str, tuple[str, bytes]] = {}
        self._failures: list[_Failure] = []
        self._blocked: dict[str, str] = {}
        self._migrated: dict[str, int] = {}
        self._member_status: dict[tuple[str, str], str] = {}
        self._chats: dict[str, dict[str, Any]] = {}
        self._changed = asyncio.Condition()
        self._new_update = asyncio.Event()
        self._sent_times: list[float] = []
        self._sent_per_chat: dict[str, list[float]] = {}
        self._runner: web.AppRunner | None = None
        self._closing = False
        self.port = port

    # --- lifecycle ------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/bot"

    @property
    def base_file_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/file/bot"

    async def __aenter__(self) -> FakeTelegram:
        app = web.Application(client_max_size=60 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        app.router.add_get("/file/bot{token}/{path:.*}", self._download)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.2)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await site.start()
        sockets = getattr(site._server, "sockets", None)
        assert sockets
        self.port = int(sockets[0].getsockname()[1])
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._closing = True
        self._new_update.set()
        if self._runner is not None:
            await self._runner.cleanup()

    # --- injecting updates ------------------------------------------------------------------
    def _push(self, update: dict[str, Any], queue: bool) -> dict[str, Any]:
        update = {"update_id": next(self._update_ids), **update}
        if queue:
            self._updates.append(update)
            self._new_update.set()
        return update

    def raw_update(self, update: dict[str, Any]) -> dict[str, Any]:
        """Queue an update exactly as given (plus its id), e.g. one missing a field."""
        return self._push(update, True)

    def _user(self, user_id: int, first_name: str, last_name: str | None = None,
              username: str | None = None) -> dict[str, Any]:
        user: dict[str, Any] = {"id": user_id, "is_bot": False, "first_name": first_name,
                                "language_code": "vi"}
        if last_name:
            user["last_name"] = last_name
        if username:
            user["username"] = username
        return user

    def _chat(self, chat_id: int, user: dict[str, Any], chat_type: str,
              title: str | None) -> dict[str, Any]:
        if chat_type == "private":
            return {"id": chat_id, "type": "private", "first_name": user["first_name"]}
        return {"id": chat_id, "type": chat_type, "title": title or f"Nhóm {chat_id}"}

    def message(
        self, chat_id: int, user_id: int, text: str, *, chat_type: str = "private",
        chat_title: str | None = None, first_name: str = "An", last_name: str | None = None,
        username: str | None = None, reply_to_bot: bool | int = False, queue: bool = True,
    ) -> dict[str, Any]:
        user = self._user(user_id, first_name, last_name, username)
        message: dict[str, Any] = {
            "message_id": self._next_message_id(str(chat_id)),
            "from": user, "chat": self._chat(chat_id, user, chat_type, chat_title),
            "date": int(time.time()), "text": text,
        }
        entities = _entities(text)
        if entities:
            message["entities"] = entities
        if reply_to_bot is not False:  # True: the bot's message 1; a number: that message
            replied = 1 if reply_to_bot is True else int(reply_to_bot)
            message["reply_to_message"] = {
                "message_id": replied, "date": int(time.time()), "chat": message["chat"],
                "from": self._bot_user(), "text": "…",
            }
        return self._push({"message": message}, queue)

    def callback(
        self, chat_id: int, user_id: int, message_id: int, data: str, *,
        chat_type: str = "private", queue: bool = True,
    ) -> dict[str, Any]:
        user = self._user(user_id, "An")
        stored = self._messages.get((str(chat_id), int(message_id)))
        message = stored or {
            "message_id": message_id, "date": int(time.time()),
            "chat": self._chat(chat_id, user, chat_type, None), "from": self._bot_user(),
            "text": "…",
        }
        query = {
            "id": f"cbq-{next(self._update_ids)}", "from": user, "message": message,
            "chat_instance": f"ci-{chat_id}", "data": data,
        }
        return self._push({"callback_query": query}, queue)

    def document_message(
        self, chat_id: int, user_id: int, file_name: str, content: bytes, mime_type: str,
        caption: str | None = None, *, chat_type: str = "private",
    ) -> dict[str, Any]:
        user = self._user(user_id, "An")
        file_id = f"doc-{len(self._files) + 1}"
        self._files[file_id] = (f"documents/{file_name}", content)
        message: dict[str, Any] = {
            "message_id": self._next_message_id(str(chat_id)), "from": user,
            "chat": self._chat(chat_id, user, chat_type, None), "date": int(time.time()),
            "document": {"file_id": file_id, "file_unique_id": file_id, "file_name": file_name,
                         "mime_type": mime_type, "file_size": len(content)},
        }
        if caption:
            message["caption"] = caption
        return self._push({"message": message}, True)

    def photo_message(self, chat_id: int, user_id: int, content: bytes,
                      caption: str | None = None) -> dict[str, Any]:
        user = self._user(user_id, "An")
        file_id = f"photo-{len(self._files) + 1}"
        self._files[file_id] = (f"photos/{file_id}.jpg", content)
        message: dict[str, Any] = {
            "message_id": self._next_message_id(str(chat_id)), "from": user,
            "chat": self._chat(chat_id, user, "private", None), "date": int(time.time()),
            "photo": [{"file_id": file_id, "file_unique_id": file_id, "width": 640,
                       "height": 480, "file_size": len(content)}],
        }
        if caption:
            message["caption"] = caption
        return self._push({"message": message}, True)

    def my_chat_member(
        self, chat_id: int, user_id: int, old_status: str, new_status: str, *,
        chat_type: str = "group", chat_title: str = "Nhóm tổ",
    ) -> dict[str, Any]:
        user = self._user(user_id, "An")
        bot = {"user": self._bot_user()}
        change = {
            "chat": {"id": chat_id, "type": chat_type, "title": chat_title},
            "from": user, "date": int(time.time()),
            "old_chat_member": {**bot, "status": old_status},
            "new_chat_member": {**bot, "status": new_status},
        }
        if new_status == "kicked":
            change["new_chat_member"]["until_date"] = 0
        if new_status == "administrator":
            change["new_chat_member"].update(_admin_rights())
        return self._push({"my_chat_member": change}, True)

    def migrate_to_supergroup(self, old_chat_id: int, new_chat_id: int) -> dict[str, Any]:
        self._migrated[str(old_chat_id)] = new_chat_id
        message = {
            "message_id": self._next_message_id(str(old_chat_id)),
            "from": self._user(1, "An"), "date": int(time.time()),
            "chat": {"id": old_chat_id, "type": "group", "title": "Nhóm tổ"},
            "migrate_to_chat_id": new_chat_id,
        }
        return self._push({"message": message}, True)

    def set_chat(self, chat_id: int, chat_type: str, title: str) -> None:
        self._chats[str(chat_id)] = {"id": chat_id, "type": chat_type, "title": title}

    def set_member_status(self, chat_id: int, user_id: int, status: str) -> None:
        self._member_status[(str(chat_id), str(user_id))] = status

    # --- failures ---------------------------------------------------------------------------
    def fail_next(
        self, method: str, *, chat_id: int | str | None = None, error_code: int,
        description: str, retry_after: int | None = None, migrate_to_chat_id: int | None = None,
        times: int = 1,
    ) -> None:
        self._failures.append(_Failure(
            method, None if chat_id is None else str(chat_id), error_code, description,
            retry_after, migrate_to_chat_id, times,
        ))

    def block_chat(self, chat_id: int | str,
                   description: str = "Forbidden: bot was kicked from the group chat") -> None:
        self._blocked[str(chat_id)] = description

    # --- assertions -------------------------------------------------------------------------
    def calls_to(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    def sent_to(self, chat_id: int | str) -> list[dict[str, Any]]:
        out = []
        for call in self._sends.get(str(chat_id), ()):
            kind = SEND_METHODS[call.method]
            if "_result" in call.params:
                out.append({**call.params["_result"], "kind": kind,
                            "parse_mode": call.params.get("parse_mode"),
                            "reply_markup": call.params.get("reply_markup"),
                            "chat_id": call.params.get("chat_id")})
        return out

    async def wait_for_call(self, method: str, predicate: Any = None,
                            within: float = 5.0) -> Call:
        def found() -> Call | None:
            return next((c for c in self.calls if c.method == method
                         and (predicate is None or predicate(c))), None)

        async def wait() -> Call:
            async with self._changed:
                await self._changed.wait_for(lambda: found() is not None)
            call = found()
            assert call is not None
            return call

        try:
            return await asyncio.wait_for(wait(), within)
        except TimeoutError:
            raise AssertionError(f"no {method} call; recent: {self._recent()}") from None

    async def wait_sent(self, chat_id: int | str, count: int = 1,
                        within: float = 5.0) -> list[dict[str, Any]]:
        async def wait() -> None:
            async with self._changed:
                await self._changed.wait_for(lambda: len(self.sent_to(chat_id)) >= count)

        try:
            await asyncio.wait_for(wait(), within)
        except TimeoutError:
            raise AssertionError(
                f"expected {count} messages to {chat_id}, got {len(self.sent_to(chat_id))}; "
                f"recent: {self._recent()}"
            ) from None
        return self.sent_to(chat_id)

    def _recent(self) -> list[tuple[str, dict[str, Any]]]:
        return [(c.method, {k: v for k, v in c.params.items() if k != "_result"})
                for c in self.calls[-8:]]

    def last_message(self, chat_id: int | str) -> dict[str, Any]:
        """The bot's newest message in a chat as it looks now (after edits)."""
        mine = [m for (chat, _), m in self._messages.items() if chat == str(chat_id)]
        assert mine, f"the bot sent nothing to {chat_id}"
        return max(mine, key=lambda m: int(m["message_id"]))

    def clear(self) -> None:
        self.calls.clear()
        self._sends.clear()

    # --- the API -----------------------------------------------------------------------------
    async def _handle(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return _error(401, "Unauthorized")
        method = request.match_info["method"]
        params, files = await _read_params(request)
        call = Call(method, params, files)
        if method != "getUpdates":
            self.calls.append(call)
            if method in SEND_METHODS:
                self._sends.setdefault(str(params.get("chat_id")), []).append(call)
        handler = getattr(self, f"_m_{method}", None)
        if handler is None:
            return _error(404, "Not Found")
        failure = self._take_failure(method, str(params.get("chat_id", "")))
        if failure is not None:
            response = _error(failure.error_code, failure.description,
                              retry_after=failure.retry_after,
                              migrate_to_chat_id=failure.migrate_to_chat_id)
        else:
            response = await self._guard_and_run(method, call, handler)
        async with self._changed:
            self._changed.notify_all()
        return response

    async def _guard_and_run(self, method: str, call: Call, handler: Any) -> web.Response:
        chat = str(call.params.get("chat_id", ""))
        if method in SEND_METHODS or method.startswith("edit") or method == "pinChatMessage":
            if chat in self._blocked:
                return _error(403, self._blocked[chat])
            if chat in self._migrated:
                return _error(400, "Bad Request: group chat was upgraded to a supergroup chat",
                              migrate_to_chat_id=self._migrated[chat])
        if method in SEND_METHODS and self.enforce_limits:
            limited = self._rate_limited(chat)
            if limited is not None:
                return _error(429, f"Too Many Requests: retry after {limited}",
                              retry_after=limited)
        refused = refusal(method, call.params)
        if refused is not None:
            return _error(400, refused)
        result = await handler(call)
        if isinstance(result, web.Response):
            return result
        if method in SEND_METHODS:
            call.params["_result"] = result
        return web.json_response({"ok": True, "result": result})

    def _rate_limited(self, chat: str) -> int | None:
        """Telegram's limits: about 30 messages per second overall, 20 per minute per group."""
        now = self._now()
        self._sent_times = [t for t in self._sent_times if now - t < 1.0]
        if len(self._sent_times) >= 30:
            return 1
        if chat.startswith("-"):
            recent = [t for t in self._sent_per_chat.get(chat, []) if now - t < 60.0]
            self._sent_per_chat[chat] = recent
            if len(recent) >= 20:
                return int(60 - (now - recent[0])) + 1
            recent.append(now)
        self._sent_times.append(now)
        return None

    def _take_failure(self, method: str, chat_id: str) -> _Failure | None:
        for failure in self._failures:
            if failure.method == method and failure.chat_id in (None, chat_id):
                failure.times -= 1
                if failure.times <= 0:
                    self._failures.remove(failure)
                return failure
        return None

    def _bot_user(self) -> dict[str, Any]:
        return {"id": self.bot_id, "is_bot": True, "first_name": "CDS Bot",
                "username": self.bot_username}

    def _next_message_id(self, chat_id: str) -> int:
        counter = self._message_ids.setdefault(chat_id, itertools.count(1))
        return next(counter)

    def _store(self, call: Call, extra: dict[str, Any]) -> dict[str, Any]:
        chat_id = str(call.params.get("chat_id"))
        chat = self._chats.get(chat_id) or (
            {"id": int(chat_id), "type": "private", "first_name": "An"}
            if not chat_id.startswith("-") else
            {"id": int(chat_id), "type": "group", "title": f"Nhóm {chat_id}"}
        )
        message: dict[str, Any] = {
            "message_id": self._next_message_id(chat_id), "date": int(time.time()),
            "chat": chat, "from": self._bot_user(), **extra,
        }
        if call.params.get("reply_markup"):
            message["reply_markup"] = call.params["reply_markup"]
        self._messages[(chat_id, message["message_id"])] = message
        return message

    async def _m_getMe(self, call: Call) -> Any:
        return {**self._bot_user(), "can_join_groups": True,
                "can_read_all_group_messages": False, "supports_inline_queries": False}

    async def _m_getUpdates(self, call: Call) -> Any:
        offset = int(call.params.get("offset") or 0)
        if offset:
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
        limit = int(call.params.get("limit") or 100)
        timeout = float(call.params.get("timeout") or 0)
        if self.webhook.get("url"):
            return _error(409, "Conflict: can't use getUpdates method while webhook is active")
        deadline = time.monotonic() + timeout
        while not self._updates and not self._closing:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            self._new_update.clear()
            try:
                await asyncio.wait_for(self._new_update.wait(), remaining)
            except TimeoutError:
                break
        return self._updates[:limit]

    async def _m_deleteWebhook(self, call: Call) -> Any:
        self.webhook = {}
        return True

    async def _m_setWebhook(self, call: Call) -> Any:
        self.webhook = dict(call.params)
        return True

    async def _m_getWebhookInfo(self, call: Call) -> Any:
        return {"url": self.webhook.get("url", ""), "has_custom_certificate": False,
                "pending_update_count": len(self._updates)}

    async def _m_sendMessage(self, call: Call) -> Any:
        text = str(call.params.get("text", ""))
        if not text.strip():
            return _error(400, "Bad Request: message text is empty")
        return self._store(call, {"text": text})

    async def _m_sendPhoto(self, call: Call) -> Any:
        extra: dict[str, Any] = {"photo": [{"file_id": "p1", "file_unique_id": "p1",
                                            "width": 600, "height": 600}]}
        if call.params.get("caption"):
            extra["caption"] = call.params["caption"]
        return self._store(call, extra)

    async def _m_sendDocument(self, call: Call) -> Any:
        upload = call.files.get("document")
        extra: dict[str, Any] = {"document": {
            "file_id": "d1", "file_unique_id": "d1",
            "file_name": upload.filename if upload else "file",
        }}
        if call.params.get("caption"):
            extra["caption"] = call.params["caption"]
        return self._store(call, extra)

    async def _m_sendPoll(self, call: Call) -> Any:
        options = call.params.get("options") or []
        return self._store(call, {"poll": {
            "id": "poll1", "question": call.params.get("question", ""),
            "options": [{"text": o if isinstance(o, str) else o.get("text", ""),
                         "voter_count": 0} for o in options],
            "total_voter_count": 0, "is_closed": False, "is_anonymous": True,
            "type": "regular", "allows_multiple_answers": False,
        }})

    async def _m_stopPoll(self, call: Call) -> Any:
        return {"id": "poll1", "question": "", "options": [], "total_voter_count": 0,
                "is_closed": True, "is_anonymous": True, "type": "regular",
                "allows_multiple_answers": False}

    async def _m_editMessageText(self, call: Call) -> Any:
        key = (str(call.params.get("chat_id")), int(call.params.get("message_id") or 0))
        stored = self._messages.get(key)
        if stored is None:
            return _error(400, "Bad Request: message to edit not found")
        if stored.get("text") == call.params.get("text") and stored.get(
            "reply_markup"
        ) == call.params.get("reply_markup"):
            return _error(400, "Bad Request: message is not modified: specified new message "
                               "content and reply markup are exactly the same")
        stored["text"] = call.params.get("text")
        stored["reply_markup"] = call.params.get("reply_markup")
        return stored

    async def _m_editMessageReplyMarkup(self, call: Call) -> Any:
        key = (str(call.params.get("chat_id")), int(call.params.get("message_id") or 0))
        stored = self._messages.get(key)
        if stored is None:
            return _error(400, "Bad Request: message to edit not found")
        stored["reply_markup"] = call.params.get("reply_markup")
        return stored

    async def _m_answerCallbackQuery(self, call: Call) -> Any:
        return True

    async def _m_sendChatAction(self, call: Call) -> Any:
        return True

    async def _m_setMyCommands(self, call: Call) -> Any:
        scope = call.params.get("scope") or {"type": "default"}
        self.commands[str(scope.get("type"))] = list(call.params.get("commands") or [])
        return True

    async def _m_getMyCommands(self, call: Call) -> Any:
        scope = call.params.get("scope") or {"type": "default"}
        return self.commands.get(str(scope.get("type")), [])

    async def _m_deleteMyCommands(self, call: Call) -> Any:
        scope = call.params.get("scope") or {"type": "default"}
        self.commands.pop(str(scope.get("type")), None)
        return True

    async def _m_getChat(self, call: Call) -> Any:
        chat_id = str(call.params.get("chat_id"))
        chat = self._chats.get(chat_id)
        if chat is None:
            return _error(400, "Bad Request: chat not found")
        return {**chat, "accent_color_id": 0, "max_reaction_count": 11}

    async def _m_getChatMember(self, call: Call) -> Any:
        chat_id, user_id = str(call.params.get("chat_id")), str(call.params.get("user_id"))
        status = self._member_status.get((chat_id, user_id), "member")
        user = self._bot_user() if user_id == str(self.bot_id) else self._user(int(user_id), "An")
        member: dict[str, Any] = {"user": user, "status": status}
        if status == "administrator":
            member.update(_admin_rights())
        if status == "kicked":
            member["until_date"] = 0
        return member

    async def _m_getChatAdministrators(self, call: Call) -> Any:
        chat_id = str(call.params.get("chat_id"))
        admins = [
            {"user": self._user(int(u), "An"), "status": s, **(_admin_rights() if
             s == "administrator" else {"is_anonymous": False})}
            for (c, u), s in self._member_status.items()
            if c == chat_id and s in ("administrator", "creator")
        ]
        return admins

    async def _m_pinChatMessage(self, call: Call) -> Any:
        return True

    async def _m_unpinChatMessage(self, call: Call) -> Any:
        return True

    async def _m_deleteMessage(self, call: Call) -> Any:
        return True

    async def _m_getFile(self, call: Call) -> Any:
        file_id = str(call.params.get("file_id"))
        if file_id not in self._files:
            return _error(400, "Bad Request: invalid file_id")
        path, data = self._files[file_id]
        return {"file_id": file_id, "file_unique_id": file_id, "file_size": len(data),
                "file_path": path}

    async def _m_close(self, call: Call) -> Any:
        return True

    async def _m_logOut(self, call: Call) -> Any:
        return True

    async def _download(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return web.Response(status=401)
        path = request.match_info["path"]
        for stored_path, data in self._files.values():
            if stored_path == path:
                return web.Response(body=data)
        return web.Response(status=404)


# --- what Telegram refuses, always on (PLATFORMS.md) ------------------------------------------
MAX_BUTTONS, MAX_ROW, MAX_DATA, MAX_MARKUP_JSON = 100, 8, 64, 10_000
MAX_TEXT, MAX_CAPTION = 4096, 1024
# The tags Telegram's HTML parse mode knows (core.telegram.org/bots/api#html-style).
HTML_TAGS = frozenset({"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "span",
                       "tg-spoiler", "a", "code", "pre", "blockquote", "tg-emoji"})
_TAG = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9-]*)((?:\s[^<>]*)?)>")
_ENTITY = re.compile(r"&(?:lt|gt|amp|quot|#[0-9]+|#x[0-9a-fA-F]+);")


def refusal(method: str, params: dict[str, Any]) -> str | None:
    """The 400 description Telegram would answer this call with, or None if it is fine."""
    if method not in ("sendMessage", "editMessageText", "editMessageReplyMarkup",
                      "sendPhoto", "sendDocument", "editMessageCaption"):
        return None
    markup = params.get("reply_markup")
    if isinstance(markup, str):
        markup = _decode(markup)
    if isinstance(markup, dict):
        problem = markup_refusal(markup)
        if problem is not None:
            return problem
    key, limit = (("text", MAX_TEXT) if method in ("sendMessage", "editMessageText")
                  else ("caption", MAX_CAPTION))
    text = params.get(key)
    if not isinstance(text, str):
        return None
    if str(params.get("parse_mode", "")).upper() == "HTML":
        try:
            text = parse_html(text)
        except HtmlRefused as exc:
            return f"Bad Request: can't parse entities: {exc}"
    if len(text) > limit:
        return ("Bad Request: message is too long" if key == "text"
                else "Bad Request: message caption is too long")
    return None


def markup_refusal(markup: dict[str, Any]) -> str | None:
    rows = markup.get("inline_keyboard")
    if not isinstance(rows, list):
        return None
    if sum(len(r) for r in rows) > MAX_BUTTONS or any(len(r) > MAX_ROW for r in rows) or \
            len(json.dumps(markup, ensure_ascii=False).encode()) > MAX_MARKUP_JSON:
        return "Bad Request: reply markup is too long"
    for row in rows:
        for button in row:
            if not str(button.get("text", "")).strip():
                return "Bad Request: text buttons are unallowed in the inline keyboard"
            if "url" in button:
                continue
            data = button.get("callback_data")
            if not isinstance(data, str) or not 1 <= len(data.encode()) <= MAX_DATA:
                return "Bad Request: BUTTON_DATA_INVALID"
    return None


class HtmlRefused(ValueError):
    """Telegram would answer "can't parse entities" with this reason."""


def parse_html(text: str) -> str:
    """The visible text of a message in Telegram's HTML mode; `HtmlRefused` when Telegram
    would refuse it (an unknown, unclosed or crossed tag, a stray "<")."""
    out: list[str] = []
    stack: list[str] = []
    pos = 0
    while pos < len(text):
        lt = text.find("<", pos)
        chunk = text[pos:] if lt < 0 else text[pos:lt]
        out.append(_ENTITY.sub(lambda m: html.unescape(m.group()), chunk))
        if lt < 0:
            break
        offset = len(text[:lt].encode())
        match = _TAG.match(text, lt)
        if match is None:
            raise HtmlRefused(f"Unsupported start tag at byte offset {offset}")
        closing, tag = match.group(1) == "/", match.group(2).lower()
        if tag not in HTML_TAGS:
            raise HtmlRefused(f'Unsupported start tag "{tag}" at byte offset {offset}')
        if closing:
            if not stack:
                raise HtmlRefused(f'Unexpected end tag at byte offset {offset}')
            if stack[-1] != tag:
                raise HtmlRefused(f'Can\'t find end tag corresponding to start tag "{stack[-1]}"')
            stack.pop()
        else:
            stack.append(tag)
        pos = match.end()
    if stack:
        raise HtmlRefused(f'Can\'t find end tag corresponding to start tag "{stack[-1]}"')
    return "".join(out)


def _utf16(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _entities(text: str) -> list[dict[str, Any]]:
    """As Telegram marks them: offsets and lengths in UTF-16 code units."""
    found: list[dict[str, Any]] = []
    if text.startswith("/"):
        found.append({"type": "bot_command", "offset": 0, "length": _utf16(text.split()[0])})
    for match in re.finditer(r"@\w+", text):
        found.append({"type": "mention", "offset": _utf16(text[: match.start()]),
                      "length": _utf16(match.group())})
    return found


def _admin_rights() -> dict[str, Any]:
    return {
        "can_be_edited": False, "is_anonymous": False, "can_manage_chat": True,
        "can_delete_messages": True, "can_manage_video_chats": True,
        "can_restrict_members": True, "can_promote_members": False, "can_change_info": True,
        "can_invite_users": True, "can_post_stories": False, "can_edit_stories": False,
        "can_delete_stories": False, "can_pin_messages": True,
    }


async def _read_params(request: web.Request) -> tuple[dict[str, Any], dict[str, UploadedFile]]:
    params: dict[str, Any] = {}
    files: dict[str, UploadedFile] = {}
    if request.content_type == "application/json":
        body = await request.json()
        return (body if isinstance(body, dict) else {}), files
    if request.content_type == "multipart/form-data":
        reader = await request.multipart()
        while True:
            part = await reader.next()
            if part is None:
                break
            if not hasattr(part, "name") or part.name is None:
                continue
            if getattr(part, "filename", None):
                data = await part.read()  # type: ignore[union-attr]
                files[part.name] = UploadedFile(
                    part.filename or "", part.headers.get("Content-Type", ""), bytes(data)
                )
                params[part.name] = f"attach://{part.name}"
            else:
                params[part.name] = _decode(await part.text())  # type: ignore[union-attr]
        return params, files
    form = await request.post()
    for key, value in form.items():
        if isinstance(value, str):
            params[key] = _decode(value)
    return params, files


def _decode(value: str) -> Any:
    try:
        return json.loads(value)
    except ValueError:
        return value


def _error(code: int, description: str, *, retry_after: int | None = None,
           migrate_to_chat_id: int | None = None) -> web.Response:
    body: dict[str, Any] = {"ok": False, "error_code": code, "description": description}
    parameters: dict[str, Any] = {}
    if retry_after is not None:
        parameters["retry_after"] = retry_after
    if migrate_to_chat_id is not None:
        parameters["migrate_to_chat_id"] = migrate_to_chat_id
    if parameters:
        body["parameters"] = parameters
    return web.json_response(body, status=code if 400 <= code < 600 else 400)
