"""Campaigns (đợt thi đua): a step, a target share, a period, groups and a reminder schedule.

The rows are the schedule. `due_runs` answers "which campaigns owe a reminder now?" from
each campaign's days and time, using APScheduler's cron arithmetic, and `ScheduleRun`
remembers the last run: several missed slots (the bot was down) give one late reminder
within the grace time, never five, and a restart never repeats one.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo

from apscheduler.triggers.cron import CronTrigger
from sqlmodel import col, select

from bot.clock import Clock
from bot.core import is_number
from bot.db import Database
from bot.models import Campaign, ScheduleRun
from bot.roles import Role
from bot.services import audit
from bot.services.access import Identity
from bot.services.errors import ServiceError
from bot.services.explanations import fold
from bot.services.progress import GroupProgress, StepCount

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
STATES = ("active", "paused", "ended")


@dataclass(frozen=True)
class CampaignInfo:
    id: int
    ward_id: int
    title: str
    step_key: str
    target_percent: int
    starts_on: date
    ends_on: date
    group_ids: list[int]
    days: list[str]
    at_time: str
    state: str
    congratulated: list[int]

    @property
    def target(self) -> float:
        return self.target_percent / 100


def _info(row: Campaign) -> CampaignInfo:
    assert row.id is not None
    return CampaignInfo(
        id=row.id, ward_id=row.ward_id, title=row.title, step_key=row.step_key,
        target_percent=row.target_percent, starts_on=row.starts_on, ends_on=row.ends_on,
        group_ids=[int(g) for g in row.group_ids], days=row.days.split(","),
        at_time=row.at_time, state=row.state, congratulated=[int(g) for g in row.congratulated],
    )


ENGLISH = {"mon": "mon", "monday": "mon", "tue": "tue", "tuesday": "tue", "wed": "wed",
           "wednesday": "wed", "thu": "thu", "thursday": "thu", "fri": "fri", "friday": "fri",
           "sat": "sat", "saturday": "sat", "sun": "sun", "sunday": "sun"}


def parse_days(text: str) -> list[str]:
    """"t2 t4 t6", "thứ 2, thứ 4", "thu2", "2,4,6", "mon wed", "hằng ngày" → day keys."""
    folded = fold(text.replace(",", " ").replace("-", " "))
    if folded.replace(" ", "") in ("hangngay", "moingay", "daily", "everyday", ""):
        if folded:
            return list(DAYS)
        raise ServiceError("bad_days", text=text)
    # "thu 2" / "t 2" written apart: join the word to its number first
    words = re.sub(r"\b(thu|t)\s+(\d)\b", r"\1\2", folded).split()
    days: list[str] = []
    for word in words:
        if word in ENGLISH:
            day = ENGLISH[word]
        elif word in ("cn", "chunhat"):
            day = "sun"
        else:
            number = word.removeprefix("thu") if word.startswith("thu") else \
                word.removeprefix("t")
            if not (number.isascii() and is_number(number) and 2 <= int(number) <= 8):
                raise ServiceError("bad_days", text=text)
            day = DAYS[int(number) - 2] if int(number) <= 7 else "sun"
        if day not in days:
            days.append(day)
    return sorted(days, key=DAYS.index)


def parse_time(text: str) -> str:
    text = text.strip().lower().replace("h", ":")
    hour, _, minute = text.partition(":")
    if not is_number(hour) or (minute and not is_number(minute)):
        raise ServiceError("bad_time", text=text)
    h, m = int(hour), int(minute or 0)
    if not (0 <= h <= 23 and 0 <= m <= 59):
        raise ServiceError("bad_time", text=text)
    return f"{h:02d}:{m:02d}"


def trigger(info: CampaignInfo, tz: tzinfo) -> CronTrigger:
    hour, minute = (int(p) for p in info.at_time.split(":"))
    return CronTrigger(day_of_week=",".join(info.days), hour=hour, minute=minute, timezone=tz)


def latest_slot(cron: CronTrigger, since: datetime, now: datetime) -> datetime | None:
    """The last reminder time in (since, now], or None: missed slots collapse into one."""
    slot = None
    probe = cron.get_next_fire_time(None, since + timedelta(seconds=1))
    for _ in range(1000):
        if probe is None or probe > now:
            break
        slot = probe
        probe = cron.get_next_fire_time(probe, probe + timedelta(seconds=1))
    return slot


class Campaigns:
    def __init__(self, db: Database, clock: Clock, tz: tzinfo, grace: timedelta) -> None:
        self._db = db
        self._clock = clock
        self._tz = tz
        self._grace = grace

    def today(self) -> date:
        return self._clock.now().astimezone(self._tz).date()

    async def create(
        self, identity: Identity, ward_id: int, *, title: str, step_key: str, target: int,
        starts_on: date, ends_on: date, group_ids: Sequence[int], days: Sequence[str],
        at_time: str,
    ) -> CampaignInfo:
        if identity.role_in_ward(ward_id) < Role.COORDINATOR:
            raise ServiceError("not_allowed")
        title = " ".join(title.split())
        if not title or len(title) > 200:
            raise ServiceError("bad_title")
        if not 1 <= target <= 100:
            raise ServiceError("bad_target")
        if ends_on < starts_on or ends_on < self.today():
            raise ServiceError("bad_period")
        now = self._clock.now()
        async with self._db.session() as session:
            row = Campaign(
                ward_id=ward_id, title=title, step_key=step_key, target_percent=target,
                starts_on=starts_on, ends_on=ends_on, group_ids=list(group_ids),
                days=",".join(days), at_time=at_time, state="active",
                created_by=identity.member_id, created_at=now, last_run_at=now,
            )
            session.add(row)
            await session.flush()
            audit.record(session, self._clock, action="campaign.create",
                         actor_member_id=identity.member_id, ward_id=ward_id,
                         target=f"campaign:{row.id}", title=title)
            return _info(row)

    async def in_ward(self, ward_id: int) -> list[CampaignInfo]:
        async with self._db.session() as session:
            rows = (await session.exec(
                select(Campaign).where(Campaign.ward_id == ward_id)
                .order_by(col(Campaign.state), col(Campaign.ends_on).desc())
            )).all()
            return [_info(r) for r in rows]

    async def get(self, campaign_id: int) -> CampaignInfo | None:
        async with self._db.session() as session:
            row = await session.get(Campaign, campaign_id)
            return _info(row) if row else None

    async def set_state(self, identity: Identity, campaign_id: int, state: str) -> CampaignInfo:
        if state not in STATES:
            raise ServiceError("bad_state")
        async with self._db.session() as session:
            row = await session.get(Campaign, campaign_id)
            if row is None:
                raise ServiceError("unknown")
            if identity.role_in_ward(row.ward_id) < Role.COORDINATOR:
                raise ServiceError("not_allowed")
            if row.state == "ended":
                raise ServiceError("already_ended")
            row.state = state
            if state == "active":  # resuming does not replay the reminders missed meanwhile
                row.last_run_at = self._clock.now()
            session.add(row)
            audit.record(session, self._clock, action=f"campaign.{state}",
                         actor_member_id=identity.member_id, ward_id=row.ward_id,
                         target=f"campaign:{campaign_id}")
            return _info(row)

    async def due_runs(self) -> list[CampaignInfo]:
        """Active campaigns whose reminder time has come since their last run (one run for
        any number of missed slots; none when the slot is older than the grace time)."""
        now = self._clock.now()
        due = []
        async with self._db.session() as session:
            rows = (await session.exec(select(Campaign).where(Campaign.state == "active"))).all()
            for row in rows:
                info = _info(row)
                since = row.last_run_at or row.created_at
                slot = latest_slot(trigger(info, self._tz), since, now)
                if slot is None:
                    continue
                if now - slot > self._grace:
                    row.last_run_at = now  # too late to be useful: skip, do not pile up
                    session.add(row)
                    continue
                due.append(info)
        return due

    async def mark_run(self, campaign_id: int) -> None:
        async with self._db.session() as session:
            row = await session.get(Campaign, campaign_id)
            if row is not None:
                row.last_run_at = self._clock.now()
                session.add(row)

    async def congratulate(self, campaign_id: int, group_ids: Sequence[int]) -> list[int]:
        """Record groups reaching the target; returns those not congratulated before."""
        async with self._db.session() as session:
            row = await session.get(Campaign, campaign_id)
            if row is None:
                return []
            done = {int(g) for g in row.congratulated}
            new = [g for g in group_ids if g not in done]
            if new:
                row.congratulated = sorted(done | set(new))
                session.add(row)
            return new

    async def end(self, campaign_id: int) -> bool:
        """End a campaign once; True for the caller that should post the final ranking."""
        async with self._db.session() as session:
            row = await session.get(Campaign, campaign_id)
            if row is None or row.ended_at is not None:
                return False
            row.state = "ended"
            row.ended_at = self._clock.now()
            session.add(row)
            return True

    async def past_end(self) -> list[CampaignInfo]:
        """Campaigns whose last day is over but that have not posted their final ranking."""
        today = self.today()
        async with self._db.session() as session:
            rows = (await session.exec(
                select(Campaign).where(col(Campaign.ended_at).is_(None),
                                       col(Campaign.ends_on) < today)
            )).all()
            return [_info(r) for r in rows]

    async def ended_by_hand(self) -> list[CampaignInfo]:
        async with self._db.session() as session:
            rows = (await session.exec(
                select(Campaign).where(Campaign.state == "ended",
                                       col(Campaign.ended_at).is_(None))
            )).all()
            return [_info(r) for r in rows]

    async def daily_due(self, key: str, at: time) -> bool:
        """A once-a-day job (the digest): due when today's time has passed since its last
        run, within the grace time. Marks the run, so it is taken exactly once."""
        now = self._clock.now()
        local = now.astimezone(self._tz)
        slot = datetime.combine(local.date(), at, tzinfo=self._tz)
        if local < slot:
            slot -= timedelta(days=1)
        async with self._db.session() as session:
            row = await session.get(ScheduleRun, key)
            if row is None:
                session.add(ScheduleRun(key=key, last_run_at=now))
                return now - slot <= self._grace
            if row.last_run_at >= slot:
                return False
            row.last_run_at = now
            session.add(row)
            return now - slot <= self._grace


def covered(groups: Sequence[GroupProgress], c: CampaignInfo) -> list[GroupProgress]:
    """The groups a campaign runs in (all of the ward's when it names none)."""
    return [g for g in groups if not c.group_ids or g.group_id in c.group_ids]


def campaign_total(groups: Sequence[GroupProgress], c: CampaignInfo) -> StepCount:
    """The campaign's step summed over the groups it covers."""
    counts = [g.steps[c.step_key] for g in covered(groups, c) if c.step_key in g.steps]
    return StepCount(c.step_key, sum(x.done for x in counts), sum(x.total for x in counts),
                     sum(x.households_done for x in counts))
