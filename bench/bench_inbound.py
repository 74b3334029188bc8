"""Inbound updates per second: the bot as operators run it vs a bare python-telegram-bot.

Our bot runs as `cds-bot --config FILE run` in its own process, long-polling the tests' fake
Bot API server (`tests/fake_telegram.py`, limits off) that runs here; the baseline is
`bench/ptb_echo.py` (a bare PTB `Application` echoing text) against the same server, in the
same run. Per kind, 5,000 updates from 500 people (10 each) are queued at once, plus 100
people who write once, spread through the queue; timed until the last answer reaches the
server. Per kind: updates/s, ratio to the baseline, CPU of the bot process per update, SQL
statements and transactions per update (the bot's /metrics), p95 wait of the people who
write once, and p95 of all. Also: start → first getUpdates, idle RSS, `cds-bot --help` and
`cds-bot ward list` times.

    .venv/bin/python bench/bench_inbound.py [--db sqlite,postgres] [--updates 5000]
        [--people 500] [--once 100] [--households 10000] [--kinds trogiup,question,button,ghi]

PostgreSQL: a fresh database on 127.0.0.1:5432 (trust auth, as the tests use), dropped after.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_households import households, to_csv  # noqa: E402
from tests.fake_telegram import Call, FakeTelegram  # noqa: E402

TOKEN = "123456:TEST-TOKEN"
VENV_BIN = Path(sys.executable).parent
CLK_TCK = os.sysconf("SC_CLK_TCK")
PERSON0, ONCE0, HELPER0 = 100_000, 200_000, 300_000
GROUPS = 100


class StampedFake(FakeTelegram):
    """The fake server, also noting when each answer arrived and the first getUpdates."""

    def __init__(self) -> None:
        super().__init__(token=TOKEN, bot_username="cds_test_bot")
        self.answers: list[tuple[float, str]] = []
        self.first_poll: float | None = None

    async def _m_getUpdates(self, call: Call) -> Any:
        if self.first_poll is None:
            self.first_poll = time.perf_counter()
        return await super()._m_getUpdates(call)

    async def _m_sendMessage(self, call: Call) -> Any:
        result = await super()._m_sendMessage(call)
        self.answers.append((time.perf_counter(), str(call.params.get("chat_id"))))
        return result

    async def _m_editMessageText(self, call: Call) -> Any:
        result = await super()._m_editMessageText(call)
        self.answers.append((time.perf_counter(), str(call.params.get("chat_id"))))
        return result

    def forget(self) -> None:
        """Drop the record of calls (the bench sends tens of thousands)."""
        self.calls.clear()


@dataclass
class Burst:
    kind: str
    updates: int
    seconds: float
    cpu: float = 0.0
    statements: float = 0.0
    transactions: float = 0.0
    once_p95: float = 0.0
    all_p95: float = 0.0
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def per_second(self) -> float:
        return self.updates / self.seconds


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def scrape(port: int) -> dict[str, float]:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    found = {}
    for name in ("cds_db_statements_total", "cds_db_transactions_total"):
        match = re.search(rf"^{name} ([0-9.e+]+)$", text, re.MULTILINE)
        found[name] = float(match.group(1)) if match else 0.0
    return found


def p95(values: list[float]) -> float:
    if len(values) < 2:
        return values[0] if values else 0.0
    return statistics.quantiles(values, n=20)[18]


# --- the database ------------------------------------------------------------------------
async def make_database(kind: str, tmp: Path) -> tuple[str, Any]:
    if kind == "sqlite":
        return f"sqlite+aiosqlite:///{tmp}/bench.db", None
    import asyncpg

    name = f"bench_inbound_{os.getpid()}"
    conn = await asyncpg.connect(host="127.0.0.1", port=5432, user="postgres",
                                 database="postgres")
    await conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()

    async def drop() -> None:
        conn = await asyncpg.connect(host="127.0.0.1", port=5432, user="postgres",
                                     database="postgres")
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()

    return f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}", drop


async def seed(url: str, n_households: int, helpers: int) -> None:
    from bot.clock import SystemClock
    from bot.config import Config
    from bot.context import build_context
    from bot.core import Role
    from bot.db import Database
    from bot.services.tables import read_table

    db = Database(url)
    await db.upgrade()
    ctx = build_context(Config.model_validate({"database": {"url": url}}), db, SystemClock())
    ward = await ctx.services.places.add_ward("HB", "Phường Hòa Bình")
    rows = households(n_households, GROUPS)
    report = await ctx.services.registry.import_table(ward.id, read_table(to_csv(rows)),
                                                      create_groups=True)
    assert not report.rejected, report.rejected
    for i in range(helpers):
        await ctx.services.access.grant(
            platform="telegram", user_id=str(HELPER0 + i), role=Role.HELPER,
            ward_code="HB", group_code=f"TDP{i % GROUPS + 1:03d}",
        )
    await db.dispose()


# --- processes ------------------------------------------------------------------------------
def write_config(tmp: Path, url: str, fake: FakeTelegram, web_port: int,
                 workers: int = 16) -> Path:
    path = tmp / "config.toml"
    path.write_text(
        f'[bot]\nquiet_hours = ""\nconcurrent_updates = {workers}\n\n'
        f'[database]\nurl = "{url}"\n\n'
        f'[telegram]\ntoken = "{TOKEN}"\napi_base_url = "{fake.base_url}"\n\n'
        f'[web]\nhost = "127.0.0.1"\nport = {web_port}\n\n'
        # The fake has no limits and the bare PTB echo paces nothing: without this the
        # bot's replies would keep to Telegram's ~30 a second for the whole token.
        '[outbox]\nper_second = 1000.0\n',
        encoding="utf-8",
    )
    return path


async def start(args: list[str], log: Path,
                fake: StampedFake) -> tuple[subprocess.Popen[bytes], float, float]:
    """Start a bot process; (process, wall and CPU seconds until its first getUpdates)."""
    fake.first_poll = None
    started = time.perf_counter()
    proc = subprocess.Popen(args, cwd=ROOT, stdout=log.open("ab"), stderr=subprocess.STDOUT)
    while fake.first_poll is None:
        if proc.poll() is not None:
            raise SystemExit(f"{args[0]} exited: see {log}")
        await asyncio.sleep(0.002)
    return proc, fake.first_poll - started, cpu_seconds(proc.pid)


async def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGINT)
    for _ in range(200):
        if proc.poll() is not None:
            return
        await asyncio.sleep(0.05)
    proc.kill()


# --- the bursts ------------------------------------------------------------------------------
def queue_burst(fake: StampedFake, kind: str, n: int, people: int,
                presses: dict[int, int], topics: list[str]) -> None:
    """Queue n updates from `people` people, round by round (each writes n/people times)."""
    per_person = max(1, n // people)
    for j in range(per_person):
        for p in range(people):
            user = (HELPER0 if kind == "ghi" else PERSON0) + p
            queue_one(fake, kind, user, j, p, presses, topics)


async def write_once(fake: StampedFake, kind: str, once: int, every: float,
                     presses: dict[int, int], topics: list[str],
                     after_fetch: bool) -> dict[str, float]:
    """While the backlog is there, one new person writes every `every` seconds; with
    `after_fetch`, only once the bot has fetched the whole backlog (the wait then is the
    bot's own queue, not Telegram's: getUpdates hands out updates in order, 100 at a time)."""
    while after_fetch and fake._updates:
        await asyncio.sleep(0.01)
    queued: dict[str, float] = {}
    for i in range(once):
        user = ONCE0 + i
        queued[str(user)] = time.perf_counter()
        queue_one(fake, kind, user, 0, i, presses, topics)
        await asyncio.sleep(every)
    return queued


def queue_one(fake: StampedFake, kind: str, user: int, j: int, p: int,
              presses: dict[int, int], topics: list[str]) -> None:
    if kind == "trogiup":
        fake.message(user, user, "/trogiup")
    elif kind == "question":
        fake.message(user, user, "tài khoản định danh điện tử là gì vậy")
    elif kind == "button":
        fake.callback(user, user, presses[user], f"faq:t:{topics[j % 2]}")
    elif kind == "ghi":
        if user >= HELPER0:
            index = user - HELPER0
            group = index % GROUPS + 1
            slot = (index // GROUPS) * 10 + j + 1  # each helper their own households
            fake.message(user, user, f"/ghi TDP{group:03d}-{slot:04d} vneid")
        else:
            fake.message(user, user, "/trogiup")
    elif kind == "echo":
        fake.message(user, user, "xin chào")


async def run_burst(fake: StampedFake, kind: str, n: int, people: int, once: int,
                    pid: int, web_port: int | None, presses: dict[int, int],
                    topics: list[str], after_fetch: bool = True) -> Burst:
    await asyncio.sleep(0.5)  # whatever came before has settled
    fake.forget()
    first = len(fake.answers)
    cpu0 = cpu_seconds(pid)
    m0 = scrape(web_port) if web_port else {}
    t0 = time.perf_counter()
    queue_burst(fake, kind, n, people, presses, topics)
    writers = asyncio.create_task(
        write_once(fake, kind, once, 0.1, presses, topics, after_fetch))
    total = n + once
    deadline = t0 + 900
    while len(fake.answers) - first < total:
        if time.perf_counter() > deadline:
            raise SystemExit(f"{kind}: only {len(fake.answers) - first} of {total} answered")
        await asyncio.sleep(0.02)
    answers = fake.answers[first:]
    t1 = max(t for t, _ in answers)
    cpu1 = cpu_seconds(pid)
    m1 = scrape(web_port) if web_port else {}
    burst = Burst(kind, total, t1 - t0, cpu=(cpu1 - cpu0) / total)
    if m1:
        burst.statements = (m1["cds_db_statements_total"] - m0["cds_db_statements_total"]) / total
        burst.transactions = (
            m1["cds_db_transactions_total"] - m0["cds_db_transactions_total"]) / total
    queued = await writers
    first_answer: dict[str, float] = {}
    for t, chat in answers:
        if chat in queued and chat not in first_answer:
            first_answer[chat] = t - queued[chat]
    burst.once_p95 = p95(list(first_answer.values()))
    burst.all_p95 = p95([t - t0 for t, _ in answers])
    return burst


async def prepare_presses(fake: StampedFake, people: int, once: int) -> dict[int, int]:
    """Each person opens /hoidap once (not timed): the message their presses will change."""
    first = len(fake.answers)
    for p in range(people):
        fake.message(PERSON0 + p, PERSON0 + p, "/hoidap")
    while len(fake.answers) - first < people:
        await asyncio.sleep(0.05)
    menus: dict[int, int] = {}
    for (chat, message_id), _msg in fake._messages.items():
        user = int(chat)
        if PERSON0 <= user < PERSON0 + people:
            menus[user] = max(menus.get(user, 0), message_id)
    # The once-writers press on a message too.
    for i in range(once):
        user = ONCE0 + i
        fake.message(user, user, "/hoidap")
    while len(fake.answers) - first < people + once:
        await asyncio.sleep(0.05)
    for (chat, message_id), _msg in fake._messages.items():
        user = int(chat)
        if ONCE0 <= user < ONCE0 + once:
            menus[user] = message_id
    return menus


def cli_times(config: Path) -> dict[str, float]:
    out: dict[str, float] = {}
    commands = (("help", ["--help"]), ("ward list", ["--config", str(config), "ward", "list"]))
    for label, argv in commands:
        walls, cpus = [], []
        for _ in range(5):
            before = os.times()
            t = time.perf_counter()
            subprocess.run([str(VENV_BIN / "cds-bot"), *argv], cwd=ROOT, check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            walls.append(time.perf_counter() - t)
            after = os.times()
            cpus.append(after.children_user - before.children_user
                         + after.children_system - before.children_system)
        out[f"{label} wall"] = statistics.median(walls)
        out[f"{label} cpu"] = statistics.median(cpus)
    return out


async def one_database(kind: str, opts: argparse.Namespace) -> None:
    from bot.services.explanations import load_library

    library = load_library("vi")
    topics = sorted(library.topics)[:2]
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        url, drop = await make_database(kind, tmp)
        try:
            t = time.perf_counter()
            await seed(url, opts.households, opts.people)
            print(f"[{kind}] seeded {opts.households} households, {opts.people} helpers "
                  f"in {time.perf_counter() - t:.1f} s", flush=True)
            async with StampedFake() as fake:
                log = tmp / "bot.log"
                # The baseline.
                proc, boot, boot_cpu = await start(
                    [sys.executable, str(ROOT / "bench/ptb_echo.py"), fake.base_url, TOKEN],
                    log, fake)
                base = await run_burst(fake, "echo", opts.updates, opts.people, opts.once,
                                       proc.pid, None, {}, topics,
                                       not opts.once_behind_telegram)
                await stop(proc)
                print(f"[{kind}] bare PTB echo: {base.per_second:.0f} updates/s, "
                      f"CPU {base.cpu * 1e3:.2f} ms/update, start→getUpdates {boot:.2f} s "
                      f"(CPU {boot_cpu:.2f} s), "
                      f"p95 wait once {base.once_p95:.2f} s, all {base.all_p95:.2f} s",
                      flush=True)
                # Ours.
                web_port = free_port()
                config = write_config(tmp, url, fake, web_port, opts.workers)
                ours = [str(VENV_BIN / "cds-bot"), "--config", str(config), "run"]
                if opts.profile:  # where the bot's time goes, for `python -m pstats`
                    ours = [sys.executable, "-m", "cProfile", "-o", opts.profile, *ours]
                proc, boot, boot_cpu = await start(ours, log, fake)
                await asyncio.sleep(2.0)
                idle = rss_mb(proc.pid)
                print(f"[{kind}] ours: start→first getUpdates {boot:.2f} s (CPU {boot_cpu:.2f} s), "
                      f"idle RSS "
                      f"{idle:.0f} MB", flush=True)
                presses: dict[int, int] = {}
                if "button" in opts.kinds:
                    presses = await prepare_presses(fake, opts.people, opts.once)
                for what in opts.kinds:
                    burst = await run_burst(fake, what, opts.updates, opts.people, opts.once,
                                            proc.pid, web_port, presses, topics,
                                            not opts.once_behind_telegram)
                    print(
                        f"[{kind}] {what}: {burst.per_second:.0f} updates/s, "
                        f"× bare {burst.per_second / base.per_second:.2f}, "
                        f"CPU {burst.cpu * 1e3:.2f} ms/update, "
                        f"{burst.statements:.2f} statements / {burst.transactions:.2f} "
                        f"transactions per update, p95 wait once {burst.once_p95:.2f} s, "
                        f"all {burst.all_p95:.2f} s", flush=True)
                print(f"[{kind}] RSS after the bursts {rss_mb(proc.pid):.0f} MB", flush=True)
                await stop(proc)
                errors = [line for line in log.read_text(errors="replace").splitlines()
                          if " ERROR " in line or " CRITICAL " in line or "Traceback" in line]
                print(f"[{kind}] error lines in the bot's log: {len(errors)}", flush=True)
                for line in errors[:5]:
                    print("   ", line[:200])
                if kind == "sqlite":
                    for label, value in cli_times(config).items():
                        print(f"[cli] cds-bot {label}: {value:.2f} s", flush=True)
        finally:
            if drop is not None:
                await drop()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", default="sqlite,postgres")
    parser.add_argument("--updates", type=int, default=5000)
    parser.add_argument("--people", type=int, default=500)
    parser.add_argument("--once", type=int, default=100)
    parser.add_argument("--households", type=int, default=10_000)
    parser.add_argument("--kinds", default="trogiup,question,button,ghi")
    parser.add_argument("--profile", default="", help="run our bot under cProfile into FILE")
    parser.add_argument("--workers", type=int, default=16, help="bot.concurrent_updates")
    parser.add_argument("--once-behind-telegram", action="store_true",
                        help="people who write once do so while the backlog is still at "
                             "the server (their wait includes fetching it)")
    opts = parser.parse_args()
    opts.kinds = opts.kinds.split(",")
    print(f"load average before: {os.getloadavg()[0]:.1f} (2 cores)", flush=True)
    for kind in opts.db.split(","):
        await one_database(kind, opts)
    print(f"load average after: {os.getloadavg()[0]:.1f}", flush=True)


if __name__ == "__main__":
    asyncio.run(main())
