"""Guides in the group chats: posts by the share button and by series, reads per group,
short numbers for platforms without links, and series (chuyên đề) with their schedule.

A group post carries a way to open the guide's steps in the person's private chat: a
Telegram deep link `g_<key>_<group id>` or, on Zalo, "hd <number>". Opening it counts one
read per person, guide and group — the "lượt xem" ward reports use. A series is a row: its
rhythm (days and time), its guides in order and `next_index`; a run claims the next guide
by moving `next_index` on in one guarded UPDATE, so one slot never posts twice, and runs
inside quiet hours are held for the next slot.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Any

import sqlalchemy as sa
from apscheduler.triggers.cron import CronTrigger
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, func, select

from bot.clock import Clock
from bot.core import Role, is_number
from bot.db import Database
from bot.delivery.quiet import QuietHours
from bot.models import (
    Campaign,
    Delivery,
    GuideNumber,
    GuidePost,
    GuideRead,
    GuideSeries,
    ResidentialGroup,
    TopicVote,
)
from bot.services import audit
from bot.services.access import Identity
from bot.services.campaigns import DAYS, CampaignError, latest_slot, parse_days, parse_time
from bot.services.explanations import fold

LINK_PREFIX = "g_"
MAX_GUIDES = 30
STATES = ("active", "paused", "ended")
# Vietnamese day names as people write them, folded: "thứ Ba" → "thu ba" → "t3".
_DAY_WORDS = {"hai": "2", "ba": "3", "tu": "4", "nam": "5", "sau": "6", "bay": "7"}
_WEEKLY = ("moi tuan", "hang tuan", "tuan mot", "1 bai moi tuan", "weekly")


class GuideError(Exception):
    def __init__(self, reason: str, **details: Any) -> None:
        super().__init__(reason)
        self.reason = reason
        self.details = details


@dataclass(frozen=True)
class PostTarget:
    group_id: int
    platform: str
    chat_id: str
    dedupe: str


@dataclass(frozen=True)
class GroupReads:
    group_id: int
    code: str
    reads: int


@dataclass(frozen=True)
class GuideStats:
    """One guide in one ward: posts delivered to group chats, people who opened its steps
    from them, 👍/👎, and the reads of each group it was posted to (0: nobody yet)."""

    key: str
    posts: int
    reads: int
    helpful: int
    unhelpful: int
    groups: list[GroupReads]

    @property
    def silent(self) -> list[str]:
        return [g.code for g in self.groups if not g.reads]


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


def link_payload(key: str, group_id: int | None = None) -> str:
    """The deep-link start payload; within Telegram's 64 characters of [A-Za-z0-9_-]
    (keys are a-z0-9_ and at most 40 long)."""
    return f"{LINK_PREFIX}{key}" + (f"_{group_id}" if group_id is not None else "")


def parse_link(payload: str, known: set[str]) -> tuple[str, int | None] | None:
    """`g_<key>[_<group id>]` → (key, group id); None if not a guide link or unknown."""
    if not payload.startswith(LINK_PREFIX):
        return None
    rest = payload[len(LINK_PREFIX):]
    key, _, group = rest.rpartition("_")
    if key in known and is_number(group):
        return key, int(group)
    if rest in known:
        return rest, None
    return None


def parse_code(text: str) -> int | str | None:
    """"hd 3" (or "HD3", "/hd 3") → 3; "hd vneid_what" → "vneid_what"; else None."""
    match = re.fullmatch(r"/?hd\s*([a-z0-9_]{1,40})", text.strip().lower())
    if match is None:
        return None
    value = match.group(1)
    return int(value) if is_number(value) else value


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
        raise GuideError("bad_rhythm", text=text) from None
    return days, at


def trigger(days: Sequence[str], at_time: str, tz: tzinfo) -> CronTrigger:
    hour, minute = (int(p) for p in at_time.split(":"))
    return CronTrigger(day_of_week=",".join(days), hour=hour, minute=minute, timezone=tz)


class Guides:
    def __init__(self, db: Database, clock: Clock, tz: tzinfo, quiet: QuietHours,
                 grace: timedelta) -> None:
        self._db = db
        self._clock = clock
        self._tz = tz
        self._quiet = quiet
        self._grace = grace

    def today(self) -> date:
        return self._clock.now().astimezone(self._tz).date()

    # --- numbers for "hd 3" ---------------------------------------------------------------
    async def number_of(self, key: str) -> int:
        """The guide's short number, given on first use and never changed."""
        for _ in range(3):
            async with self._db.session() as session:
                found = (await session.exec(
                    select(GuideNumber.number).where(GuideNumber.topic_key == key))).first()
                if found is not None:
                    return int(found)
            try:
                async with self._db.session() as session:
                    row = GuideNumber(topic_key=key)
                    session.add(row)
                    await session.flush()
                    assert row.number is not None
                    return row.number
            except IntegrityError:
                continue  # someone numbered it at the same moment: read theirs
        raise RuntimeError(f"could not number guide {key}")

    async def key_of(self, number: int) -> str | None:
        async with self._db.session() as session:
            row = await session.get(GuideNumber, number)
            return row.topic_key if row else None

    # --- posts and reads ------------------------------------------------------------------
    async def record_posts(self, ward_id: int, key: str, source: str, source_id: int,
                           targets: Sequence[PostTarget]) -> None:
        now = self._clock.now()
        async with self._db.session() as session:
            known = set((await session.exec(select(GuidePost.dedupe).where(
                col(GuidePost.dedupe).in_([t.dedupe for t in targets])))).all())
            for t in targets:
                if t.dedupe not in known:
                    session.add(GuidePost(
                        ward_id=ward_id, topic_key=key, group_id=t.group_id,
                        platform=t.platform, chat_id=t.chat_id, source=source,
                        source_id=source_id, dedupe=t.dedupe[:160], created_at=now))

    async def record_read(self, identity: Identity, key: str, group_id: int | None,
                          via: str) -> GroupReads | None:
        """Count one read of `key` for the group of the post it came from — a group the
        guide was really posted to — or else for the reader's own group. Returns the group
        it counted for (None: not counted for a group)."""
        async with self._db.session() as session:
            posted = dict((await session.exec(
                select(GuidePost.group_id, GuidePost.ward_id)
                .where(GuidePost.topic_key == key).distinct())).all())
            chosen = group_id if group_id in posted else None
            if chosen is None:
                own = [g.group_id for g in identity.grants if g.group_id is not None]
                chosen = next((g for g in own if g in posted), own[0] if own else None)
            ward_id: int | None = None
            code = ""
            if chosen is not None:
                group = await session.get(ResidentialGroup, chosen)
                if group is None:
                    chosen = None
                else:
                    ward_id, code = group.ward_id, group.code
            query = select(GuideRead.id).where(
                GuideRead.topic_key == key, GuideRead.member_id == identity.member_id,
                GuideRead.group_id == chosen if chosen is not None
                else col(GuideRead.group_id).is_(None))
            if (await session.exec(query)).first() is None:
                try:
                    async with session.begin_nested():
                        session.add(GuideRead(
                            ward_id=ward_id, group_id=chosen, topic_key=key,
                            member_id=identity.member_id, via=via, at=self._clock.now()))
                except IntegrityError:
                    pass  # the same person opened it twice at once: one read
        return GroupReads(chosen, code, 1) if chosen is not None else None

    async def stats(self, ward_id: int) -> list[GuideStats]:
        """Per guide posted in the ward: posts sent, reads, 👍/👎, reads per group."""
        async with self._db.session() as session:
            sent = dict((await session.exec(
                select(GuidePost.topic_key, func.count())
                .join(Delivery, col(Delivery.dedupe) == col(GuidePost.dedupe))
                .where(GuidePost.ward_id == ward_id, Delivery.state == "sent")
                .group_by(col(GuidePost.topic_key)))).all())
            posted = (await session.exec(
                select(GuidePost.topic_key, GuidePost.group_id, ResidentialGroup.code)
                .join(ResidentialGroup, col(ResidentialGroup.id) == col(GuidePost.group_id))
                .where(GuidePost.ward_id == ward_id).distinct())).all()
            reads = {(k, g): int(n) for k, g, n in (await session.exec(
                select(GuideRead.topic_key, GuideRead.group_id, func.count())
                .where(GuideRead.ward_id == ward_id)
                .group_by(col(GuideRead.topic_key), col(GuideRead.group_id)))).all()}
            keys = {k for k, _g, _c in posted}
            votes: dict[tuple[str, bool], int] = {
                (k, bool(h)): int(n) for k, h, n in (await session.exec(
                    select(TopicVote.topic_key, TopicVote.helpful, func.count())
                    .where(col(TopicVote.topic_key).in_(keys))
                    .group_by(col(TopicVote.topic_key), col(TopicVote.helpful)))).all()}
        totals: dict[str, int] = {}
        for (key, _group), n in reads.items():
            totals[key] = totals.get(key, 0) + n
        groups: dict[str, dict[int, str]] = {}
        for key, group_id, code in posted:
            groups.setdefault(key, {})[int(group_id)] = code
        result = []
        for key, codes in groups.items():
            per_group = sorted(
                (GroupReads(g, c, reads.get((key, g), 0)) for g, c in codes.items()),
                key=lambda r: (-r.reads, r.code))
            result.append(GuideStats(
                key=key, posts=int(sent.get(key, 0)),
                reads=totals.get(key, 0),
                helpful=votes.get((key, True), 0), unhelpful=votes.get((key, False), 0),
                groups=per_group))
        result.sort(key=lambda s: (-s.reads, -s.posts, s.key))
        return result

    # --- series ---------------------------------------------------------------------------
    def in_quiet_hours(self, at_time: str, day: date | None = None) -> bool:
        hour, minute = (int(p) for p in at_time.split(":"))
        moment = datetime.combine(day or self.today(), time(hour, minute), tzinfo=self._tz)
        return self._quiet.ends_after(moment) is not None

    async def create_series(
        self, identity: Identity, ward_id: int, *, title: str, topic_keys: Sequence[str],
        group_ids: Sequence[int], days: Sequence[str], at_time: str, starts_on: date,
        ends_on: date | None, campaign_id: int | None = None,
    ) -> SeriesInfo:
        if identity.role_in_ward(ward_id) < Role.COORDINATOR:
            raise GuideError("not_allowed")
        title = " ".join(title.split())
        if not title or len(title) > 200:
            raise GuideError("bad_title")
        if not topic_keys or len(topic_keys) > MAX_GUIDES:
            raise GuideError("no_guides", limit=MAX_GUIDES)
        if not group_ids:
            raise GuideError("no_targets")
        if not days or any(d not in DAYS for d in days):
            raise GuideError("bad_rhythm")
        if self.in_quiet_hours(at_time):
            raise GuideError("quiet_time", at=at_time)
        if starts_on < self.today() or (ends_on is not None and ends_on < starts_on):
            raise GuideError("bad_period")
        now = self._clock.now()
        async with self._db.session() as session:
            valid = set((await session.exec(select(ResidentialGroup.id).where(
                ResidentialGroup.ward_id == ward_id))).all())
            if not set(group_ids) <= valid:
                raise GuideError("not_your_group")
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

    async def series_in_ward(self, ward_id: int) -> list[SeriesInfo]:
        async with self._db.session() as session:
            rows = (await session.exec(
                select(GuideSeries).where(GuideSeries.ward_id == ward_id)
                .order_by(col(GuideSeries.state), col(GuideSeries.id).desc()))).all()
            return [_series(r) for r in rows]

    async def set_series_state(self, identity: Identity, series_id: int,
                               state: str) -> SeriesInfo:
        if state not in STATES:
            raise GuideError("bad_state")
        async with self._db.session() as session:
            row = await session.get(GuideSeries, series_id)
            if row is None:
                raise GuideError("unknown")
            if identity.role_in_ward(row.ward_id) < Role.COORDINATOR:
                raise GuideError("not_allowed")
            if row.state == "ended":
                raise GuideError("already_ended")
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

    async def due_series(self) -> list[SeriesRun]:
        """Claim the slots that have come: one guide per series per slot, never inside
        quiet hours (a slot missed there waits for the next one), never twice (the claim
        is one guarded UPDATE of `next_index`)."""
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
            if await self._claim(info, now):
                runs.append(SeriesRun(info, info.next_index))
        return runs

    async def _claim(self, info: SeriesInfo, now: datetime) -> bool:
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
