"""The ward's knowledge contest ("cuộc thi tìm hiểu", Rung chuông vàng style): a coordinator
creates it from a question bank (TOML in messages/ or an uploaded XLSX), residents play in
private chat (questions drawn per person, options shuffled, each answer explained), and the
group chats get the announcement, a mid-contest standing and the final result: participation
per group (share of households with at least one player) and the top scorers by first name
and group only."""

from __future__ import annotations

import io
import random
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlmodel import col, select

from bot.clock import Clock
from bot.db import Database
from bot.models import (
    Contest,
    ContestPlay,
    Household,
    HouseholdResident,
    Member,
    ResidentialGroup,
)
from bot.roles import Role
from bot.services import audit
from bot.services.access import Identity
from bot.services.errors import ServiceError
from bot.services.explanations import fold
from bot.services.tables import Table, read_table

BANKS_DIR = Path(__file__).resolve().parent.parent.parent / "messages"
MAX_QUESTIONS = 200
LETTERS = "ABCD"


@dataclass(frozen=True)
class Question:
    text: str
    options: tuple[str, str, str, str]
    answer: int  # 0-3: the right option as written in the bank
    explain: str = ""
    guide: str = ""

    def as_row(self) -> dict[str, Any]:
        return {"text": self.text, "options": list(self.options), "answer": self.answer,
                "explain": self.explain, "guide": self.guide}

    @staticmethod
    def from_row(row: dict[str, Any]) -> Question:
        options = tuple(str(o) for o in row["options"])
        assert len(options) == 4
        return Question(str(row["text"]), options,
                        int(row["answer"]), str(row.get("explain", "")),
                        str(row.get("guide", "")))


@dataclass(frozen=True)
class Bank:
    key: str
    title: str
    questions: tuple[Question, ...]


@dataclass(frozen=True)
class ContestInfo:
    id: int
    ward_id: int
    title: str
    questions: int
    per_player: int
    attempts: int
    starts_at: datetime
    ends_at: datetime
    group_ids: tuple[int, ...]
    state: str

    @property
    def last_moment(self) -> datetime:
        """The end as people say it: a contest open "to 30/11" ends at midnight after it."""
        return self.ends_at - timedelta(seconds=1)


@dataclass(frozen=True)
class Shown:
    """One question as a player sees it: options in this player's order."""

    play_id: int
    index: int  # 0-based position in the player's draw
    total: int
    text: str
    options: tuple[str, ...]


@dataclass(frozen=True)
class Answered:
    correct: bool
    right: str  # the right option's text
    right_letter: str
    explain: str
    guide: str
    score: int
    next: Shown | None  # None: the attempt is over
    total: int
    attempts_left: int


@dataclass(frozen=True)
class GroupStanding:
    code: str
    players: int
    households_played: int
    households: int

    @property
    def percent(self) -> int:
        return round(100 * self.households_played / self.households) if self.households else 0


@dataclass(frozen=True)
class TopScorer:
    first_name: str
    group_code: str
    score: int
    total: int


@dataclass(frozen=True)
class Standings:
    contest: ContestInfo
    groups: tuple[GroupStanding, ...]
    top: tuple[TopScorer, ...]
    players: int = 0
    finished: int = 0
    average: float | None = None

    @property
    def households(self) -> int:
        return sum(g.households for g in self.groups)

    @property
    def households_played(self) -> int:
        return sum(g.households_played for g in self.groups)

    @property
    def households_percent(self) -> int:
        return round(100 * self.households_played / self.households) if self.households else 0


def _info(row: Contest) -> ContestInfo:
    assert row.id is not None
    return ContestInfo(row.id, row.ward_id, row.title, len(row.questions), row.per_player,
                       row.attempts, row.starts_at, row.ends_at,
                       tuple(int(g) for g in row.group_ids), row.state)


def first_name(display_name: str) -> str:
    """Vietnamese names end with the given name: "Nguyễn Thị Lan" → "Lan"."""
    words = display_name.split()
    return words[-1] if words else "?"


