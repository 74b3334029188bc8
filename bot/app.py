"""The composition root: config → storage → texts → routes → platforms → web, on one loop."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import secrets
import signal
import time
from collections.abc import Awaitable, Callable
from contextlib import suppress
from datetime import datetime
from functools import partial
from typing import Any

from aiohttp import web as aiohttp_web

from bot.clock import Clock, Sleeper, SystemClock
from bot.config import Config
from bot.context import AppContext, Content, build_context
from bot.core import ChatEvent, Incoming, Platform, PlatformStartError
from bot.db import Database
from bot.jobs import series
from bot.jobs.contests import post_contest_news
from bot.jobs.feedback_followup import ask_if_fixed
from bot.jobs.leader import Leadership
from bot.jobs.personal_reminders import send_personal_reminders
from bot.jobs.scheduler import Job, Scheduler
from bot.lanes import Lanes
from bot.logs import Once
from bot.platforms.telegram import TelegramPlatform
from bot.platforms.zalo import ZaloApiError, ZaloPlatform
from bot.platforms.zalo_oa import ZaloOAClient, ZaloOAPlatform
from bot.platforms.zalo_oa_store import DbTokenStore
from bot.router import Router
from bot.services.platform_state import DbFlags, DbOAWindows, DbSeenIds
from bot.web.dashboard.routes import Dashboard
from bot.web.downloads import DownloadRoutes
from bot.web.server import Webhook, WebServer
from handlers import register_all  # the one import of handlers/ in bot/: route registration

log = logging.getLogger(__name__)

# Trying again to reach a platform that could not be reached at start: 5 s, 10 s, … 5 min.
RETRY_FIRST_SECONDS = 5.0
RETRY_MAX_SECONDS = 300.0


def build_router(ctx: AppContext) -> Router:
    router = Router(ctx)
    register_all(router)
    return router


def menu_commands(ctx: AppContext, router: Router) -> list[tuple[str, str, str]]:
    """(name, description, where) for the platforms' command menus, in Vietnamese."""
    return [
        (c.name, ctx.texts.label(f"commands.{c.name}.help"), c.where)
        for c in router.commands
        if c.menu or c.name == "start"
    ]


