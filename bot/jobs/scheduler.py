"""Periodic jobs on APScheduler, owned here: registered by name, logged at start, each run's
failure logged with context and never allowed to stop the others.

The schedules themselves come from our own tables and config (the source of truth); the
scheduler's in-memory jobs are rebuilt at every start, so nothing of APScheduler is persisted.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, tzinfo

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

log = logging.getLogger(__name__)

JobFunc = Callable[[], Awaitable[object]]


@dataclass(frozen=True)
class Job:
    name: str
    func: JobFunc
    every_seconds: int | None = None
    cron: str | None = None  # "minute hour day month day_of_week", e.g. "0 17 * * *"


Leader = Callable[[], Awaitable[bool]]


class Scheduler:
    def __init__(self, timezone: tzinfo, leader: Leader | None = None, *,
                 watch_seconds: int = 5) -> None:
        self._timezone = timezone
        self._leader = leader
        self._scheduler = AsyncIOScheduler(timezone=timezone)
        self._jobs: dict[str, Job] = {}
        self.watch_seconds = watch_seconds
        # None until first asked: an instance that leads from its start keeps the normal
        # schedule; only one that was a follower runs the jobs at once when it takes over.
        self.leading: bool | None = True if leader is None else None

    def add(self, job: Job) -> None:
        if job.name in self._jobs:
            raise ValueError(f"job {job.name!r} added twice")
        if (job.every_seconds is None) == (job.cron is None):
            raise ValueError(f"job {job.name!r} needs exactly one of every_seconds or cron")
        self._jobs[job.name] = job

    async def run_now(self, name: str) -> object:
        """Run one job at once (used by tests and by "send now" buttons)."""
        return await self._jobs[name].func()

    def start(self) -> None:
        for job in self._jobs.values():
            trigger: IntervalTrigger | CronTrigger
            if job.every_seconds is not None:
                trigger = IntervalTrigger(seconds=job.every_seconds, timezone=self._timezone)
            else:
                assert job.cron is not None
                trigger = CronTrigger.from_crontab(job.cron, timezone=self._timezone)
            self._scheduler.add_job(
                self._guarded, trigger, args=[job], id=job.name, name=job.name,
                max_instances=1, coalesce=True, misfire_grace_time=300,
            )
            log.info("scheduler: job %s %s", job.name, trigger)
        if self._leader is not None:
            self._scheduler.add_job(
                self.watch, IntervalTrigger(seconds=self.watch_seconds, timezone=self._timezone),
                id="leader-watch", name="leader-watch", max_instances=1, coalesce=True,
            )
        self._scheduler.start()

    async def watch(self) -> bool:
        """Look whether this instance leads; one that has just become the leader runs the
        interval jobs now instead of at their next tick. Returns whether it leads."""
        if self._leader is None:
            return True
        try:
            leads = await self._leader()
        except Exception:
            log.exception("scheduler: could not ask for the leader lock")
            leads = False
        elected, self.leading = leads and self.leading is False, leads
        if elected and self._scheduler.running:
            now = datetime.now(self._timezone)
            for job in self._jobs.values():
                if job.every_seconds is not None:
                    self._scheduler.modify_job(job.name, next_run_time=now)
        return leads

    async def _guarded(self, job: Job) -> None:
        try:
            if self._leader is not None and not await self._leader():
                return  # another instance holds the scheduler lock
            result = await job.func()
            log.debug("scheduler: job %s done: %s", job.name, result)
        except Exception:
            log.exception("scheduler: job %s failed", job.name)

    def stop(self) -> None:
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)