# --- banks ---------------------------------------------------------------------------------
def load_banks(locale: str) -> dict[str, Bank]:
    """Every bank in messages/contests/<locale>/*.toml, by file name."""
    banks = {}
    for path in sorted((BANKS_DIR / "contests" / locale).glob("*.toml")):
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        questions = tuple(
            Question(q["text"], tuple(q["options"]), int(q["answer"]) - 1,
                     q.get("explain", ""), q.get("guide", ""))
            for q in data.get("question", [])
        )
        for q in questions:
            if len(q.options) != 4 or not 0 <= q.answer < 4:
                raise ValueError(f"{path.name}: every question needs 4 options and answer 1-4")
        banks[path.stem] = Bank(path.stem, data.get("bank", {}).get("title", path.stem),
                                questions)
    return banks


_HEADERS = {
    "text": ("cau hoi", "noi dung", "question"),
    "a": ("a", "phuong an a", "dap an a", "lua chon a"),
    "b": ("b", "phuong an b", "dap an b", "lua chon b"),
    "c": ("c", "phuong an c", "dap an c", "lua chon c"),
    "d": ("d", "phuong an d", "dap an d", "lua chon d"),
    "answer": ("dap an dung", "dap an", "answer", "dung"),
    "explain": ("giai thich", "explain"),
    "guide": ("huong dan", "cam nang", "guide"),
}


def read_bank_file(data: bytes, filename: str = "") -> tuple[Question, ...]:
    """Questions from a spreadsheet: columns Câu hỏi, A, B, C, D, Đáp án đúng (A-D or 1-4),
    Giải thích, Hướng dẫn (optional). The header row may sit under a title row."""
    try:
        table = read_table(data, filename)
    except ServiceError as exc:
        raise ServiceError("bad_file", problem=exc.reason) from exc
    columns, header_line = _bank_columns(table)
    questions = []
    for row in table.rows:
        if row.line <= header_line:
            continue
        cells = {k: (row.cells[i].strip() if i < len(row.cells) else "")
                 for k, i in columns.items()}
        if not any(cells.values()):
            continue
        options = tuple(cells[k] for k in "abcd")
        raw = fold(cells["answer"]).strip().upper()
        answer = LETTERS.find(raw) if len(raw) == 1 and raw in LETTERS else (
            int(raw) - 1 if raw.isdigit() and 1 <= int(raw) <= 4 else -1)
        if not cells["text"] or not all(options) or answer < 0:
            raise ServiceError("bad_row", line=row.line)
        questions.append(Question(cells["text"][:500], options,  # type: ignore[arg-type]
                                  answer, cells.get("explain", "")[:300],
                                  cells.get("guide", "")[:40]))
    if not questions:
        raise ServiceError("no_questions")
    if len(questions) > MAX_QUESTIONS:
        raise ServiceError("too_many_questions", limit=MAX_QUESTIONS)
    return tuple(questions)


def _bank_columns(table: Table) -> tuple[dict[str, int], int]:
    """The columns and the line of the header row, looked for in the first ten rows."""
    candidates = [(table.header_line, table.header)] + [
        (r.line, r.cells) for r in table.rows[:10]]
    for line, header in candidates:
        found: dict[str, int] = {}
        for index, cell in enumerate(header):
            name = fold(cell).strip()
            for key, names in _HEADERS.items():
                if key not in found and name in names:
                    found[key] = index
                    break
        if all(k in found for k in ("text", "a", "b", "c", "d", "answer")):
            return found, line
    raise ServiceError("bad_header")


