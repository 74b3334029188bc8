"""Series (chuyên đề): guides posted one at a time to chosen groups on a rhythm.

A series is a row: its days and time, its guides in order and `next_index`, the next guide
to post. `due()` answers "which series owe a guide now?" with APScheduler's cron arithmetic
(as campaigns do); once the guide is queued, `mark_sent` moves `next_index` on in one guarded
UPDATE, so a slot never posts twice — not on two instances, not after a restart. A slot is
never used inside quiet hours; one missed while the bot was down is made up within the grace
time, else skipped (the guide waits for the next slot): slots never pile up.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Any

import sqlalchemy as sa
from apscheduler.triggers.cron import CronTrigger
from sqlmodel import col, select

from bot.clock import Clock
from bot.core import Role
from bot.db import Database
from bot.delivery.quiet import QuietHours
from bot.models import Campaign, GuideSeries, ResidentialGroup
from bot.services import audit
from bot.services.access import Identity
from bot.services.campaigns import DAYS, CampaignError, latest_slot, parse_days, parse_time
from bot.services.explanations import fold

MAX_GUIDES = 30
STATES = ("active", "paused", "ended")
# Vietnamese day names as people write them, folded: "thứ Ba" → "thu ba" → "t3".
_DAY_WORDS = {"hai": "2", "ba": "3", "tu": "4", "nam": "5", "sau": "6", "bay": "7"}
_WEEKLY = ("moi tuan", "hang tuan", "tuan mot", "1 bai moi tuan", "weekly")


class SeriesError(Exception):
    def __init__(self, reason: str, **details: Any) -> None:
        super().__init__(reason)
        self.reason = reason
        self.details = details


@dataclass(frozen=True)
class SeriesInfo:
    id: int
    ward_id: int
    title: str
    topic_keys: list[str]
    group_ids: list[int]
    days: list[str]
    at_time: str
    starts_on: date
    ends_on: date | None
    campaign_id: int | None
    state: str
    next_index: int
    sent_at: list[datetime]

    @property
    def sent(self) -> list[str]:
        return self.topic_keys[: self.next_index]

    @property
    def coming(self) -> list[str]:
        return self.topic_keys[self.next_index:]


@dataclass(frozen=True)
class SeriesRun:
    """A claimed slot: post guide number `index` of `series` now."""

    series: SeriesInfo
    index: int

    @property
    def topic_key(self) -> str:
        return self.series.topic_keys[self.index]


def _series(row: GuideSeries) -> SeriesInfo:
    assert row.id is not None
    return SeriesInfo(
        id=row.id, ward_id=row.ward_id, title=row.title,
        topic_keys=[str(k) for k in row.topic_keys], group_ids=[int(g) for g in row.group_ids],
        days=row.days.split(","), at_time=row.at_time, starts_on=row.starts_on,
        ends_on=row.ends_on, campaign_id=row.campaign_id, state=row.state,
        next_index=row.next_index, sent_at=[datetime.fromisoformat(s) for s in row.sent_at],
    )


def parse_rhythm(text: str) -> tuple[list[str], str]:
    """"thứ Ba và thứ Sáu, 19:00", "t3 t6 19h", "mỗi tuần một bài" (Mondays 19:00)
    → (day keys, "HH:MM"). Raises GuideError("bad_rhythm")."""
    folded = fold(text.replace(":", "h"))
    at = "19:00"
    words = folded.split()
    found_time = next((w for w in reversed(words) if re.fullmatch(r"\d{1,2}h?\d{0,2}", w)
                       and not re.fullmatch(r"[2-8]", w)), None)
    try:
        if found_time is not None:
            at = parse_time(found_time)
            words.remove(found_time)
        body = " ".join(words)
        if any(w in body for w in _WEEKLY) or body in ("1 bai 1 tuan", "mot bai mot tuan"):
            return ["mon"], at
        body = re.sub(r"\b(thu|t)\s+(hai|ba|tu|nam|sau|bay)\b",
                      lambda m: "t" + _DAY_WORDS[m.group(2)], body)
        body = " ".join(w for w in body.split() if w not in ("va", "and", "luc", "gio"))
        days = parse_days(body)
    except CampaignError:
        raise SeriesError("bad_rhythm", text=text) from None
    return days, at


def trigger(days: Sequence[str], at_time: str, tz: tzinfo) -> CronTrigger:
    hour, minute = (int(p) for p in at_time.split(":"))
    return CronTrigger(day_of_week=",".join(days), hour=hour, minute=minute, timezone=tz)


class Series:
    def __init__(self, db: Database, clock: Clock, tz: tzinfo, quiet: QuietHours,
                 grace: timedelta) -> None:
        self._db = db
        self._clock = clock
        self._tz = tz
        self._quiet = quiet
        self._grace = grace

    def today(self) -> date:
        return self._clock.now().astimezone(self._tz).date()

    def in_quiet_hours(self, at_time: str, day: date | None = None) -> bool:
        hour, minute = (int(p) for p in at_time.split(":"))
        moment = datetime.combine(day or self.today(), time(hour, minute), tzinfo=self._tz)
        return self._quiet.ends_after(moment) is not None

    async def create(
        self, identity: Identity, ward_id: int, *, title: str, topic_keys: Sequence[str],
        group_ids: Sequence[int], days: Sequence[str], at_time: str, starts_on: date,
        ends_on: date | None, campaign_id: int | None = None,
    ) -> SeriesInfo:
        if identity.role_in_ward(ward_id) < Role.COORDINATOR:
            raise SeriesError("not_allowed")
        title = " ".join(title.split())
        if not title or len(title) > 200:
            raise SeriesError("bad_title")
        if not topic_keys or len(topic_keys) > MAX_GUIDES:
            raise SeriesError("no_guides", limit=MAX_GUIDES)
        if not group_ids:
            raise SeriesError("no_targets")
        if not days or any(d not in DAYS for d in days):
            raise SeriesError("bad_rhythm")
        if self.in_quiet_hours(at_time):
            raise SeriesError("quiet_time", at=at_time)
        if starts_on < self.today() or (ends_on is not None and ends_on < starts_on):
            raise SeriesError("bad_period")
        now = self._clock.now()
        async with self._db.session() as session:
            valid = set((await session.exec(select(ResidentialGroup.id).where(
                ResidentialGroup.ward_id == ward_id))).all())
            if not set(group_ids) <= valid:
                raise SeriesError("not_your_group")
            row = GuideSeries(
                ward_id=ward_id, title=title, topic_keys=list(topic_keys),
                group_ids=sorted(set(group_ids)), days=",".join(days), at_time=at_time,
                starts_on=starts_on, ends_on=ends_on, campaign_id=campaign_id,
                state="active", created_by=identity.member_id, created_at=now,
                last_run_at=now,
            )
            session.add(row)
            await session.flush()
            audit.record(session, self._clock, action="series.create",
                         actor_member_id=identity.member_id, ward_id=ward_id,
                         target=f"series:{row.id}", title=title, guides=list(topic_keys))
            return _series(row)

    async def in_ward(self, ward_id: int) -> list[SeriesInfo]:
        async with self._db.session() as session:
            rows = (await session.exec(
                select(GuideSeries).where(GuideSeries.ward_id == ward_id)
                .order_by(col(GuideSeries.id).desc()))).all()
            return [_series(r) for r in rows]

    async def set_state(self, identity: Identity, series_id: int,
                               state: str) -> SeriesInfo:
        if state not in STATES:
            raise SeriesError("bad_state")
        async with self._db.session() as session:
            row = await session.get(GuideSeries, series_id)
            if row is None:
                raise SeriesError("unknown")
            if identity.role_in_ward(row.ward_id) < Role.COORDINATOR:
                raise SeriesError("not_allowed")
            if row.state == "ended":
                raise SeriesError("already_ended")
            row.state = state
            if state == "active":  # resuming does not post the slots missed while paused
                row.last_run_at = self._clock.now()
            session.add(row)
            audit.record(session, self._clock, action=f"series.{state}",
                         actor_member_id=identity.member_id, ward_id=row.ward_id,
                         target=f"series:{series_id}")
            return _series(row)

    def next_slots(self, info: SeriesInfo, count: int) -> list[datetime]:
        """When the coming guides should go out (the schedule as it stands now)."""
        cron = trigger(info.days, info.at_time, self._tz)
        start = datetime.combine(info.starts_on, time(0), tzinfo=self._tz)
        probe = max(self._clock.now(), start)
        slots: list[datetime] = []
        while len(slots) < count:
            nxt = cron.get_next_fire_time(None, probe)
            if nxt is None or (info.ends_on and nxt.astimezone(self._tz).date() > info.ends_on):
                break
            slots.append(nxt)
            probe = nxt + timedelta(seconds=1)
        return slots

    async def due(self) -> list[SeriesRun]:
        """The slots that have come: one guide per series per slot, never inside quiet
        hours (a slot missed there waits for the next one). The caller queues the guide
        (idempotently: its outbox keys name the series and the guide's place), then
        `mark_sent`s it; a crash in between only queues the same rows again next time."""
        now = self._clock.now()
        today = self.today()
        quiet = self._quiet.ends_after(now) is not None
        runs: list[SeriesRun] = []
        async with self._db.session() as session:
            rows = (await session.exec(
                select(GuideSeries).where(GuideSeries.state == "active"))).all()
            campaigns = {c.id: c for c in (await session.exec(select(Campaign).where(
                col(Campaign.id).in_([r.campaign_id for r in rows if r.campaign_id])))).all()}
        for row in rows:
            info = _series(row)
            campaign = campaigns.get(row.campaign_id) if row.campaign_id else None
            over = (info.ends_on is not None and today > info.ends_on) or \
                info.next_index >= len(info.topic_keys) or \
                (campaign is not None and campaign.state == "ended")
            if over:
                await self._end(info.id)
                continue
            since = row.last_run_at or row.created_at
            slot = latest_slot(trigger(info.days, info.at_time, self._tz), since, now)
            if slot is None or quiet:
                continue
            paused_by_campaign = campaign is not None and campaign.state == "paused"
            if now - slot > self._grace or today < info.starts_on or paused_by_campaign:
                await self._skip(info.id, now)  # too late, too early, or on hold: no pile-up
                continue
            runs.append(SeriesRun(info, info.next_index))
        return runs

    async def mark_sent(self, run: SeriesRun) -> bool:
        """Move the series past the guide just queued: one guarded UPDATE, so of two
        runs of one slot only one moves it (the other queued nothing new). False: it
        had moved already."""
        info, now = run.series, self._clock.now()
        done = info.next_index + 1 >= len(info.topic_keys)
        sent = [s.isoformat() for s in info.sent_at] + [now.isoformat()]
        async with self._db.session() as session:
            result = await session.exec(
                sa.update(GuideSeries)
                .where(col(GuideSeries.id) == info.id,
                       col(GuideSeries.next_index) == info.next_index,
                       col(GuideSeries.state) == "active")
                .values(next_index=info.next_index + 1, last_run_at=now, sent_at=sent,
                        state="ended" if done else "active"))
            return bool(result.rowcount)

    async def _skip(self, series_id: int, now: datetime) -> None:
        async with self._db.session() as session:
            await session.exec(sa.update(GuideSeries).where(col(GuideSeries.id) == series_id)
                               .values(last_run_at=now))

    async def _end(self, series_id: int) -> None:
        async with self._db.session() as session:
            await session.exec(sa.update(GuideSeries).where(col(GuideSeries.id) == series_id)
                               .values(state="ended"))
