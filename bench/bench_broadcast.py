"""One notice to 1,000 group chats under Telegram's limits: our outbox against plain
python-telegram-bot, and a restart in the middle of the broadcast.

The fake Bot API server (`tests/fake_telegram.py`) runs with `enforce_limits=True`: at most
30 messages in any sliding second overall and 20 a minute per group chat, anything over that
answered 429 with `retry_after`. Chats are `-100000001 …`; a fresh fake server per scenario.

1. outbox: a real `BotApp` (Telegram platform on the fake server, temporary SQLite file,
   `[outbox]` defaults: 28/s, 4 workers), 50 groups × 20 bound chats, one notice to all of
   them through `Notices.create`; timed from the call until every row is `sent`/`failed`.
2. python-telegram-bot the plain way: an `Application` built with `.base_url(...)` and
   `.rate_limiter(AIORateLimiter())` (defaults: 30/s overall, 20/min per group,
   `max_retries=0`), `await bot.send_message(chat, text)` over the same chats
   a) one after another, b) all 1,000 at once through one `asyncio.gather`, letting the
   limiter pace them (the way PTB's docs suggest using it). A `RetryAfter` that reaches the
   caller is counted as a lost message: the plain loop does not resend.
3. restart: the outbox again on the same database, a second notice to the 1,000 chats;
   `BotApp.stop()` after ~300 sends reach the server, a new `BotApp` on the same file, wait
   until every row is final; lost and doubled messages counted at the server.

Run from the project root: `.venv/bin/python bench/bench_broadcast.py [--chats 1000
--stop-after 300 --skip-ptb]`. Everything lives in a temporary directory; about 3 minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import tempfile
import time
import warnings
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.app import BotApp  # noqa: E402
from bot.config import Config  # noqa: E402
from bot.core import Chat, Sender  # noqa: E402
from bot.roles import Role
from tests.fake_telegram import Call, FakeTelegram  # noqa: E402

TOKEN = "123456:BENCH-TOKEN"
BOSS = 901
GROUP_SIZE = 20
TEXT = ("📢 THÔNG BÁO\n\nSáng thứ Bảy 7h30 phường tổ chức làm căn cước và kích hoạt VNeID "
        "mức 2 tại nhà văn hóa tổ dân phố. Mang theo CCCD và điện thoại.\n\n— Cán bộ Hoa")
GLOBAL_RATE = 30.0


class TimedFake(FakeTelegram):
    """The fake server, plus when each message was accepted and how many 429s it gave."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(token=TOKEN, enforce_limits=True, **kw)
        self.accepted: list[tuple[float, str]] = []  # (monotonic, chat id), group chats
        self.too_many = 0
        self.stop_at = 0  # set `reached` the moment this many messages were accepted
        self.reached = asyncio.Event()

    def _rate_limited(self, chat: str) -> int | None:
        limited = super()._rate_limited(chat)
        if limited is not None:
            self.too_many += 1
        return limited

    async def _m_sendMessage(self, call: Call) -> Any:
        result = await super()._m_sendMessage(call)
        chat = str(call.params.get("chat_id", ""))
        if isinstance(result, dict) and chat.startswith("-"):
            self.accepted.append((time.monotonic(), chat))
            if len(self.accepted) == self.stop_at:
                self.reached.set()  # before the bot has the answer: its send is in flight
        return result

    def group_send_calls(self, chats: set[str]) -> int:
        return sum(1 for c in self.calls
                   if c.method == "sendMessage" and str(c.params.get("chat_id")) in chats)


@dataclass
class Result:
    name: str
    seconds: float  # start → last message accepted by the server
    calls: int  # sendMessage calls to the target chats
    too_many: int  # 429 answers
    lost: int
    doubled: int
    note: str = ""
    chats: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def tally(fake: TimedFake, chats: Sequence[str], started: float, name: str,
          note: str = "") -> Result:
    per_chat = dict.fromkeys(chats, 0)
    for _, chat in fake.accepted:
        if chat in per_chat:
            per_chat[chat] += 1
    times = [t for t, c in fake.accepted if c in per_chat]
    last = max(times, default=started)
    rate = (len(times) - 1) / (last - min(times)) if len(times) > 1 else 0.0
    return Result(
        name=name, seconds=last - started, calls=fake.group_send_calls(set(chats)),
        too_many=fake.too_many, lost=sum(1 for n in per_chat.values() if n == 0),
        doubled=sum(n - 1 for n in per_chat.values() if n > 1), note=note, chats=len(chats),
        extra={"first": min(times, default=started) - started, "rate": rate},
    )


def chat_ids(n: int) -> list[str]:
    return [str(-100_000_000 - i) for i in range(1, n + 1)]


def config(db_url: str, fake: FakeTelegram) -> Config:
    return Config.model_validate({
        "bot": {"quiet_hours": "", "log_level": "WARNING"},  # any hour of the day
        "database": {"url": db_url},
        "telegram": {"token": TOKEN, "api_base_url": fake.base_url},
        "web": {"port": 0, "secret": "bench-secret-bench-secret-bench-secret"},
        # [outbox] left at its defaults: per_second 28, group_per_minute 20, workers 4
    })


