"""A district-sized household registry on a SQLite file: import, progress, one `/ghi`.

100,000 households in 400 groups (by default) and the 6 default onboarding steps:

1. import a generated CSV through `read_table` + `Registry.import_table`, then re-import it
   unchanged;
2. seed progress (30-70% per group, varying by group and step): the first `--sample-groups`
   groups through an import with step columns, the way a ward brings in what it already
   recorded, the rest by bulk insert + `recount` (`--seed-with-import` does all of it through
   the registry, which takes about two minutes at 100,000 households);
3. ward-wide progress at the service layer: `Progress.ward` + `ranked()`;
4. `/ghi <code> vneid epayment` end to end through python-telegram-bot polling the fake Bot
   API server (`tests/fake_telegram.py`), split into delivery, handler and reply, and the same
   command through `Router.dispatch` with a recording platform (no HTTP at all).

Run from the project root: `.venv/bin/python bench/bench_households.py [--households N
--groups G --runs R --ghi K]`. Everything lives in a temporary directory.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import gc
import io
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlmodel import select

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.app import BotApp  # noqa: E402
from bot.clock import FrozenClock  # noqa: E402
from bot.config import Config, default_steps  # noqa: E402
from bot.core import Incoming, Role  # noqa: E402
from bot.models import Household, HouseholdStep, ProgressEvent  # noqa: E402
from bot.services.households import step_total  # noqa: E402
from bot.services.progress import WardProgress, recount  # noqa: E402
from bot.services.tables import Table, read_table  # noqa: E402
from tests.fake_telegram import Call, FakeTelegram  # noqa: E402
from tests.recording import RecordingPlatform, message  # noqa: E402

TOKEN = "123456:BENCH-TOKEN"
START = datetime(2026, 11, 24, 3, 0, tzinfo=UTC)
HELPER, OTHER_HELPER = 701, 702

SURNAMES = (
    ("Nguyễn", 38), ("Trần", 11), ("Lê", 9), ("Phạm", 7), ("Hoàng", 5), ("Huỳnh", 4),
    ("Phan", 4), ("Vũ", 4), ("Võ", 3), ("Đặng", 2), ("Bùi", 2), ("Đỗ", 2), ("Hồ", 2),
    ("Ngô", 2), ("Dương", 1), ("Lý", 1), ("Đinh", 1), ("Trịnh", 1), ("Đoàn", 1), ("Lương", 1),
)
MALE_MIDDLE = ("Văn", "Đức", "Minh", "Quang", "Hữu", "Thanh", "Xuân", "Công", "Đình", "Tiến")
FEMALE_MIDDLE = ("Thị", "Thu", "Ngọc", "Thanh", "Kim", "Minh", "Phương", "Thúy", "Hồng", "Mai")
MALE_GIVEN = ("An", "Bình", "Cường", "Dũng", "Đạt", "Hải", "Hùng", "Huy", "Khánh", "Long",
              "Nam", "Phúc", "Quân", "Sơn", "Thắng", "Tuấn", "Việt", "Vinh", "Bảy", "Toàn")
FEMALE_GIVEN = ("Anh", "Chi", "Dung", "Giang", "Hà", "Hằng", "Hương", "Lan", "Linh", "Loan",
                "Mai", "Nga", "Ngân", "Oanh", "Phương", "Thảo", "Trang", "Tuyết", "Yến", "Hạnh")
STREETS = ("Lê Lợi", "Trần Hưng Đạo", "Nguyễn Trãi", "Hai Bà Trưng", "Lý Thường Kiệt",
           "Quang Trung", "Hùng Vương", "Phan Đình Phùng", "Điện Biên Phủ", "Bạch Đằng",
           "Nguyễn Du", "Lạc Long Quân", "Tô Hiệu", "Võ Thị Sáu", "Ngô Quyền", "Đội Cấn")
MEMBERS = ((1, 8), (2, 18), (3, 22), (4, 26), (5, 14), (6, 7), (7, 3), (8, 2))
# How far each step usually is relative to the group's share: phones first, online
# public services last.
STEP_PACE = {"smartphone": 1.4, "group_chat": 1.15, "vneid": 1.0, "citizen_app": 0.8,
             "epayment": 0.9, "public_services": 0.6}

Row = tuple[str, str, str, str, int, str]


def _weighted(rng: random.Random, pairs: tuple[tuple[Any, int], ...]) -> Any:
    values, weights = zip(*pairs, strict=True)
    return rng.choices(values, weights)[0]


def households(n: int, groups: int, seed: int = 7) -> list[Row]:
    """(code, group, head_name, address, members, phone), spread evenly over the groups."""
    rng = random.Random(seed)
    rows: list[Row] = []
    per_group = -(-n // groups)
    for i in range(n):
        g, k = divmod(i, per_group)
        group = f"TDP{g + 1:03d}"
        male = rng.random() < 0.6
        head = " ".join((
            _weighted(rng, SURNAMES),
            rng.choice(MALE_MIDDLE if male else FEMALE_MIDDLE),
            rng.choice(MALE_GIVEN if male else FEMALE_GIVEN),
        ))
        street = STREETS[(g * 3 + k // 60) % len(STREETS)]
        address = (f"Số {k % 60 + 1}, ngõ {g % 97 + 1} {street}" if k % 3
                   else f"{k + 1} {street}")
        phone = ""
        if rng.random() < 0.7:
            digits = f"0{rng.choice('39875')}{rng.randrange(10**8):08d}"
            phone = digits if rng.random() < 0.5 else f"{digits[:4]} {digits[4:7]} {digits[7:]}"
        rows.append((f"{group}-{k + 1:04d}", group, head, address,
                     _weighted(rng, MEMBERS), phone))
    return rows


def to_csv(rows: list[Row], steps: dict[str, list[str]] | None = None) -> bytes:
    """UTF-8 with BOM, as Excel saves "CSV UTF-8"; step columns appended when given."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    keys = list(steps or {})
    writer.writerow(["code", "group", "head_name", "address", "members", "phone", *keys])
    for i, row in enumerate(rows):
        writer.writerow([*row, *((steps or {})[k][i] for k in keys)])
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


