"""The aiohttp server: platform webhooks (secret checked), the health check and the
Prometheus metrics (outbox backlog and open feedback computed at each scrape)."""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from bot.db import Database
from bot.metrics import Metrics
from bot.services import dashboard as dashboard_data

log = logging.getLogger(__name__)

MAX_WEBHOOK_BYTES = 1_000_000
# A due delivery waiting longer than this means the outbox workers are stuck or too slow.
OUTBOX_STALE_SECONDS = 15 * 60


@dataclass(frozen=True)
class Webhook:
    """One platform's endpoint: where it posts, the header with the secret, what to feed."""

    path: str
    header: str
    secret: str
    feed: Callable[[dict[str, Any]], Awaitable[None]]
    # A signature check over the raw body (Zalo OA), used instead of the header's secret.
    verify: Callable[[Mapping[str, str], bytes], bool] | None = None


class WebServer:
    def __init__(
        self,
        db: Database,
        metrics: Metrics,
        webhooks: list[Webhook],
        *,
        host: str,
        port: int,
        platforms: tuple[str, ...] = (),
        install: Callable[[web.Application], None] | None = None,
    ) -> None:
        self._db = db
        self._metrics = metrics
        self._platforms = platforms
        self._host = host
        self._port = port
        self.app = web.Application(client_max_size=MAX_WEBHOOK_BYTES)
        for hook in webhooks:
            self.app.router.add_post(hook.path, self._webhook_handler(hook))
        self.app.router.add_get("/healthz", self._healthz)
        self.app.router.add_get("/metrics", self._metrics_page)
        if install is not None:
            install(self.app)
        self._runner: web.AppRunner | None = None
        self.port = port

    def _webhook_handler(
        self, hook: Webhook
    ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def handle(request: web.Request) -> web.StreamResponse:
            raw = await request.read()
            if hook.verify is not None:
                trusted = hook.verify(request.headers, raw)
            else:
                given = request.headers.get(hook.header, "")
                trusted = hmac.compare_digest(given.encode(), hook.secret.encode())
            if not trusted:
                log.warning("webhook %s: wrong secret from %s", hook.path, request.remote)
                return web.json_response({"ok": False}, status=403)
            try:
                payload = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
                # RecursionError: JSON nested thousands deep, sent to crash a parser.
                return web.json_response({"ok": False, "error": "bad json"}, status=400)
            if not isinstance(payload, dict):
                return web.json_response({"ok": False, "error": "bad update"}, status=400)
            try:
                await hook.feed(payload)
            except (KeyError, TypeError, ValueError, AttributeError, RecursionError) as exc:
                # Malformed input is expected from the internet: one line, no traceback, and
                # a 200 so the platform does not retry it forever.
                log.warning("webhook %s: unreadable update skipped (%s)", hook.path,
                            type(exc).__name__)
            except Exception:
                log.exception("webhook %s: cannot read update", hook.path)
            return web.json_response({"ok": True})

        return handle

    async def _healthz(self, request: web.Request) -> web.Response:
        """Healthy when the database answers and the outbox keeps up; each platform's last
        good exchange is shown (an idle platform is not a failure)."""
        database = await self._db.ping()
        last = self._metrics.last_success
        down = dict(self._metrics.down)
        platforms: dict[str, dict[str, Any]] = {
            name: {"last_success": last[name].isoformat() if name in last else None}
            for name in self._platforms
        }
        for name, item in platforms.items():
            if name in down:
                item["problem"] = down[name]
        outbox: dict[str, Any] = {"depth": None, "oldest_due_seconds": None}
        outbox_ok = False
        if database:
            try:
                backlog = await dashboard_data.outbox_backlog(self._db, self._metrics.now())
            except Exception:
                log.warning("healthz: cannot read the outbox", exc_info=True)
            else:
                outbox = {"depth": backlog.depth,
                          "oldest_due_seconds": round(backlog.oldest_seconds)}
                outbox_ok = backlog.oldest_seconds < OUTBOX_STALE_SECONDS
        ok = database and outbox_ok and not down
        body: dict[str, Any] = {"ok": ok, "database": database, "platforms": platforms,
                                "outbox": {**outbox, "ok": outbox_ok}}
        if "database" in down:
            body["database_problem"] = down["database"]
        return web.json_response(body, status=200 if ok else 503)

    async def _metrics_page(self, request: web.Request) -> web.Response:
        await self._scrape_gauges()
        return web.Response(
            body=self._metrics.render(),
            headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"},
        )

    async def _scrape_gauges(self) -> None:
        """Figures read from the database at each scrape (several instances agree on them)."""
        metrics = self._metrics
        now = metrics.now()
        try:
            backlog = await dashboard_data.outbox_backlog(self._db, now)
            load = await dashboard_data.feedback_load(self._db, now)
        except Exception:
            log.warning("metrics: cannot read the database", exc_info=True)
            return
        metrics.gauge("cds_outbox_due", "Deliveries due now and not yet sent").set(backlog.depth)
        metrics.gauge(
            "cds_outbox_oldest_due_seconds", "Age of the oldest due delivery, in seconds"
        ).set(backlog.oldest_seconds)
        metrics.gauge("cds_feedback_open", "Feedback tickets open (all wards)").set(load.open)
        metrics.gauge(
            "cds_feedback_overdue", "Open feedback tickets past their due time (all wards)"
        ).set(load.overdue)

    async def start(self) -> None:
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port)
        await site.start()
        server = site._server  # aiohttp has no public accessor for the bound port
        sockets = getattr(server, "sockets", None)
        if sockets:
            self.port = int(sockets[0].getsockname()[1])
        log.info("web: listening on http://%s:%s", self._host, self.port)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