async def until(check: Callable[[], Awaitable[bool]], within: float, what: str,
                every: float = 0.05) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(every)
    raise TimeoutError(f"timed out waiting for {what}")


async def seed(app: BotApp, chats: Sequence[str]) -> tuple[Any, int, list[int]]:
    """A ward, one group per 20 chats, a coordinator who binds every chat to its group."""
    services = app.context.services
    ward = await services.places.add_ward("HB", "Phường Hòa Bình")
    groups = []
    for g in range((len(chats) + GROUP_SIZE - 1) // GROUP_SIZE):
        groups.append(await services.places.add_group("HB", f"TDP{g + 1:03d}",
                                                      f"Tổ dân phố {g + 1}"))
    await services.access.grant(platform="telegram", user_id=str(BOSS),
                                role=Role.COORDINATOR, ward_code="HB")
    boss = await services.access.identify("telegram", Sender(str(BOSS), "Cán bộ Hoa"))
    for n, chat in enumerate(chats):
        group = groups[n // GROUP_SIZE]
        await services.chats.bind(boss, "telegram", Chat(chat, "group", f"Nhóm {chat}"),
                                  group.code)
    return boss, ward.id, [g.id for g in groups]


async def notice_final(app: BotApp, notice_id: int, total: int, kind: str = "notice") -> bool:
    counts = await app.context.services.outbox.counts(kind, notice_id)
    return counts.get("sent", 0) + counts.get("failed", 0) >= total


# --- 1. our outbox -------------------------------------------------------------------------
async def run_outbox(db_url: str, chats: Sequence[str]) -> tuple[Result, Any, int, list[int]]:
    fake = TimedFake()
    async with fake:
        app = BotApp(config(db_url, fake))
        await app.db.upgrade()
        t = time.monotonic()
        boss, ward_id, group_ids = await seed(app, chats)
        seeding = time.monotonic() - t
        await app.start()
        try:
            started = time.monotonic()
            created = await app.context.services.notices.create(
                boss, ward_id, raw_text=TEXT, rendered=TEXT, group_ids=group_ids)
            assert len(created.targets) == len(chats), len(created.targets)
            creating = time.monotonic() - started
            await until(lambda: notice_final(app, created.notice_id, len(chats)),
                        within=len(chats) / 10 + 30, what="the notice", every=0.1)
            final = time.monotonic() - started
            counts = await app.context.services.outbox.counts("notice", created.notice_id)
        finally:
            await app.stop()
        result = tally(fake, chats, started, "outbox (BotApp, 28/s, 4 workers)")
        result.extra.update(seeding=seeding, creating=creating, final=final, counts=counts)
        return result, boss, ward_id, group_ids


# --- 2. python-telegram-bot with AIORateLimiter --------------------------------------------
async def run_ptb(chats: Sequence[str], how: str, retries: int = 0) -> Result:
    from telegram.error import RetryAfter, TelegramError
    from telegram.ext import AIORateLimiter, ApplicationBuilder

    fake = TimedFake()
    async with fake:
        application = (ApplicationBuilder().token(TOKEN).base_url(fake.base_url)
                       .rate_limiter(AIORateLimiter(max_retries=retries)).build())
        await application.initialize()
        bot = application.bot
        errors: dict[str, int] = {}

        async def send(chat: str) -> None:
            try:
                await bot.send_message(int(chat), TEXT)
            except RetryAfter:
                errors["RetryAfter"] = errors.get("RetryAfter", 0) + 1
            except TelegramError as exc:
                errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1

        ptb_log = logging.getLogger("telegram.ext.AIORateLimiter")
        ptb_log.disabled = True  # it logs every RetryAfter with a traceback
        try:
            started = time.monotonic()
            if how == "sequential":
                for chat in chats:
                    await send(chat)
            else:
                await asyncio.gather(*(send(chat) for chat in chats))
        finally:
            ptb_log.disabled = False
            await application.shutdown()
        label = "one after another" if how == "sequential" else "gather of all"
        if retries:
            label += f", max_retries={retries}"
        note = ", ".join(f"{k} ×{v} raised" for k, v in errors.items())
        return tally(fake, chats, started, f"PTB AIORateLimiter, {label}", note)


# --- 3. restart in the middle --------------------------------------------------------------
async def run_restart(db_url: str, chats: Sequence[str], boss: Any, ward_id: int,
                      group_ids: list[int], stop_after: int) -> Result:
    fake = TimedFake()
    async with fake:
        first = BotApp(config(db_url, fake))
        await first.start()
        started = time.monotonic()
        created = await first.context.services.notices.create(
            boss, ward_id, raw_text=TEXT + " (2)", rendered=TEXT + " (2)", group_ids=group_ids)

        async def enough() -> bool:
            return len(fake.accepted) >= stop_after

        await until(enough, within=stop_after / 10 + 30, what=f"{stop_after} sends", every=0.01)
        await first.stop()  # workers cancelled wherever they are, mid-request included
        at_stop = len(fake.accepted)
        stopped = time.monotonic()
        second = BotApp(config(db_url, fake))
        await second.start()
        gap = time.monotonic() - stopped
        try:
            await until(lambda: notice_final(second, created.notice_id, len(chats)),
                        within=len(chats) / 10 + 30, what="the notice after restart",
                        every=0.1)
            counts = await second.context.services.outbox.counts("notice", created.notice_id)
        finally:
            await second.stop()
        result = tally(fake, chats, started, "outbox, stopped and restarted",
                       f"stopped after {at_stop} sent, restarted in {gap:.1f} s")
        result.extra.update(counts=counts)
        return result


# --- 3b. stopped while a send is in flight ------------------------------------------------
async def run_in_flight(db_url: str, chats: Sequence[str], stop_after: int) -> Result:
    """The worst moment to stop: the server has taken message `stop_after` and the bot has
    not seen the answer yet. Rows go in straight through `Outbox.enqueue`."""
    from bot.delivery.outbox import NewDelivery

    fake = TimedFake()
    async with fake:
        fake.stop_at = stop_after
        first = BotApp(config(db_url, fake))
        await first.start()
        started = time.monotonic()
        await first.context.services.outbox.enqueue([
            NewDelivery(kind="bench", ref_id=1, dedupe=f"bench:1:{chat}", platform="telegram",
                        chat_id=chat, text=TEXT) for chat in chats])
        await asyncio.wait_for(fake.reached.wait(), timeout=stop_after / 10 + 30)
        await first.stop()
        at_stop = len(fake.accepted)
        second = BotApp(config(db_url, fake))
        await second.start()
        try:
            await until(lambda: notice_final(second, 1, len(chats), kind="bench"),
                        within=len(chats) / 10 + 30, what="the rows after restart", every=0.1)
        finally:
            await second.stop()
        return tally(fake, chats, started, "outbox, stopped with a send in flight",
                     f"{len(chats)} chats, stopped when #{stop_after} reached the server "
                     f"({at_stop} by then)")


def table(results: Sequence[Result], n: int) -> None:
    floor = n / GLOBAL_RATE
    print()
    print(f"{n} group chats; floor {n}/{GLOBAL_RATE:.0f} = {floor:.1f} s, "
          f"bar 1.15× = {floor * 1.15:.1f} s; time = start → last message accepted")
    header = f"{'run':<50} {'time':>7} {'×floor':>6} {'calls':>6} {'429':>5} {'429 %':>6} " \
             f"{'lost':>5} {'dup':>4}  note"
    print(header)
    print("-" * len(header))
    for r in results:
        share = 100 * r.too_many / r.calls if r.calls else 0.0
        ratio = r.seconds / (r.chats / GLOBAL_RATE)
        print(f"{r.name:<50} {r.seconds:6.1f}s {ratio:6.2f} {r.calls:6d} "
              f"{r.too_many:5d} {share:5.1f}% {r.lost:5d} {r.doubled:4d}  {r.note}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chats", type=int, default=1000)
    parser.add_argument("--stop-after", type=int, default=300)
    parser.add_argument("--skip-ptb", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    warnings.simplefilter("ignore")  # PTB's deprecation notices
    chats = chat_ids(args.chats)
    results: list[Result] = []
    with tempfile.TemporaryDirectory() as tmp:
        db_url = f"sqlite+aiosqlite:///{tmp}/bot.db"
        begun = time.monotonic()
        outbox, boss, ward_id, group_ids = await run_outbox(db_url, chats)
        results.append(outbox)
        print(f"outbox: seeded {len(group_ids)} groups × {GROUP_SIZE} chats in "
              f"{outbox.extra['seeding']:.1f} s; Notices.create (1,000 rows queued) "
              f"{outbox.extra['creating']:.2f} s; all rows final after "
              f"{outbox.extra['final']:.1f} s: {outbox.extra['counts']}", flush=True)
        if not args.skip_ptb:
            for how, retries in (("sequential", 0), ("gather", 0), ("gather", 3)):
                results.append(await run_ptb(chats, how, retries))
                print(f"done: {results[-1].name}", flush=True)
        restart = await run_restart(db_url, chats, boss, ward_id, group_ids, args.stop_after)
        results.append(restart)
        print(f"restart: rows {restart.extra['counts']}", flush=True)
        small = chats[: max(args.chats // 5, 10)]
        results.append(await run_in_flight(db_url, small, max(len(small) * 3 // 10, 1)))
        table(results, len(chats))
        print()
        for r in results:
            print(f"{r.name:<50} first message after {r.extra['first']:.2f} s, then "
                  f"{r.extra['rate']:.1f} msg/s")
        print(f"\ntotal run {time.monotonic() - begun:.0f} s")


if __name__ == "__main__":
    asyncio.run(main())
