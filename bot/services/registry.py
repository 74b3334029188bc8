"""The household registry: import the ward's list, export progress.

An import is one transaction: every row is checked first, bad rows are reported with their
line and reason, and the good ones go in together (or nothing, with `strict`). Re-importing
the same list changes nothing; a changed row updates its household; codes never duplicate.
Optional columns named after a step (its key or its title) carry progress the ward already
recorded, as progress events with source "import".
"""

from __future__ import annotations

import csv
import difflib
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.clock import Clock
from bot.config import OnboardingStepConfig
from bot.core import is_number
from bot.db import Database
from bot.models import Household, HouseholdStep, Member, ProgressEvent, ResidentialGroup
from bot.services import audit, reminders
from bot.services.explanations import fold
from bot.services.households import search_text, step_total
from bot.services.places import normalize_code
from bot.services.progress import lock_groups, recount
from bot.services.tables import HEADER_SEARCH_ROWS, Table, TableError, header_at

CODE_RE = re.compile(r"^[A-Z0-9][A-Z0-9_.\-/]{0,31}$")
GROUP_RE = re.compile(r"^[A-Z0-9][A-Z0-9_-]{0,31}$")
MAX_MEMBERS = 60
FIELDS = ("code", "group", "head_name", "address", "members", "adults", "phone")
REQUIRED = ("code", "group", "head_name")
# Header names as people write them, folded and without spaces.
HEADER_NAMES: dict[str, str] = {
    **{f.replace("_", ""): f for f in FIELDS},
    "ma": "code", "maho": "code", "mahogiadinh": "code",
    "to": "group", "todanpho": "group", "tdp": "group", "thon": "group", "khupho": "group",
    "chuho": "head_name", "tenchuho": "head_name", "hotenchuho": "head_name",
    "diachi": "address", "sonhankhau": "members", "nhankhau": "members",
    "songuoi": "members", "thanhvien": "members", "songuoilon": "adults",
    "nguoilon": "adults", "dienthoai": "phone", "sodienthoai": "phone", "sdt": "phone",
}
# Columns hand-made lists carry that the bot has no use for: skipped without a word (data
# the bot does not need is data it should not keep, e.g. birth dates, ID card numbers).
IGNORED_COLUMNS = {
    "stt", "tt", "sott", "sothutu", "so", "ghichu", "note", "notes", "ghi", "chuthich",
    "ngaysinh", "namsinh", "cccd", "cmnd", "socccd", "socmnd", "gioitinh", "quanhe",
    "quanhevoichuho", "dantoc", "tongiao", "nghenghiep", "email",
}
YES = {"x", "1", "co", "roi", "xong", "dat", "yes", "y", "done", "v", "ok", "\u2713", "\u2714"}
NO = {"0", "khong", "chua", "no", "n"}


@dataclass(frozen=True)
class Rejected:
    line: int
    reason: str
    detail: str = ""


@dataclass
class ImportReport:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: list[Rejected] = field(default_factory=list)
    groups_created: list[str] = field(default_factory=list)
    # Groups the file names that the ward does not have: created only when asked, since a
    # typo (TPD01) would otherwise make a new group. Each with the closest existing code.
    new_groups: list[tuple[str, str]] = field(default_factory=list)
    groups_confirmed: bool = False
    warnings: list[Rejected] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)
    step_names: list[str] = field(default_factory=list)
    steps_set: int = 0
    dry_run: bool = False
    strict: bool = False
    written: bool = False

    @property
    def total(self) -> int:
        return self.added + self.updated + self.unchanged + len(self.rejected)


@dataclass(frozen=True)
class _Row:
    line: int
    code: str
    group: str
    head_name: str
    address: str
    members: int
    adults: int
    phone: str
    steps: dict[str, int | None]


def _header_key(cell: str, steps: dict[str, str]) -> str | None:
    name = fold(cell).replace(" ", "")
    return HEADER_NAMES.get(name) or steps.get(name)


def _step_names(steps: Sequence[OnboardingStepConfig]) -> dict[str, str]:
    """A step column may be headed by the step's key, its title or its short name."""
    names = {}
    for s in steps:
        for name in (s.key.replace("_", ""), s.title, s.short):
            if name:
                names[fold(name).replace(" ", "").replace("_", "")] = f"step:{s.key}"
    return names