def progress_columns(rows: list[Row], seed: int = 11) -> dict[str, list[str]]:
    """Per group a share between 30% and 70%; per step faster or slower than that; adult
    steps sometimes only partly done ("2" of 4 adults)."""
    rng = random.Random(seed)
    shares: dict[str, float] = {}
    per_adult = {s.key for s in default_steps() if s.per == "adult"}
    columns: dict[str, list[str]] = {key: [] for key in STEP_PACE}
    for _code, group, _head, _address, members, _phone in rows:
        share = shares.setdefault(group, rng.uniform(0.3, 0.7))
        for key, pace in STEP_PACE.items():
            cell = ""
            if rng.random() < min(0.97, share * pace):
                cell = "x"
                if key in per_adult and members > 1 and rng.random() < 0.3:
                    cell = str(rng.randint(1, members - 1))
            columns[key].append(cell)
    return columns


def quantiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return statistics.median(ordered), p95


class Figures:
    def __init__(self) -> None:
        self.rows: list[tuple[str, str, str]] = []

    def add(self, label: str, value: str, target: str = "") -> None:
        self.rows.append((label, value, target))
        print(f"  {label}: {value}" + (f"   (target {target})" if target else ""), flush=True)

    def table(self) -> str:
        width = max(len(r[0]) for r in self.rows)
        value_width = max(len(r[1]) for r in self.rows)
        lines = [f"{'figure':<{width}}  {'measured':<{value_width}}  target",
                 f"{'-' * width}  {'-' * value_width}  ------"]
        lines += [f"{label:<{width}}  {value:<{value_width}}  {target}"
                  for label, value, target in self.rows]
        return "\n".join(lines)


