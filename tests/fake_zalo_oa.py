"""A fake Zalo OA Open API + OAuth server: user and group messages, token rotation.

As the sources say (shared/PLATFORMS.md): a refresh token is single-use and dies after
3 months (`-14020`, `kill_refresh_token()`); sends can be refused with the OA's codes
(`fail_next(-230, ...)`: no interaction in 7 days; `-213`: contested meaning)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class FakeZaloOA:
    app_secret: str = "app-secret-key"
    access_token: str = "access-1"
    refresh_token: str = "refresh-1"
    sent: list[dict[str, Any]] = field(default_factory=list)
    refreshes: int = 0
    refresh_dead: bool = False
    failures: list[tuple[int, str, str | None]] = field(default_factory=list)
    _counter: itertools.count[int] = field(default_factory=lambda: itertools.count(2))
    _runner: web.AppRunner | None = None
    port: int = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> FakeZaloOA:
        app = web.Application()
        app.router.add_post("/v3.0/oa/message/cs", self._send)
        app.router.add_post("/v3.0/oa/group/message", self._send)
        app.router.add_post("/v4/oa/access_token", self._refresh)
        self._runner = web.AppRunner(app, handle_signals=False)
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

    def fail_next(self, code: int, message: str, recipient: str | None = None) -> None:
        self.failures.append((code, message, recipient))

    def kill_refresh_token(self) -> None:
        """The refresh token was used, or is older than 3 months: only re-authorising helps."""
        self.refresh_dead = True
        self.expire_access_token()

    def expire_access_token(self) -> None:
        self.access_token = f"access-{next(self._counter)}-unknown-to-the-bot"

    async def _send(self, request: web.Request) -> web.Response:
        if request.headers.get("access_token") != self.access_token:
            return web.json_response({"error": -216, "message": "Access token is invalid"})
        body = await request.json()
        kind = "group" if request.path.endswith("group/message") else "user"
        to = body["recipient"].get("user_id") or body["recipient"].get("group_id")
        for failure in self.failures:
            if failure[2] in (None, to):
                self.failures.remove(failure)
                return web.json_response({"error": failure[0], "message": failure[1]})
        self.sent.append({"kind": kind, **body})
        return web.json_response(
            {"error": 0, "message": "Success", "data": {"message_id": f"m{len(self.sent)}"}}
        )

    async def _refresh(self, request: web.Request) -> web.Response:
        form = await request.post()
        if self.refresh_dead:
            return web.json_response({"error": -14020, "message": "Refresh token is invalid"})
        if request.headers.get("secret_key") != self.app_secret:
            return web.json_response({"error": -14014, "message": "Invalid secret key"})
        if form.get("refresh_token") != self.refresh_token or form.get("grant_type") != "refresh_token":
            return web.json_response({"error": -14002, "message": "Invalid refresh token"})
        n = next(self._counter)
        self.access_token, self.refresh_token = f"access-{n}", f"refresh-{n}"
        self.refreshes += 1
        return web.json_response({
            "access_token": self.access_token, "refresh_token": self.refresh_token,
            "expires_in": "90000",
        })

    def texts_to(self, recipient: str) -> list[str]:
        return [
            str(m["message"]["text"]) for m in self.sent
            if recipient in (m["recipient"].get("user_id"), m["recipient"].get("group_id"))
        ]