def map_header(
    table: Table, steps: Sequence[OnboardingStepConfig], *, strict: bool = False
) -> tuple[dict[int, str], list[str]]:
    """Column index → field or `step:<key>`, and the columns skipped as unknown. An unknown
    column is skipped with a warning (a misspelt step would lose its data without a word);
    with `strict` it stops the import."""
    step_names = _step_names(steps)
    mapping: dict[int, str] = {}
    unknown: list[str] = []
    for i, cell in enumerate(table.header):
        if not cell:
            continue
        folded = fold(cell).replace(" ", "").replace("_", "").rstrip(".:")
        if folded in IGNORED_COLUMNS:
            continue
        key = _header_key(cell, step_names)
        if key is None:
            if strict:
                raise TableError("unknown_column", f"{cell}|{step_list(steps)}")
            unknown.append(cell)
            continue
        if key in mapping.values():
            raise TableError("duplicate_column", cell)
        mapping[i] = key
    missing = [f for f in REQUIRED if f not in mapping.values()]
    if missing:
        raise TableError("missing_column", missing[0])
    return mapping, unknown


def step_list(steps: Sequence[OnboardingStepConfig]) -> str:
    return ", ".join(s.label for s in steps)


def find_header(table: Table, steps: Sequence[OnboardingStepConfig]) -> Table:
    """The header row is the first of the first rows that names the required columns (a
    title such as "DANH SÁCH HỘ GIA ĐÌNH TỔ DÂN PHỐ SỐ 1" may sit above it)."""
    step_names = _step_names(steps)
    for index in range(min(HEADER_SEARCH_ROWS, len(table.rows) + 1)):
        candidate = header_at(table, index)
        known = {_header_key(c, step_names) for c in candidate.header if c}
        if all(f in known for f in REQUIRED):
            return candidate
    return table


def _number(text: str) -> int | None:
    text = text.strip()
    return int(text) if is_number(text) else None


def _phone(text: str) -> str | None:
    digits = re.sub(r"[\s.\-()]", "", text)
    if not digits:
        return ""
    if not re.fullmatch(r"\+?\d{8,15}", digits):
        return None
    return digits


def parse_rows(
    table: Table, steps: Sequence[OnboardingStepConfig], report: ImportReport | None = None,
) -> tuple[list[_Row], list[Rejected]]:
    report = report if report is not None else ImportReport()
    table = find_header(table, steps)
    mapping, report.ignored_columns = map_header(table, steps, strict=report.strict)
    report.step_names = [s.label for s in steps]
    by_key = {s.key: s for s in steps}
    good: list[_Row] = []
    bad: list[Rejected] = []
    seen: dict[str, int] = {}
    # Cells under skipped columns (STT, Ghi chú) are fine; cells past the last header are not.
    width = max(i for i, c in enumerate(table.header) if c) + 1
    for row in table.rows:
        if len(row.cells) > width and any(row.cells[width:]):
            bad.append(Rejected(row.line, "extra_cells"))
            continue
        cells = {key: row.cells[i] if i < len(row.cells) else "" for i, key in mapping.items()}
        code = normalize_code(cells.get("code", ""))
        group = normalize_code(cells.get("group", ""))
        head = " ".join(cells.get("head_name", "").split())
        if not code:
            bad.append(Rejected(row.line, "missing_code"))
            continue
        if not CODE_RE.match(code):
            bad.append(Rejected(row.line, "bad_code", code))
            continue
        if code in seen:
            bad.append(Rejected(row.line, "duplicate_code", f"{code}|{seen[code]}"))
            continue
        if not group:
            bad.append(Rejected(row.line, "missing_group", code))
            continue
        if not GROUP_RE.match(group):
            bad.append(Rejected(row.line, "bad_group", group))
            continue
        if not head:
            bad.append(Rejected(row.line, "missing_head", code))
            continue
        members_text = cells.get("members", "").strip()
        members = _number(members_text) if members_text else 1
        if members is None or not 1 <= members <= MAX_MEMBERS:
            bad.append(Rejected(row.line, "bad_members", members_text))
            continue
        adults_text = cells.get("adults", "").strip()
        adults = _number(adults_text) if adults_text else members
        if adults is None or not 0 <= adults <= members:
            bad.append(Rejected(row.line, "bad_adults", adults_text))
            continue
        phone = _phone(cells.get("phone", ""))
        if phone is None:
            # The household is worth keeping without its phone; the ward is told to fix it.
            report.warnings.append(Rejected(row.line, "bad_phone", cells.get("phone", "")))
            phone = ""
        step_values: dict[str, int | None] = {}
        problem: Rejected | None = None
        for key, text in cells.items():
            if not key.startswith("step:") or not text.strip():
                continue
            step = by_key[key[5:]]
            value = fold(text).replace(" ", "")
            total = step_total(step, adults)
            if value in YES:
                step_values[step.key] = None
            elif value in NO:
                step_values[step.key] = 0
            elif is_number(value) and step.per == "adult" and int(value) <= total:
                step_values[step.key] = int(value)
            elif is_number(value) and step.per == "adult":
                problem = Rejected(row.line, "too_many_done",
                                   f"{step.label}|{text}|{total}")
                break
            elif is_number(value):
                problem = Rejected(row.line, "count_on_household_step", f"{step.label}|{text}")
                break
            else:
                problem = Rejected(row.line, "bad_step_value", f"{step.label}|{text}")
                break
        if problem is not None:
            bad.append(problem)
            continue
        seen[code] = row.line
        good.append(_Row(
            row.line, code, group, head[:200], " ".join(cells.get("address", "").split())[:300],
            members, adults, phone, step_values,
        ))
    return good, bad