async def timed(action: Callable[[], Awaitable[Any]]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = await action()
    return time.perf_counter() - started, result


def read(data: bytes) -> tuple[float, Table]:
    started = time.perf_counter()
    table = read_table(data, "ho.csv")
    return time.perf_counter() - started, table


async def run(args: argparse.Namespace) -> None:
    figures = Figures()
    with tempfile.TemporaryDirectory() as tmp:
        async with FakeTelegram(token=TOKEN, bot_username="cds_bench_bot") as tg:
            config = Config.model_validate({
                "database": {"url": f"sqlite+aiosqlite:///{tmp}/bench.db"},
                "telegram": {"token": TOKEN, "api_base_url": tg.base_url},
                "web": {"port": 0},
            })
            app = BotApp(config, clock=FrozenClock(START))
            await app.db.upgrade()
            services = app.context.services
            await services.places.add_ward("HB", "Phường Hòa Bình")
            ward = await services.places.ward_by_code("HB")
            assert ward is not None
            ward_id = ward.id

            await load(app, ward_id, args, figures)

            # 3. Ward-wide progress at the service layer.
            print("3. ward progress")
            gc.collect()
            for _ in range(3):
                (await services.progress.ward(ward_id)).ranked()
            samples, collections, result = await ward_runs(app, ward_id, args.runs)
            median, p95 = quantiles(samples)
            figures.add(f"Progress.ward + ranked() ({args.runs} runs, {result.overall.percent}% "
                        f"done)", f"median {median * 1e3:.1f} ms, p95 {p95 * 1e3:.1f} ms",
                        "< 100 ms")
            figures.add("  full (gen 2) GC pauses during those runs",
                        f"{len(collections)}, {sum(collections) * 1e3:.0f} ms in all")
            gc.freeze()  # what a long-running bot can do once after start-up
            try:
                samples, collections, _ = await ward_runs(app, ward_id, args.runs)
            finally:
                gc.unfreeze()
            median, p95 = quantiles(samples)
            figures.add("  same after gc.freeze()",
                        f"median {median * 1e3:.1f} ms, p95 {p95 * 1e3:.1f} ms")

            # 4. /ghi end to end, and the same without HTTP.
            print("4. /ghi")
            await services.access.grant(platform="telegram", user_id=str(HELPER),
                                        role=Role.HELPER, ward_code="HB", group_code="TDP001")
            await services.access.grant(platform="telegram", user_id=str(OTHER_HELPER),
                                        role=Role.HELPER, ward_code="HB", group_code="TDP002")
            await app.start()
            try:
                await ghi_end_to_end(app, tg, figures, args.ghi)
            finally:
                await app.stop()
            await ghi_dispatch(app, figures, args.ghi)
            await app.db.dispose()
    print()
    print(figures.table())


async def load(app: BotApp, ward_id: int, args: argparse.Namespace, figures: Figures) -> None:
    """Steps 1 and 2; the generated rows and tables are garbage once this returns."""
    services = app.context.services
    rows = households(args.households, args.groups)
    data = to_csv(rows)
    print(f"{args.households:,} households in {args.groups} groups, "
          f"CSV {len(data) / 1e6:.1f} MB")
    # 1. Import, then the same file again.
    print("1. import")
    parse, table = read(data)
    took, report = await timed(lambda: services.registry.import_table(
        ward_id, table, create_groups=True))
    assert report.added == args.households and not report.rejected, report.rejected[:3]
    figures.add(f"import {args.households:,} rows (read_table + import_table)",
                f"{parse + took:.1f} s (read {parse:.1f} s)", "< 20 s")
    parse, table = read(data)
    took, report = await timed(lambda: services.registry.import_table(
        ward_id, table, create_groups=True))
    assert report.unchanged == args.households, report
    figures.add("re-import, all unchanged", f"{parse + took:.1f} s")

    # 2. Progress the ward already has: a sample of groups through the registry's
    # step columns (the real path), the rest straight into the tables, because the
    # registry path costs minutes at this size (see bench/README.md).
    print("2. seed progress")
    steps = progress_columns(rows)
    sample = args.households if args.seed_with_import else min(
        args.households, -(-args.households // args.groups) * args.sample_groups)
    parse, table = read(to_csv(rows[:sample], {k: v[:sample] for k, v in steps.items()}))
    took, report = await timed(lambda: services.registry.import_table(
        ward_id, table, create_groups=True))
    assert not report.rejected and report.unchanged == sample, report.rejected[:3]
    per_state = took / max(report.steps_set, 1) * 1e6
    figures.add(f"seed {sample:,} households via import_table step columns",
                f"{parse + took:.1f} s, {report.steps_set:,} states, "
                f"{per_state:.0f} µs/state")
    if sample < args.households:
        took, count = await timed(lambda: seed_directly(
            app, ward_id, rows[sample:], {k: v[sample:] for k, v in steps.items()}))
        figures.add(f"seed other {args.households - sample:,} by bulk insert + recount",
                    f"{took:.1f} s, {count:,} states")


async def ward_runs(
    app: BotApp, ward_id: int, runs: int
) -> tuple[list[float], list[float], WardProgress]:
    """Times `Progress.ward` + `ranked()`, and the full garbage collections meanwhile: the
    ORM objects each call loads are enough to trigger one every few calls."""
    progress = app.context.services.progress
    pauses: list[float] = []
    begun = [0.0]

    def watch(phase: str, info: dict[str, int]) -> None:
        if info["generation"] != 2:
            return
        if phase == "start":
            begun[0] = time.perf_counter()
        else:
            pauses.append(time.perf_counter() - begun[0])

    samples = []
    gc.callbacks.append(watch)
    try:
        for _ in range(runs):
            started = time.perf_counter()
            result = await progress.ward(ward_id)
            ranked = result.ranked()
            samples.append(time.perf_counter() - started)
    finally:
        gc.callbacks.remove(watch)
    assert len(ranked) == len(result.groups)
    return samples, pauses, result


async def seed_directly(
    app: BotApp, ward_id: int, rows: list[Row], steps: dict[str, list[str]]
) -> int:
    """What the step columns would write, as two executemany inserts and one recount."""
    by_key = {s.key: s for s in app.context.services.progress.steps}
    now = app.clock.now()
    async with app.db.session() as session:
        ids = {code: (int(hid or 0), gid) for code, hid, gid in (await session.exec(
            select(Household.code, Household.id, Household.group_id)
            .where(Household.ward_id == ward_id)
        )).all()}
        states: list[dict[str, object]] = []
        events: list[dict[str, object]] = []
        for i, row in enumerate(rows):
            household_id, group_id = ids[row[0]]
            for key, cells in steps.items():
                if not cells[i]:
                    continue
                total = step_total(by_key[key], row[4])
                units = total if cells[i] == "x" else int(cells[i])
                states.append({
                    "household_id": household_id, "step_key": key, "group_id": group_id,
                    "units": units, "complete": units >= total, "updated_at": now,
                })
                events.append({
                    "household_id": household_id, "group_id": group_id, "step_key": key,
                    "action": "set", "before_units": 0, "after_units": units,
                    "source": "import", "at": now,
                })
        await session.exec(sa.insert(HouseholdStep), params=states)
        await session.exec(sa.insert(ProgressEvent), params=events)
        await recount(session, ward_id)
    return len(states)


def codes(group: int, count: int, first: int = 1) -> list[str]:
    return [f"TDP{group:03d}-{k:04d}" for k in range(first, first + count)]


async def ghi_end_to_end(app: BotApp, tg: FakeTelegram, figures: Figures, count: int) -> None:
    """Stamps, all on the one event loop: the update queued in the fake server → getUpdates
    answers it → `Router.dispatch` starts → sendMessage reaches the server → dispatch ends →
    the waiting client sees the reply."""
    answered: list[float] = []
    received: list[float] = []
    began: list[float] = []
    ended: list[float] = []
    original_updates, original_send = tg._m_getUpdates, tg._m_sendMessage
    original_dispatch = app.router.dispatch
    idle = asyncio.Event()

    async def get_updates(call: Call) -> Any:
        result = await original_updates(call)
        if isinstance(result, list) and result:
            answered.append(time.perf_counter())
        return result

    async def send_message(call: Call) -> Any:
        received.append(time.perf_counter())
        return await original_send(call)

    async def dispatch(platform: Any, incoming: Incoming) -> None:
        idle.clear()
        began.append(time.perf_counter())
        try:
            await original_dispatch(platform, incoming)
        finally:
            ended.append(time.perf_counter())
            idle.set()

    tg._m_getUpdates = get_updates  # type: ignore[method-assign]
    tg._m_sendMessage = send_message  # type: ignore[method-assign]
    app.router.dispatch = dispatch  # type: ignore[method-assign]

    async def ghi(code: str) -> tuple[float, float, str]:
        before = len(tg.sent_to(HELPER))
        started = time.perf_counter()
        tg.message(HELPER, HELPER, f"/ghi {code} vneid epayment")
        sent = await tg.wait_sent(HELPER, before + 1)
        done = time.perf_counter()
        await idle.wait()  # the handler may still be closing its session after the reply
        return started, done, str(sent[-1].get("text", ""))

    spread = max(1, min(count, 240))
    for code in codes(1, 5, first=spread + 1):  # warm up: connections, templates, caches
        await ghi(code)
    total, polled, delivery, handler, to_reply, whole = [], [], [], [], [], []
    ok = 0
    for code in [codes(1, spread)[i % spread] for i in range(count)]:
        marks = len(answered), len(received), len(began)
        started, done, text = await ghi(code)
        ok += code in text
        assert (len(answered), len(received), len(began)) == tuple(m + 1 for m in marks)
        total.append(received[-1] - started)
        polled.append(answered[-1] - started)
        delivery.append(began[-1] - started)
        handler.append(received[-1] - began[-1])
        to_reply.append(done - started)
        whole.append(ended[-1] - began[-1])
    assert ok == count, f"only {ok} of {count} replies named their household"
    median, p95 = quantiles(total)
    figures.add(f"/ghi e2e: update queued → reply at fake server ({count} households)",
                f"median {median * 1e3:.1f} ms, p95 {p95 * 1e3:.1f} ms", "< 30 ms median")
    median, p95 = quantiles(polled)
    figures.add("  of which queued → getUpdates answered",
                f"median {median * 1e3:.1f} ms, p95 {p95 * 1e3:.1f} ms")
    median, p95 = quantiles(delivery)
    figures.add("  of which queued → Router.dispatch starts",
                f"median {median * 1e3:.1f} ms, p95 {p95 * 1e3:.1f} ms")
    median, p95 = quantiles(handler)
    figures.add("  of which Router.dispatch → sendMessage received",
                f"median {median * 1e3:.1f} ms, p95 {p95 * 1e3:.1f} ms")
    median, p95 = quantiles(whole)
    figures.add("  Router.dispatch start → end in that run",
                f"median {median * 1e3:.1f} ms, p95 {p95 * 1e3:.1f} ms")
    median, p95 = quantiles(to_reply)
    figures.add("/ghi e2e as a waiting client sees it (wait_sent)",
                f"median {median * 1e3:.1f} ms, p95 {p95 * 1e3:.1f} ms")


async def ghi_dispatch(app: BotApp, figures: Figures, count: int) -> None:
    """The same command through `Router.dispatch` with a recording platform: handler, services
    and SQLite only."""
    platform = RecordingPlatform()
    spread = max(1, min(count, 240))

    def incoming(code: str) -> Incoming:
        return message(f"/ghi {code} vneid epayment", user=str(OTHER_HELPER))

    for code in codes(2, 5, first=spread + 1):
        await app.router.dispatch(platform, incoming(code))
    samples = []
    for code in [codes(2, spread)[i % spread] for i in range(count)]:
        took, _ = await timed(lambda code=code: app.router.dispatch(platform, incoming(code)))
        samples.append(took)
        assert code in platform.last.text, platform.last.text
    median, p95 = quantiles(samples)
    figures.add(f"/ghi in process: Router.dispatch + RecordingPlatform ({count})",
                f"median {median * 1e3:.1f} ms, p95 {p95 * 1e3:.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--households", type=int, default=100_000)
    parser.add_argument("--groups", type=int, default=400)
    parser.add_argument("--runs", type=int, default=50, help="Progress.ward repetitions")
    parser.add_argument("--sample-groups", type=int, default=10,
                        help="groups seeded through import_table; the rest in bulk")
    parser.add_argument("--seed-with-import", action="store_true",
                        help="seed every household through import_table (minutes)")
    parser.add_argument("--ghi", type=int, default=200, help="/ghi commands to time")
    args = parser.parse_args()
    started = time.perf_counter()
    asyncio.run(run(args))
    print(f"\ntotal {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
