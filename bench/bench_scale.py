"""Ward scale through the one way out (bot/delivery/): issue #10's acceptance, measured.

Every scenario talks to the fake Bot API (`tests/fake_telegram.py`) with its limits on (30
messages in any sliding second, 20 a minute per group chat, 429 with `retry_after` beyond);
429s, duplicates and misses are counted at the fake, times on the bench's monotonic clock.

  notice   a coordinator sends a notice to all 300 group chats of a ward through the chat UI
           (/thongbao, "Cả phường", "Gửi ngay"): time from the press to the 300th chat, 429s,
           and the author's delivery report.
  burst    300 group chats send /lienket and 200 residents /start in the same second: every
           chat answered? twice? time to the last answer.
  during   100 residents ask a question (5 a second) while a 1,000-chat notice goes out:
           p50/p95 from the question to its answer.
  zalo     PostgreSQL: a 1,000-chat notice with one Telegram instance, then again with a
           Zalo-only instance beside it (both in this process).
  kill     PostgreSQL: two `cds-bot run` processes; a 1,000-chat notice; the sender is
           `kill -9`'d at ~30% and started again; three times. Missed, doubled, 429s, and the
           gap from the kill to the survivor's first send.

Run from the project root: `.venv/bin/python bench/bench_scale.py [--only notice,burst,...]`
(PostgreSQL at 127.0.0.1:5432, trust auth, for `zalo` and `kill`). About 6 minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import asyncpg  # noqa: E402

from bot.app import BotApp  # noqa: E402
from bot.config import Config  # noqa: E402
from bot.context import build_context  # noqa: E402
from bot.clock import SystemClock  # noqa: E402
from bot.core import Chat, Role, Sender  # noqa: E402
from bot.db import Database  # noqa: E402
from bot.models import SendLease  # noqa: E402
from tests.fake_telegram import Call, FakeTelegram  # noqa: E402
from tests.fake_zalo import FakeZalo  # noqa: E402
from tests.telegram_people import Ward  # noqa: E402

TOKEN = "123456:BENCH-TOKEN"
BOSS = 901
TEXT = ("📢 THÔNG BÁO\n\nSáng thứ Bảy 7h30 phường tổ chức làm căn cước và kích hoạt VNeID "
        "mức 2 tại nhà văn hóa tổ dân phố. Mang theo CCCD và điện thoại.\n\n— Cán bộ Hoa")
WORKERS: dict[str, Any] = {}
ROOT = Path(__file__).resolve().parent.parent


class Fake(FakeTelegram):
    """The fake server, plus when each message was accepted and how many 429s it gave."""

    def __init__(self) -> None:
        super().__init__(token=TOKEN, enforce_limits=True)
        self.accepted: list[tuple[float, str, str]] = []  # (monotonic, chat, text)
        self.too_many = 0

    def _rate_limited(self, chat: str) -> int | None:
        limited = super()._rate_limited(chat)
        if limited is not None:
            self.too_many += 1
        return limited

    async def _m_sendMessage(self, call: Call) -> Any:
        result = await super()._m_sendMessage(call)
        if isinstance(result, dict):
            self.accepted.append((time.monotonic(), str(call.params.get("chat_id", "")),
                                  str(call.params.get("text", ""))))
        return result

    def sends(self) -> int:
        return len(self.calls_to("sendMessage"))

    def per_chat(self, chats: list[str], since: float = 0.0) -> dict[str, int]:
        counts = dict.fromkeys(chats, 0)
        for t, chat, _ in self.accepted:
            if t >= since and chat in counts:
                counts[chat] += 1
        return counts


def make_config(db_url: str, fake: FakeTelegram, **extra: Any) -> Config:
    return Config.model_validate({
        "bot": {"quiet_hours": "", "log_level": "WARNING"},
        "database": {"url": db_url},
        "telegram": {"token": TOKEN, "api_base_url": fake.base_url},
        "web": {"port": 0, "secret": "bench-secret-bench-secret-bench-secret"},
        **extra,
    })


async def until(check: Callable[[], bool], within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if check():
            return
        await asyncio.sleep(0.05)
    raise TimeoutError(f"timed out waiting for {what}")


async def seed(ctx: Any, groups: int, chats_per_group: int = 1, bind: bool = True,
               first_chat: int = 100_000_000) -> tuple[Any, int, list[int], list[str]]:
    services = ctx.services
    ward = await services.places.add_ward("HB", "Phường Hòa Bình")
    group_ids, chats = [], []
    for g in range(groups):
        group = await services.places.add_group("HB", f"TDP{g + 1:03d}", f"Tổ dân phố {g + 1}")
        group_ids.append(group.id)
    await services.access.grant(platform="telegram", user_id=str(BOSS),
                                role=Role.COORDINATOR, ward_code="HB")
    boss = await services.access.identify("telegram", Sender(str(BOSS), "Cán bộ Hoa"))
    for g in range(groups):
        for c in range(chats_per_group):
            chat = str(-(first_chat + g * chats_per_group + c + 1))
            chats.append(chat)
            if bind:
                await services.chats.bind(boss, "telegram", Chat(chat, "group", f"Nhóm {chat}"),
                                          f"TDP{g + 1:03d}")
    return boss, ward.id, group_ids, chats


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


# --- notice to 300 groups through the chat UI ---------------------------------------------
async def notice(tmp: Path) -> dict[str, Any]:
    fake = Fake()
    async with fake:
        app = BotApp(make_config(f"sqlite+aiosqlite:///{tmp}/notice.db", fake, **WORKERS))
        await app.db.upgrade()
        _, _, _, chats = await seed(app.context, 300)
        await app.start()
        try:
            ward = Ward(fake, app, app.clock)  # type: ignore[arg-type]
            fake.message(BOSS, BOSS, f"/thongbao {TEXT}")
            await until(lambda: any("Cả phường" in str(k) for _, k in ward.keyboards(BOSS)),
                        60, "the preview")
            await ward.press(BOSS, "⬜ Cả phường", edit=True)
            before = fake.sends()
            started = time.monotonic()
            too_many = fake.too_many
            await ward.press(BOSS, "📤 Gửi ngay")
            await until(lambda: all(fake.per_chat(chats, started).values()), 120, "300 chats")
            times = sorted(t for t, c, _ in fake.accepted if c in set(chats) and t >= started)
            seconds = times[-1] - started
            first, rate = times[0] - started, (len(times) - 1) / (times[-1] - times[0])
            await until(lambda: any("đã gửi tới" in m for m in ward.inbox(BOSS)), 30,
                        "the report")
            report = next(m for m in ward.inbox(BOSS) if "đã gửi tới" in m)
            counts = fake.per_chat(chats, started)
        finally:
            await app.stop()
    calls = fake.sends() - before
    return {"chats": len(chats), "seconds": round(seconds, 2),
            "bound_seconds": round(1.15 * 300 / 30, 2), "first_send": round(first, 2),
            "rate_per_s": round(rate, 1),
            "missed": sum(1 for n in counts.values() if n == 0),
            "doubled": sum(n - 1 for n in counts.values() if n > 1),
            "calls": calls, "429": fake.too_many - too_many,
            "429_share": round((fake.too_many - too_many) / max(calls, 1) * 100, 2),
            "report": report.splitlines()[0]}


# --- 300 /lienket + 200 /start in one second ------------------------------------------------
async def burst(tmp: Path) -> dict[str, Any]:
    fake = Fake()
    async with fake:
        app = BotApp(make_config(f"sqlite+aiosqlite:///{tmp}/burst.db", fake))
        await app.db.upgrade()
        _, _, _, chats = await seed(app.context, 300, bind=False)
        await app.start()
        try:
            people = [str(50_000 + i) for i in range(200)]
            started = time.monotonic()
            for n, chat in enumerate(chats):
                fake.message(int(chat), BOSS, f"/lienket TDP{n + 1:03d}", chat_type="group")
            for person in people:
                fake.message(int(person), int(person), "/start")
            everyone = chats + people
            await until(lambda: all(fake.per_chat(everyone, started).values()), 180,
                        "every answer")
            last = max(t for t, c, _ in fake.accepted if c in set(everyone)) - started
            await asyncio.sleep(3)  # anything answered twice arrives by now
            counts = fake.per_chat(everyone, started)
        finally:
            await app.stop()
    calls = fake.sends()
    return {"messages": len(everyone), "seconds": round(last, 2),
            "bound_seconds": round(1.5 * len(everyone) / 30 + 10, 2),
            "unanswered": sum(1 for n in counts.values() if n == 0),
            "twice": sum(1 for n in counts.values() if n > 1),
            "calls": calls, "429": fake.too_many,
            "429_share": round(fake.too_many / max(calls, 1) * 100, 2)}


# --- questions during a broadcast -----------------------------------------------------------
async def during(tmp: Path) -> dict[str, Any]:
    fake = Fake()
    async with fake:
        app = BotApp(make_config(f"sqlite+aiosqlite:///{tmp}/during.db", fake))
        await app.db.upgrade()
        boss, ward_id, group_ids, chats = await seed(app.context, 50, chats_per_group=20)
        await app.start()
        try:
            notices = app.context.services.notices
            started = time.monotonic()
            await notices.create(boss, ward_id, raw_text=TEXT, rendered=TEXT,
                                 group_ids=group_ids)
            await asyncio.sleep(3)  # the broadcast is under way
            asked: dict[str, float] = {}
            for i in range(100):
                person = str(60_000 + i)
                asked[person] = time.monotonic()
                fake.message(int(person), int(person), "Làm sao để cài VNeID mức 2?")
                await asyncio.sleep(0.2)
            await until(lambda: all(fake.per_chat(list(asked)).values()), 120, "answers")
            waits = []
            for person, t in asked.items():
                first = min(a for a, c, _ in fake.accepted if c == person)
                waits.append(first - t)
            await until(lambda: all(fake.per_chat(chats).values()), 120, "the broadcast")
            broadcast = max(t for t, c, _ in fake.accepted if c in set(chats)) - started
        finally:
            await app.stop()
    if os.environ.get("BENCH_VERBOSE"):
        print([round(w, 2) for w in waits])
    return {"questions": len(waits), "p50": round(statistics.median(waits), 3),
            "p95": round(pct(waits, 0.95), 3), "max": round(max(waits), 3),
            "broadcast_seconds": round(broadcast, 1), "429": fake.too_many}


# --- PostgreSQL helpers ---------------------------------------------------------------------
PG = "postgresql+asyncpg://127.0.0.1:5432/"


async def fresh_pg(name: str) -> str:
    admin = await asyncpg.connect(host="127.0.0.1", port=5432, database="postgres")
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return PG + name


async def drop_pg(name: str) -> None:
    admin = await asyncpg.connect(host="127.0.0.1", port=5432, database="postgres")
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


# --- a Zalo-only instance beside the Telegram one -------------------------------------------
async def zalo(tmp: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for beside in (False, True):
        name = f"bench_scale_zalo_{int(beside)}"
        url = await fresh_pg(name)
        fake = Fake()
        async with fake, FakeZalo() as zl:
            telegram = BotApp(make_config(url, fake))
            await telegram.db.upgrade()
            boss, ward_id, group_ids, chats = await seed(telegram.context, 50, 20)
            other = None
            if beside:
                other = BotApp(make_config(url, fake, telegram={"enabled": False},
                                           zalo={"enabled": True, "token": zl.token,
                                                 "api_base_url": zl.base_url}))
                await other.start()
            await telegram.start()
            try:
                started = time.monotonic()
                await telegram.context.services.notices.create(
                    boss, ward_id, raw_text=TEXT, rendered=TEXT, group_ids=group_ids)
                await until(lambda: all(fake.per_chat(chats).values()), 180, "1,000 chats")
                seconds = max(t for t, c, _ in fake.accepted if c in set(chats)) - started
            finally:
                await telegram.stop()
                if other is not None:
                    await other.stop()
        await drop_pg(name)
        out["with_zalo_instance" if beside else "telegram_alone"] = {
            "seconds": round(seconds, 2), "429": fake.too_many}
    return out


# --- kill -9 the sender, three times --------------------------------------------------------
def write_config(path: Path, url: str, fake: FakeTelegram) -> None:
    path.write_text(
        '[bot]\nquiet_hours = ""\nlog_level = "WARNING"\n'
        f'[database]\nurl = "{url}"\n'
        f'[telegram]\ntoken = "{TOKEN}"\napi_base_url = "{fake.base_url}"\n'
        '[web]\nport = 0\nsecret = "bench-secret-bench-secret-bench-secret"\n',
        encoding="utf-8")


def spawn(config: Path, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "bot", "--config", str(config), "run"], cwd=ROOT,
        stdout=log.open("ab"), stderr=subprocess.STDOUT)


async def holder_pid(db: Database) -> int | None:
    async with db.session() as session:
        lease = await session.get(SendLease, "telegram")
    if lease is None or not lease.holder:
        return None
    return int(lease.holder.split(":")[1])


async def kill(tmp: Path, kills: int = 3) -> dict[str, Any]:
    name = "bench_scale_kill"
    url = await fresh_pg(name)
    fake = Fake()
    trials = []
    async with fake:
        config = make_config(url, fake)
        db = Database(url)
        await db.upgrade()
        ctx = build_context(config, db, SystemClock())
        boss, ward_id, group_ids, chats = await seed(ctx, 50, 20)
        cfg = tmp / "kill.toml"
        write_config(cfg, url, fake)
        procs = [spawn(cfg, tmp / "kill-a.log"), spawn(cfg, tmp / "kill-b.log")]
        try:
            for _ in range(200):
                if await holder_pid(db):
                    break
                await asyncio.sleep(0.1)
            for trial in range(kills):
                started = time.monotonic()
                calls0, too0 = fake.sends(), fake.too_many
                await ctx.services.notices.create(boss, ward_id, raw_text=f"{TEXT} #{trial}",
                                                  rendered=f"{TEXT} #{trial}",
                                                  group_ids=group_ids)
                await until(lambda: sum(1 for c in fake.per_chat(chats, started).values()
                                        if c) >= 300, 120, "30%")
                pid = await holder_pid(db)
                assert pid is not None
                os.kill(pid, signal.SIGKILL)
                killed = time.monotonic()
                victim = next(p for p in procs if p.pid == pid)
                victim.wait()
                procs.remove(victim)
                procs.append(spawn(cfg, tmp / f"kill-{trial}.log"))  # back to two
                await until(lambda: all(fake.per_chat(chats, started).values()), 180,
                            "every chat")
                await asyncio.sleep(3)
                counts = fake.per_chat(chats, started)
                resumed = min((t for t, c, _ in fake.accepted if t > killed + 0.05), default=0)
                trials.append({
                    "seconds": round(max(t for t, c, _ in fake.accepted
                                         if c in set(chats) and t >= started) - started, 1),
                    "missed": sum(1 for n in counts.values() if n == 0),
                    "doubled": sum(n - 1 for n in counts.values() if n > 1),
                    "calls": fake.sends() - calls0, "429": fake.too_many - too0,
                    "resumed_after": round(resumed - killed, 1)})
        finally:
            for p in procs:
                p.terminate()
            for p in procs:
                try:
                    p.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    p.kill()
            await db.dispose()
            await drop_pg(name)
    return {"trials": trials}


SCENARIOS: dict[str, Callable[[Path], Awaitable[dict[str, Any]]]] = {
    "notice": notice, "burst": burst, "during": during, "zalo": zalo, "kill": kill}


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", default=",".join(SCENARIOS))
    parser.add_argument("--workers", type=int, default=0, help="[outbox] workers (default: 4)")
    args = parser.parse_args()
    if args.workers:
        WORKERS["outbox"] = {"workers": args.workers}
    logging.basicConfig(level=logging.ERROR)
    warnings.simplefilter("ignore")
    with tempfile.TemporaryDirectory() as directory:
        for name in args.only.split(","):
            started = time.monotonic()
            result = await SCENARIOS[name](Path(directory))
            print(f"{name} ({time.monotonic() - started:.0f} s): {result}", flush=True)


if __name__ == "__main__":
    asyncio.run(main())