class BotApp:
    """Everything `cds-bot run` starts, and stops again in reverse order."""

    def __init__(self, config: Config, *, clock: Clock | None = None,
                 sleeper: Sleeper | None = None, content: Content | None = None) -> None:
        """`content`: `messages/` already read (tests share one copy); read here otherwise."""
        self.config = config
        self.clock = clock or SystemClock()
        # A pooled connection per update handled at a time, plus outbox workers and jobs.
        self.db = Database(config.database.url,
                           pool_size=config.bot.concurrent_updates + config.outbox.workers + 4)
        self.context = build_context(config, self.db, self.clock, sleeper=sleeper,
                                     content=content)
        self.router = build_router(self.context)
        self.telegram: TelegramPlatform | None = None
        self.zalo: ZaloPlatform | None = None
        self.zalo_oa: ZaloOAPlatform | None = None
        self.web: WebServer | None = None
        self.leadership = Leadership(self.db)
        self.lanes = Lanes(
            workers=config.bot.concurrent_updates, max_pending=config.bot.max_queued_updates,
            on_wait=self.context.metrics.update_wait_seconds.observe,
        )
        self.scheduler = Scheduler(config.bot.tz, leader=self.leadership.is_leader)
        self._retries: list[asyncio.Task[None]] = []
        self._once = Once(60)
        self.sleep: Callable[[float], Awaitable[None]] = asyncio.sleep  # tests pass their own
        for job in self.jobs():
            self.scheduler.add(job)

    def jobs(self) -> list[Job]:
        """Every periodic job of the bot (bodies in bot/jobs/); features add theirs here."""
        jobs = self.context.jobs
        return [
            Job("purge-expired-forms", jobs.housekeeping.purge_expired_forms,
                every_seconds=3600),
            Job("feedback-overdue-nudges", jobs.feedback.nudge_overdue, every_seconds=900),
            Job("feedback-ask-fixed", partial(ask_if_fixed, self.context), every_seconds=900),
            Job("personal-reminders", partial(send_personal_reminders, self.context),
                every_seconds=600),
            Job("contests", partial(post_contest_news, self.context), every_seconds=60),
            Job("campaigns", jobs.campaigns.tick, every_seconds=60),
            Job("close-polls", jobs.polls.close_due, every_seconds=60),
            Job("guide-series", partial(series.post_due, self.context), every_seconds=60),
            Job("relay-reminders", jobs.relay.tick, every_seconds=300),
        ]

    async def _incoming(self, platform: Platform, incoming: Incoming) -> None:
        """Queue the update behind its chat's earlier ones; other chats go on meanwhile."""
        await self.lanes.submit(
            (platform.name, incoming.chat.chat_id),
            lambda: self.router.dispatch(platform, incoming),
        )

    async def _chat_event(self, platform: Platform, event: ChatEvent) -> None:
        await self.lanes.submit(
            (platform.name, event.chat.chat_id),
            lambda: self.router.dispatch_chat_event(platform, event),
        )

    def _skipped(self, platform: str) -> Callable[[str], None]:
        return lambda reason: self.context.metrics.updates_skipped.labels(platform, reason).inc()

    async def start(self) -> None:
        await self.db.upgrade()
        for line in self.describe_routes():
            log.info("route: %s", line)
        webhooks: list[Webhook] = []
        if self.config.telegram.enabled:
            # Opt in to PTB's coming time periods as timedelta (RetryAfter.retry_after and
            # friends); without it every 429 warns from inside PTB. PTB reads it per call, so
            # the composition root sets it at start, never an import.
            os.environ.setdefault("PTB_TIMEDELTA", "1")
            self.telegram = TelegramPlatform(
                self.config.telegram, self._incoming, self._chat_event,
                on_skipped=self._skipped("telegram"),
            )
            self.router.attach(self.telegram)
            if self.config.telegram.mode == "webhook":
                webhooks.append(
                    Webhook(
                        path="/webhook/telegram",
                        header="X-Telegram-Bot-Api-Secret-Token",
                        secret=self.config.telegram.webhook_secret.get_secret_value(),
                        feed=self.telegram.feed_webhook,
                    )
                )
        if self.config.zalo.enabled:
            self.zalo = ZaloPlatform(
                self.config.zalo, self._incoming, clock=self.clock,
                seen=DbSeenIds(self.db, self.clock, "zalo"),
                flags=DbFlags(self.db, self.clock, "zalo"),
            )
            self.zalo.quota.on_change = self._zalo_quota_changed
            self.context.services.zalo_status.resume_hook = self.zalo.quota.resume
            self.router.attach(self.zalo)
            if self.config.zalo.mode == "webhook":
                webhooks.append(
                    Webhook(
                        path="/webhook/zalo",
                        header="X-Bot-Api-Secret-Token",
                        secret=self.config.zalo.webhook_secret.get_secret_value(),
                        feed=self.zalo.feed_webhook,
                    )
                )
        if self.config.zalo_oa.enabled:
            store = DbTokenStore(self.db, self.clock)
            client = ZaloOAClient(self.config.zalo_oa, store, self.clock)
            self.zalo_oa = ZaloOAPlatform(
                self.config.zalo_oa, self._incoming, client, clock=self.clock,
                seen=DbSeenIds(self.db, self.clock, "zalo_oa"),
                flags=DbFlags(self.db, self.clock, "zalo_oa"),
                windows=DbOAWindows(self.db, self.clock, self.config.bot.tz),
            )
            self.zalo_oa.on_reauthorize = self._oa_reauthorize
            self.router.attach(self.zalo_oa)
            webhooks.append(
                Webhook(
                    path="/webhook/zalo_oa", header="X-ZEvent-Signature", secret="",
                    feed=self.zalo_oa.feed_webhook, verify=self.zalo_oa.verify,
                )
            )
        outbox = self.context.services.outbox
        outbox.on_finished("notice", self.context.jobs.notices.finished)
        relay = self.context.services.relay_delivery
        relay.install()
        relay.on_all_delivered("notice", self.context.jobs.notices.finished)
        polling = self.config.telegram.mode != "webhook"
        if self.telegram is not None and polling:
            # Polling needs nothing below: ask for updates first (a fast start), the web
            # server and the senders start while Telegram holds the first long poll.
            await self._start_telegram(self.telegram)
        self.web = WebServer(
            self.db, self.context.metrics, webhooks, host=self.config.web.host,
            port=self.config.web.port, platforms=tuple(self.router.platforms),
            install=self._install_pages, status=self._platform_status,
        )
        await self.web.start()
        await outbox.start()
        await self.context.services.access.start()  # hear revocations from the CLI at once
        if self.telegram is not None and not polling:
            await self._start_telegram(self.telegram)  # the webhook needs the web server
        if self.zalo is not None:
            await self._start_platform("zalo", self._start_zalo)
        if self.zalo_oa is not None:
            await self.zalo_oa.start()
        self.scheduler.start()

    async def _start_telegram(self, telegram: TelegramPlatform) -> None:
        telegram.on_ok = lambda: self.context.metrics.mark_ok("telegram")
        commands = menu_commands(self.context, self.router)
        await self._start_platform("telegram", lambda: telegram.start(commands))

    async def _start_platform(self, name: str, start: Callable[[], Awaitable[None]]) -> None:
        """Start a platform now; when it cannot be reached, serve everything else and keep
        trying in the background (with systemd's Restart=always a failed start would loop
        every few seconds). A refused token stops the start: only the operator can fix it."""
        try:
            await start()
        except PlatformStartError as exc:
            if not exc.retry:
                raise
            self._platform_down(exc)
            task = asyncio.create_task(self._keep_starting(start), name=f"start-{name}")
            self._retries.append(task)

    async def _start_zalo(self) -> None:
        """Zalo's answers at start in the words of PlatformStartError: 401 is a refused
        token; anything else (no network, 5xx, timeouts) is worth trying again."""
        assert self.zalo is not None
        try:
            await self.zalo.start()
        except ZaloApiError as exc:
            with suppress(Exception):
                await self.zalo.stop()
            reason = "bad_token" if exc.error_code == 401 else "unreachable"
            raise PlatformStartError("zalo", reason, str(exc.error_code)) from None

    async def _keep_starting(self, start: Callable[[], Awaitable[None]]) -> None:
        delay = RETRY_FIRST_SECONDS
        while True:
            await self.sleep(delay)
            delay = min(delay * 2, RETRY_MAX_SECONDS)
            try:
                await start()
            except PlatformStartError as exc:
                if not exc.retry:
                    log.error("%s", self.context.texts.label(
                        f"ops.platform_{exc.reason}", platform=exc.platform))
                    self.context.metrics.mark_down(exc.platform, exc.reason)
                    return
                self._platform_down(exc)
                continue
            except Exception:
                log.exception("starting a platform failed; trying again")
                continue
            log.info("%s", self.context.texts.label("ops.platform_started"))
            return

    def _platform_down(self, exc: PlatformStartError) -> None:
        self.context.metrics.mark_down(exc.platform, exc.reason)
        if self._once.due(exc.platform, time.monotonic()):
            log.warning("%s", self.context.texts.label(
                f"ops.platform_{exc.reason}", platform=exc.platform, detail=exc.detail))

    async def stop(self) -> None:
        for task in self._retries:
            task.cancel()
        self.scheduler.stop()
        if self.telegram is not None and self.telegram.application.updater is not None:
            with suppress(Exception):
                await self.telegram.application.updater.stop()  # no new updates first
        await self.lanes.stop()
        await self.context.services.outbox.stop()
        await self.context.services.access.stop()
        await self.leadership.release()
        for platform in (self.telegram, self.zalo, self.zalo_oa):
            if platform is None:
                continue
            try:
                await platform.stop()
            except Exception:  # one platform failing to stop must not keep the others running
                log.warning("stopping %s failed", platform.name, exc_info=True)
        if self.web is not None:
            await self.web.stop()
        await self.db.dispose()

    async def _zalo_quota_changed(self, what: str, since: datetime) -> None:
        """The Zalo bot's monthly quota ran out (or is back): tell the staff, once."""
        self.context.metrics.gauge(
            "cds_zalo_quota_exceeded", "1 while the Zalo bot's monthly quota is used up"
        ).set(1 if what == "exceeded" else 0)
        text = self.context.texts.render(f"zalo/quota_{what}", self.config.bot.locale,
                                         since=since)
        await self.context.services.alerts.tell("zalo", f"zalo_quota_{what}:{since.isoformat()}",
                                                text)
        if what == "resumed":
            await self.context.services.zalo_status.release_paused()
            self.context.services.outbox.wake()

    async def _oa_reauthorize(self) -> None:
        text = self.context.texts.render("zalo/oa_reauthorize", self.config.bot.locale)
        day = self.clock.now().date().isoformat()
        await self.context.services.alerts.tell("zalo_oa", f"oa_reauthorize:{day}", text)

    def _platform_status(self) -> dict[str, Any]:
        """What /healthz and /metrics show of the platforms beyond "last success"."""
        status: dict[str, Any] = {}
        if self.zalo is not None:
            status["zalo"] = self.zalo.quota.status()
        return status

    def _install_pages(self, web_app: aiohttp_web.Application) -> None:
        """The web pages next to the webhooks: the dashboard and one-time downloads."""
        self._dashboard().install(web_app)
        DownloadRoutes(self.context).install(web_app)

    def _dashboard(self) -> Dashboard:
        secret = self.config.web.secret.get_secret_value()
        if not secret:
            # Sessions then end with the process; several instances need a shared secret.
            log.warning("web.secret is not set: dashboard sessions end when the bot restarts")
            secret = secrets.token_urlsafe(32)
        return Dashboard(
            self.context, secret=secret,
            secure_cookie=self.config.web.public_url.startswith("https://"),
        )

    def describe_routes(self) -> list[str]:
        return [
            f"/{c.name} ({', '.join('/' + a for a in c.aliases) or 'no alias'}) "
            f"role>={c.role.value} where={c.where}"
            for c in self.router.commands
        ]

    async def run_forever(self) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        try:
            await self.start()
        except BaseException:
            await self.stop()
            raise
        # Everything built at start lives as long as the process: keep it out of the
        # garbage collector's full passes, which otherwise stall a busy moment (bench/).
        gc.collect()
        gc.freeze()
        gc.enable()  # `cds-bot run` starts with it off (bot/cli/main.py)
        try:
            await stop.wait()
        finally:
            log.info("stopping")
            await self.stop()
