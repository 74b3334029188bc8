"""A fake Zalo Bot Platform API on 127.0.0.1, answering with Zalo's shapes and errors.

Shapes follow docs/dev/zalo-api.md: JSON POSTs to `/bot<TOKEN>/<method>`, answers
`{ok, result}` or `{ok: false, error_code, description}`; getUpdates long-polls and returns
ONE update, or error 408 when the poll ends empty; getUpdates refuses while a webhook is set.

As the sources say (shared/PLATFORMS.md), and as tests may switch on:
- `quota`: messages left this month; at 0 every send is refused `429 Quota exceeded` until
  `refill()` (Zalo's error table: 429 is the quota, not a per-second wait);
- `internal_error()`: Zalo's `403 Internal server error`;
- `replay_consumed`: getUpdates hands the last consumed update back once more (measured by
  one client: there is no offset or acknowledgement);
- in a GROUP chat, only messages that pick the bot from the @ list reach it, and their text
  begins with "@<display name>" (`group_text`), not with the account name.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

TEXT_LIMIT = 2000


@dataclass
class ZaloCall:
    method: str
    params: dict[str, Any]


@dataclass
class _Failure:
    method: str
    error_code: int
    description: str
    chat_id: str | None
    times: int


@dataclass
class FakeZalo:
    token: str = "1234567890:zalo-test-secret"
    bot_id: str = "9876543210"
    account_name: str = "cds_zalo_bot"
    can_join_groups: bool = True
    display_name: str = "Trợ lý Phường"
    quota: int | None = None  # messages left this month; None: no limit in this test
    replay_consumed: bool = False
    _last_consumed: dict[str, Any] | None = None
    calls: list[ZaloCall] = field(default_factory=list)
    webhook: dict[str, str] = field(default_factory=dict)
    _updates: asyncio.Queue[dict[str, Any]] = field(default_factory=asyncio.Queue)
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    _failures: list[_Failure] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1001))
    _runner: web.AppRunner | None = None
    port: int = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/bot"

    async def __aenter__(self) -> FakeZalo:
        app = web.Application()
        app.router.add_post("/bot{token}/{method}", self._handle)
        # Pending long polls must not hold the shutdown for their 30 s.
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.2)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        sockets = getattr(site._server, "sockets", None)
        assert sockets
        self.port = int(sockets[0].getsockname()[1])
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    # --- what tests do -------------------------------------------------------------------
    def text(
        self, chat_id: str, user_id: str, text: str, *, group: bool = False,
        name: str = "Bà Tư", queue: bool = True,
    ) -> dict[str, Any]:
        update = {
            "event_name": "message.text.received",
            "message": {
                "from": {"id": user_id, "display_name": name, "is_bot": False},
                "chat": {"id": chat_id, "chat_type": "GROUP" if group else "PRIVATE"},
                "text": text,
                "message_id": f"in-{next(self._ids)}",
                "date": int(time.time() * 1000),
            },
        }
        if queue:
            self._updates.put_nowait(update)
        return update

    def group_text(self, chat_id: str, user_id: str, text: str, *, name: str = "Bà Tư",
                   mention: str | None = None) -> dict[str, Any]:
        """A group member picks the bot from the @ list: Zalo writes its display name."""
        return self.text(chat_id, user_id, f"@{mention or self.display_name} {text}",
                         group=True, name=name)

    def internal_error(self, chat_id: str | None = None, times: int = 1) -> None:
        self.fail_next("sendMessage", 403, "Internal server error", chat_id=chat_id,
                       times=times)

    def refill(self, messages: int | None = None) -> None:
        self.quota = messages

    def sticker(self, chat_id: str, user_id: str) -> None:
        self._updates.put_nowait({
            "event_name": "message.sticker.received",
            "message": {
                "from": {"id": user_id}, "chat": {"id": chat_id, "chat_type": "PRIVATE"},
                "sticker": "abc", "message_id": "s1", "date": int(time.time() * 1000),
            },
        })

    def fail_next(
        self, method: str, error_code: int, description: str, *, chat_id: str | None = None,
        times: int = 1,
    ) -> None:
        self._failures.append(_Failure(method, error_code, description, chat_id, times))

    def calls_to(self, method: str) -> list[ZaloCall]:
        return [c for c in self.calls if c.method == method]

    def sent_to(self, chat_id: str) -> list[dict[str, Any]]:
        return [
            c.params for c in self.calls
            if c.method in ("sendMessage", "sendPhoto") and str(c.params.get("chat_id")) == chat_id
        ]

    async def wait_sent(
        self, chat_id: str, count: int = 1, within: float = 5.0
    ) -> list[dict[str, Any]]:
        async def enough() -> None:
            async with self._changed:
                await self._changed.wait_for(lambda: len(self.sent_to(chat_id)) >= count)

        try:
            await asyncio.wait_for(enough(), within)
        except TimeoutError:
            recent = [(c.method, c.params) for c in self.calls[-8:]]
            raise AssertionError(f"expected {count} messages to {chat_id}; recent calls: {recent}") from None
        return self.sent_to(chat_id)

    # --- the API -------------------------------------------------------------------------
    async def _handle(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return web.json_response({"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401)
        method = request.match_info["method"]
        try:
            params = await request.json() if request.can_read_body else {}
        except ValueError:
            return _error(400, "Bad Request: body must be JSON")
        call = ZaloCall(method, params if isinstance(params, dict) else {})
        if method != "getUpdates":
            self.calls.append(call)
            async with self._changed:
                self._changed.notify_all()
        failure = self._take_failure(method, str(call.params.get("chat_id", "")))
        if failure is not None:
            return _error(failure.error_code, failure.description)
        if method in ("sendMessage", "sendPhoto") and self.quota is not None:
            if self.quota <= 0:
                return _error(429, "Quota exceeded")
            self.quota -= 1
        handler = getattr(self, f"_m_{method}", None)
        if handler is None:
            return _error(404, "Not Found: unknown method")
        result = await handler(call.params)
        return result if isinstance(result, web.Response) else web.json_response({"ok": True, "result": result})

    def _take_failure(self, method: str, chat_id: str) -> _Failure | None:
        for failure in self._failures:
            if failure.method == method and failure.chat_id in (None, chat_id):
                failure.times -= 1
                if failure.times <= 0:
                    self._failures.remove(failure)
                return failure
        return None

    async def _m_getMe(self, params: dict[str, Any]) -> Any:
        return {
            "id": self.bot_id, "account_name": self.account_name, "account_type": "BASIC",
            "can_join_groups": self.can_join_groups,
        }

    async def _m_getUpdates(self, params: dict[str, Any]) -> Any:
        if self.webhook.get("url"):
            return _error(400, "Bad Request: webhook is active, getUpdates is disabled")
        if self.replay_consumed and self._last_consumed is not None:
            again, self._last_consumed = self._last_consumed, None
            return again
        timeout = min(float(params.get("timeout", 30)), 30.0)
        try:
            update = await asyncio.wait_for(self._updates.get(), timeout)
        except TimeoutError:
            return _error(408, "Request timeout")
        self._last_consumed = update
        return update

    async def _m_sendMessage(self, params: dict[str, Any]) -> Any:
        text = str(params.get("text", ""))
        if not params.get("chat_id"):
            return _error(400, "Bad Request: chat_id is required")
        if not 1 <= len(text) <= TEXT_LIMIT:
            return _error(400, "Bad Request: text must be 1-2000 characters")
        return {"message_id": f"out-{next(self._ids)}", "date": int(time.time() * 1000)}

    async def _m_sendPhoto(self, params: dict[str, Any]) -> Any:
        if not str(params.get("photo", "")).startswith(("http://", "https://")):
            return _error(400, "Bad Request: photo must be a URL")
        return {"message_id": f"out-{next(self._ids)}", "date": int(time.time() * 1000)}

    async def _m_sendChatAction(self, params: dict[str, Any]) -> Any:
        return True

    async def _m_setWebhook(self, params: dict[str, Any]) -> Any:
        secret = str(params.get("secret_token", ""))
        if not 8 <= len(secret) <= 256:
            return _error(400, "Bad Request: secret_token must be 8-256 characters")
        self.webhook = {"url": str(params.get("url", "")), "secret_token": secret}
        return {"url": self.webhook["url"], "updated_at": int(time.time() * 1000)}

    async def _m_deleteWebhook(self, params: dict[str, Any]) -> Any:
        self.webhook = {}
        return {"url": "", "updated_at": int(time.time() * 1000)}

    async def _m_getWebhookInfo(self, params: dict[str, Any]) -> Any:
        return {"url": self.webhook.get("url", ""), "updated_at": int(time.time() * 1000)}


def _error(code: int, description: str) -> web.Response:
    status = code if 400 <= code < 600 else 400
    return web.json_response({"ok": False, "error_code": code, "description": description}, status=status)