class Registry:
    def __init__(self, db: Database, clock: Clock, steps: Sequence[OnboardingStepConfig]) -> None:
        self._db = db
        self._clock = clock
        self.steps = list(steps)

    async def import_table(
        self,
        ward_id: int,
        table: Table,
        *,
        actor_member_id: int | None = None,
        dry_run: bool = False,
        strict: bool = False,
        create_groups: bool = False,
    ) -> ImportReport:
        """`strict`: write nothing if a row is rejected, refuse unknown columns.
        `create_groups`: make the groups the file names that the ward does not have yet
        (otherwise nothing is written and the report lists them)."""
        report = ImportReport(dry_run=dry_run, strict=strict, groups_confirmed=create_groups)
        rows, rejected = parse_rows(table, self.steps, report)
        report.rejected = rejected
        by_key = {s.key: s for s in self.steps}
        now = self._clock.now()
        async with self._db.session() as session:
            groups = {
                g.code: g.id for g in (
                    await session.exec(
                        select(ResidentialGroup).where(ResidentialGroup.ward_id == ward_id)
                    )
                ).all()
            }
            # Plain columns, not ORM objects: 100,000 of them load in a fraction of the time.
            columns: Any = sa.select(
                col(Household.id), col(Household.code), col(Household.group_id),
                col(Household.head_name), col(Household.address), col(Household.members),
                col(Household.adults), col(Household.phone),
            ).where(col(Household.ward_id) == ward_id)
            existing = {
                r.code: r for r in (
                    await session.exec(columns)
                ).all()
            }
            new_groups = sorted({r.group for r in rows if r.group not in groups})
            report.new_groups = [
                (code, next(iter(difflib.get_close_matches(code, list(groups), 1, 0.6)), ""))
                for code in new_groups
            ]
            if new_groups and not create_groups:
                await session.rollback()
                return report
            report.groups_created = new_groups
            inserts: list[dict[str, object]] = []
            updates: list[dict[str, object]] = []
            moved: list[tuple[int, int | None]] = []
            resized: dict[int, int] = {}  # household id → its new number of adults
            for group_code in new_groups:
                group = ResidentialGroup(
                    ward_id=ward_id, code=group_code, name=group_code, created_at=now
                )
                session.add(group)
                await session.flush()
                assert group.id is not None
                groups[group_code] = group.id
            for r in rows:
                values = {
                    "group_id": groups[r.group], "head_name": r.head_name, "address": r.address,
                    "members": r.members, "adults": r.adults, "phone": r.phone,
                }
                old = existing.get(r.code)
                if old is None:
                    report.added += 1
                    inserts.append({
                        **values, "ward_id": ward_id, "code": r.code, "created_at": now,
                        "updated_at": now, "search": search_text(r.code, r.head_name, r.address),
                    })
                    continue
                current = {
                    "group_id": old.group_id, "head_name": old.head_name, "address": old.address,
                    "members": old.members, "adults": old.adults, "phone": old.phone,
                }
                if current == values:
                    report.unchanged += 1
                    continue
                report.updated += 1
                if old.group_id != values["group_id"]:
                    moved.append((int(old.id), groups[r.group]))
                if old.adults != r.adults:
                    resized[int(old.id)] = r.adults
                updates.append({
                    **values, "id": old.id, "updated_at": now,
                    "search": search_text(r.code, r.head_name, r.address),
                })
            if dry_run or (strict and rejected):
                await session.rollback()
                return report
            await lock_groups(session, ward_id=ward_id)
            if inserts:
                await session.exec(sa.insert(Household), params=inserts)
            if updates:
                await session.exec(sa.update(Household), params=updates)
            for household_id, group_id in moved:
                await session.exec(
                    sa.update(HouseholdStep).where(
                        col(HouseholdStep.household_id) == household_id
                    ).values(group_id=group_id)
                )
            await self._refit(session, resized, now, actor_member_id)
            report.steps_set = await self._import_steps(session, ward_id, rows, by_key, now,
                                                        actor_member_id)
            await recount(session, ward_id)
            audit.record(
                session, self._clock, action="households.import",
                actor_member_id=actor_member_id, ward_id=ward_id, target=f"{len(rows)} rows",
                added=report.added, updated=report.updated, rejected=len(rejected),
            )
            report.written = True
        return report

    async def _refit(
        self, session: AsyncSession, resized: dict[int, int], now: datetime, actor: int | None
    ) -> None:
        """A household's adults changed: its per-adult steps are measured against the new
        number (3 of 3 done becomes 3 of 6, not "complete"; never more done than adults)."""
        keys = [s.key for s in self.steps if s.per == "adult"]
        ids = list(resized)
        for start in range(0, len(ids), 500):
            states = (await session.exec(select(HouseholdStep).where(
                col(HouseholdStep.household_id).in_(ids[start:start + 500]),
                col(HouseholdStep.step_key).in_(keys),
            ))).all()
            for state in states:
                total = max(resized[state.household_id], 1)
                after = min(state.units, total)
                complete = after >= total
                if (after, complete) == (state.units, state.complete):
                    continue
                if after != state.units:
                    session.add(ProgressEvent(
                        household_id=state.household_id, group_id=state.group_id,
                        step_key=state.step_key, action="set", before_units=state.units,
                        after_units=after, actor_member_id=actor, source="import",
                        note="adults changed", at=now,
                    ))
                state.units, state.complete, state.updated_at = after, complete, now
                session.add(state)
        await session.flush()

    async def _import_steps(
        self, session: AsyncSession, ward_id: int, rows: list[_Row],
        by_key: dict[str, OnboardingStepConfig], now: datetime, actor: int | None,
    ) -> int:
        """Step columns: set each household's state where the file says something new.
        Counts are rebuilt by the caller, so this only writes states and events, in bulk
        statements (a district's file carries hundreds of thousands of them)."""
        wanted = [r for r in rows if r.steps]
        if not wanted:
            return 0
        pairs = (await session.exec(
            select(Household.code, Household.id, Household.group_id)
            .where(Household.ward_id == ward_id)
        )).all()
        ids = {code: int(hid or 0) for code, hid, _g in pairs}
        groups = {int(hid or 0): group for _c, hid, group in pairs}
        current: Any = (
            sa.select(col(HouseholdStep.household_id), col(HouseholdStep.step_key),
                      col(HouseholdStep.units))
            .join(Household, col(Household.id) == col(HouseholdStep.household_id))
            .where(col(Household.ward_id) == ward_id)
        )
        states = {(hid, key): units for hid, key, units in (await session.exec(current)).all()}
        inserts: list[dict[str, object]] = []
        updates: list[dict[str, object]] = []
        events: list[dict[str, object]] = []
        for r in wanted:
            household_id = ids[r.code]
            for key, value in r.steps.items():
                total = step_total(by_key[key], r.adults)
                after = total if value is None else min(value, total)
                before = states.get((household_id, key))
                if before == after or (before is None and after == 0):
                    continue
                values = {"units": after, "complete": after >= total, "updated_at": now,
                          "updated_by": actor}
                if before is None:
                    inserts.append({"household_id": household_id, "step_key": key,
                                    "group_id": groups[household_id], "reported_at": None,
                                    "reported_by": None, **values})
                else:
                    updates.append({"hid": household_id, "key": key, **values})
                events.append({
                    "household_id": household_id, "group_id": groups[household_id],
                    "step_key": key, "action": "set", "before_units": before or 0,
                    "after_units": after, "actor_member_id": actor, "source": "import",
                    "batch": "", "note": "", "at": now,
                })
        if inserts:
            await session.exec(sa.insert(HouseholdStep), params=inserts)
        if updates:
            table = HouseholdStep.__table__  # type: ignore[attr-defined]
            await session.exec(
                sa.update(table)
                .where(table.c.household_id == sa.bindparam("hid"),
                       table.c.step_key == sa.bindparam("key"))
                .values(units=sa.bindparam("units"), complete=sa.bindparam("complete"),
                        updated_at=sa.bindparam("updated_at"),
                        updated_by=sa.bindparam("updated_by"),
                        # a done step confirms a resident's self-report
                        reported_at=sa.case((sa.bindparam("complete"), None),
                                            else_=table.c.reported_at)),
                params=updates,
            )
        if events:
            await session.exec(sa.insert(ProgressEvent), params=events)
        completed = [(int(str(v["household_id"])), str(v["step_key"]))
                     for v in inserts if v["complete"]]
        completed += [(int(str(v["hid"])), str(v["key"])) for v in updates if v["complete"]]
        await reminders.step_done(session, completed, now)  # their reminders cancel
        return len(events)

    # --- export ---------------------------------------------------------------------------
    async def household_rows(self, ward_id: int) -> list[dict[str, object]]:
        """One row per household: its details and, per step, units, who and when."""
        async with self._db.session() as session:
            households = (
                await session.exec(
                    select(Household, ResidentialGroup.code)
                    .join(ResidentialGroup, col(ResidentialGroup.id) == Household.group_id)
                    .where(Household.ward_id == ward_id)
                    .order_by(col(ResidentialGroup.code), col(Household.code))
                )
            ).all()
            states = (
                await session.exec(
                    select(HouseholdStep, Member.display_name)
                    .join(Household, col(Household.id) == HouseholdStep.household_id)
                    .join(Member, col(Member.id) == HouseholdStep.updated_by, isouter=True)
                    .where(Household.ward_id == ward_id)
                )
            ).all()
        by_household: dict[int, dict[str, tuple[HouseholdStep, str]]] = {}
        for step_row, who in states:
            by_household.setdefault(step_row.household_id, {})[step_row.step_key] = (
                step_row, who or ""
            )
        result = []
        for household, group_code in households:
            assert household.id is not None
            row: dict[str, object] = {
                "code": household.code, "group": group_code, "head_name": household.head_name,
                "address": household.address, "members": household.members,
                "adults": household.adults,
            }
            mine = by_household.get(household.id, {})
            for step in self.steps:
                found = mine.get(step.key)
                state = found[0] if found else None
                name = found[1] if found else ""
                row[f"{step.key}"] = state.units if state else 0
                row[f"{step.key}_total"] = step_total(step, household.adults)
                row[f"{step.key}_by"] = name
                row[f"{step.key}_at"] = state.updated_at if state and state.units else None
            result.append(row)
        return result


def rows_to_csv(rows: list[dict[str, object]]) -> bytes:
    """UTF-8 with BOM, which Excel opens with the diacritics intact."""
    buffer = io.StringIO()
    if rows:
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
        writer.writeheader()
        for row in rows:
            writer.writerow({
                k: v.isoformat(timespec="minutes") if isinstance(v, datetime) else v
                for k, v in row.items()
            })
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")