# --- the contest ---------------------------------------------------------------------------
class Contests:
    def __init__(
        self, db: Database, clock: Clock, *, per_player: int, attempts: int,
        banks: dict[str, Bank] | None = None,
    ) -> None:
        self.banks = dict(banks or {})  # the question banks shipped in messages/
        self._db = db
        self._clock = clock
        self._per_player = per_player
        self._attempts = attempts

    async def create(
        self, identity: Identity, ward_id: int, *, title: str, questions: Sequence[Question],
        starts_at: datetime, ends_at: datetime, group_ids: Sequence[int],
    ) -> ContestInfo:
        if identity.role_in_ward(ward_id) < Role.COORDINATOR:
            raise ServiceError("not_allowed")
        title = " ".join(title.split())
        if not title or len(title) > 200:
            raise ServiceError("bad_title")
        if not questions:
            raise ServiceError("no_questions")
        if ends_at <= starts_at or ends_at <= self._clock.now():
            raise ServiceError("bad_period")
        now = self._clock.now()
        async with self._db.session() as session:
            row = Contest(
                ward_id=ward_id, title=title, questions=[q.as_row() for q in questions],
                per_player=min(self._per_player, len(questions)), attempts=self._attempts,
                starts_at=starts_at, ends_at=ends_at, group_ids=list(group_ids),
                created_by=identity.member_id, created_at=now,
            )
            session.add(row)
            await session.flush()
            audit.record(session, self._clock, action="contest.create",
                         actor_member_id=identity.member_id, ward_id=ward_id,
                         target=f"contest-{row.id}", questions=len(questions))
            return _info(row)

    async def in_ward(self, ward_id: int) -> list[ContestInfo]:
        async with self._db.session() as session:
            rows = (await session.exec(select(Contest).where(Contest.ward_id == ward_id)
                                       .order_by(col(Contest.id).desc()).limit(20))).all()
            return [_info(r) for r in rows]

    async def get(self, contest_id: int) -> ContestInfo | None:
        async with self._db.session() as session:
            row = await session.get(Contest, contest_id)
            return _info(row) if row else None

    async def open_for(self, ward_ids: set[int]) -> list[ContestInfo]:
        """Contests a person of these wards can play right now."""
        now = self._clock.now()
        async with self._db.session() as session:
            rows = (await session.exec(select(Contest).where(
                col(Contest.ward_id).in_(ward_ids or {0}), Contest.state == "active",
                col(Contest.starts_at) <= now, col(Contest.ends_at) > now,
            ))).all()
            return [_info(r) for r in rows]

    async def end(self, identity: Identity, contest_id: int) -> ContestInfo:
        """A coordinator ends a contest early; the final result goes out at the next tick."""
        now = self._clock.now()
        async with self._db.session() as session:
            row = await session.get(Contest, contest_id)
            if row is None or identity.role_in_ward(row.ward_id) < Role.COORDINATOR:
                raise ServiceError("not_found", number=contest_id)
            if row.ends_at > now:
                row.ends_at = now
                session.add(row)
                audit.record(session, self._clock, action="contest.end",
                             actor_member_id=identity.member_id, ward_id=row.ward_id,
                             target=f"contest-{row.id}")
            return _info(row)

    # --- playing -------------------------------------------------------------------------
    async def start(self, identity: Identity, contest_id: int) -> Shown:
        """Begin (or continue) this person's attempt and show the question he is at."""
        now = self._clock.now()
        async with self._db.session() as session:
            contest = await session.get(Contest, contest_id)
            if contest is None or contest.state != "active" or not (
                    contest.starts_at <= now < contest.ends_at):
                raise ServiceError("not_open")
            group_id, household_id = await self._place(session, identity, contest.ward_id)
            if contest.group_ids and group_id not in contest.group_ids:
                raise ServiceError("not_your_group")
            plays = (await session.exec(select(ContestPlay).where(
                ContestPlay.contest_id == contest_id,
                ContestPlay.member_id == identity.member_id,
            ).order_by(col(ContestPlay.attempt)))).all()
            current = next((p for p in plays if p.finished_at is None), None)
            if current is None:
                if len(plays) >= contest.attempts:
                    best = max(p.score for p in plays)
                    raise ServiceError("no_attempts_left", score=best,
                                       total=contest.per_player)
                attempt = len(plays) + 1
                rng = random.Random(f"{contest_id}:{identity.member_id}:{attempt}")
                drawn = rng.sample(range(len(contest.questions)), contest.per_player)
                current = ContestPlay(
                    contest_id=contest_id, member_id=identity.member_id, group_id=group_id,
                    household_id=household_id, attempt=attempt, drawn=drawn, answers=[],
                    started_at=now,
                )
                session.add(current)
                await session.flush()
            return self._shown(contest, current)

    async def answer(self, identity: Identity, play_id: int, index: int, choice: int) -> Answered:
        """Answer question `index` of the attempt with option `choice` (as shown, 0-3). A second
        press on an answered question changes nothing."""
        now = self._clock.now()
        async with self._db.session() as session:
            play = await session.get(ContestPlay, play_id, with_for_update=True)
            if play is None or play.member_id != identity.member_id:
                raise ServiceError("not_found", number=play_id)
            contest = await session.get(Contest, play.contest_id)
            assert contest is not None
            if play.finished_at is not None or index != len(play.answers):
                raise ServiceError("already_answered")
            if now >= contest.ends_at:
                raise ServiceError("not_open")
            if not 0 <= choice < 4:
                raise ServiceError("already_answered")
            question = Question.from_row(contest.questions[int(play.drawn[index])])
            order = self._order(play, index)
            picked = order[choice]
            correct = picked == question.answer
            play.answers = [*play.answers, picked]
            play.score += int(correct)
            last = len(play.answers) >= len(play.drawn)
            if last:
                play.finished_at = now
            session.add(play)
            plays = (await session.exec(select(sa.func.count()).select_from(ContestPlay).where(
                ContestPlay.contest_id == contest.id,
                ContestPlay.member_id == identity.member_id))).one()
            return Answered(
                correct=correct, right=question.options[question.answer],
                right_letter=LETTERS[order.index(question.answer)],
                explain=question.explain, guide=question.guide, score=play.score,
                next=None if last else self._shown(contest, play), total=len(play.drawn),
                attempts_left=max(contest.attempts - int(plays), 0),
            )

    def _order(self, play: ContestPlay, index: int) -> list[int]:
        """This player's order of the four options of question `index` (stable)."""
        order = [0, 1, 2, 3]
        random.Random(f"{play.id}:{index}:{play.drawn[index]}").shuffle(order)
        return order

    def _shown(self, contest: Contest, play: ContestPlay) -> Shown:
        assert play.id is not None
        index = len(play.answers)
        question = Question.from_row(contest.questions[int(play.drawn[index])])
        options = tuple(question.options[i] for i in self._order(play, index))
        return Shown(play.id, index, len(play.drawn), question.text, options)

    async def _place(
        self, session: Any, identity: Identity, ward_id: int
    ) -> tuple[int | None, int | None]:
        """The player's group (from his household, else his role) and household, if known."""
        link = await session.get(HouseholdResident, identity.member_id)
        if link is not None:
            household = await session.get(Household, link.household_id)
            if household is not None and household.ward_id == ward_id:
                return household.group_id, household.id
        groups = [g.group_id for g in identity.grants
                  if g.ward_id == ward_id and g.group_id is not None]
        return (groups[0] if groups else None), None

    # --- figures -------------------------------------------------------------------------
    async def standings(self, contest_id: int, *, top: int = 5) -> Standings:
        async with self._db.session() as session:
            contest = await session.get(Contest, contest_id)
            if contest is None:
                raise ServiceError("not_found", number=contest_id)
            info = _info(contest)
            groups = (await session.exec(select(ResidentialGroup).where(
                ResidentialGroup.ward_id == contest.ward_id))).all()
            if contest.group_ids:
                groups = [g for g in groups if g.id in contest.group_ids]
            households = dict((await session.exec(
                select(Household.group_id, sa.func.count()).where(
                    Household.ward_id == contest.ward_id).group_by(col(Household.group_id))
            )).all())
            plays = (await session.exec(
                select(ContestPlay, Member.display_name)
                .join(Member, col(Member.id) == col(ContestPlay.member_id))
                .where(ContestPlay.contest_id == contest_id)
            )).all()
        players: dict[int | None, set[int]] = {}
        played: dict[int | None, set[int]] = {}
        best: dict[int, tuple[int, datetime, str, int | None]] = {}
        for play, name in plays:
            players.setdefault(play.group_id, set()).add(play.member_id)
            if play.household_id is not None:
                played.setdefault(play.group_id, set()).add(play.household_id)
            if play.finished_at is not None:
                mine = best.get(play.member_id)
                if mine is None or (play.score, -play.finished_at.timestamp()) > (
                        mine[0], -mine[1].timestamp()):
                    best[play.member_id] = (play.score, play.finished_at, name or "",
                                            play.group_id)
        codes = {g.id: g.code for g in groups}
        standing = tuple(sorted(
            (GroupStanding(g.code, len(players.get(g.id, set())),
                           len(played.get(g.id, set())), int(households.get(g.id or 0, 0)))
             for g in groups),
            key=lambda s: (-s.percent, -s.players, s.code),
        ))
        ranked = sorted(best.values(), key=lambda b: (-b[0], b[1]))
        scorers = tuple(TopScorer(first_name(name), codes.get(group or 0, ""), score,
                                  contest.per_player)
                        for score, _at, name, group in ranked[:top])
        scores = [b[0] for b in best.values()]
        return Standings(info, standing, scorers,
                         players=sum(len(p) for p in players.values()), finished=len(best),
                         average=round(sum(scores) / len(scores), 1) if scores else None)

    async def due_posts(self) -> list[tuple[ContestInfo, str]]:
        """Group posts now due — "announce", "standing" (mid-contest), "final" — each marked
        in the same transaction so that it goes out once."""
        now = self._clock.now()
        due: list[tuple[ContestInfo, str]] = []
        async with self._db.session() as session:
            rows = (await session.exec(select(Contest).where(
                Contest.state == "active", col(Contest.starts_at) <= now,
            ).with_for_update(skip_locked=True))).all()
            for row in rows:
                if now >= row.ends_at:
                    row.final_posted, row.state = True, "ended"
                    due.append((_info(row), "final"))
                elif not row.announced:
                    row.announced = True
                    due.append((_info(row), "announce"))
                elif not row.mid_posted and now >= row.starts_at + (
                        row.ends_at - row.starts_at) / 2:
                    row.mid_posted = True
                    due.append((_info(row), "standing"))
                session.add(row)
        return due

    async def players_table(self, contest_id: int) -> list[tuple[str, str, int, int, datetime]]:
        """Every finished attempt: first name, group, score, questions, when — for export."""
        async with self._db.session() as session:
            contest = await session.get(Contest, contest_id)
            if contest is None:
                raise ServiceError("not_found", number=contest_id)
            rows = (await session.exec(
                select(Member.display_name, ResidentialGroup.code, ContestPlay.score,
                       ContestPlay.finished_at)
                .join(Member, col(Member.id) == col(ContestPlay.member_id))
                .join(ResidentialGroup, col(ResidentialGroup.id) == col(ContestPlay.group_id),
                      isouter=True)
                .where(ContestPlay.contest_id == contest_id,
                       col(ContestPlay.finished_at).is_not(None))
                .order_by(col(ContestPlay.score).desc(), col(ContestPlay.finished_at))
            )).all()
            return [(first_name(n or ""), code or "", s, contest.per_player, at)
                    for n, code, s, at in rows if at is not None]


def results_xlsx(
    standings: Standings, players: Sequence[tuple[str, str, int, int, datetime]],
    label: Callable[[str], str], tz: tzinfo,
) -> bytes:
    """The contest's results: participation per group, and every finished attempt (first
    name and group only: the file may be forwarded)."""
    from openpyxl import Workbook  # imported here: openpyxl (and numpy) cost ~18 MB

    book = Workbook()
    sheet = book.active
    sheet.title = label("contests.sheet_groups")[:31]
    sheet.append([label(f"contests.col.{k}") for k in
                  ("group", "households", "played", "percent", "players")])
    for g in standings.groups:
        sheet.append([g.code, g.households, g.households_played, g.percent, g.players])
    people = book.create_sheet(label("contests.sheet_players")[:31])
    people.append([label(f"contests.col.{k}") for k in
                   ("name", "group", "score", "questions", "finished")])
    for name, group, score, total, at in players:
        people.append([name, group, score, total, at.astimezone(tz).strftime("%d/%m/%Y %H:%M")])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
