"""Wards and residential groups: the places every scope and every count hangs on."""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlmodel import col, select

from bot.clock import Clock
from bot.db import Database
from bot.models import ResidentialGroup, Ward
from bot.services import audit

_CODE_RE = re.compile(r"^[A-Z0-9][A-Z0-9_-]{0,31}$")


class PlaceError(Exception):
    """A place that cannot be created or found; `reason` names a message key."""

    def __init__(self, reason: str, **details: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.details = details


@dataclass(frozen=True)
class WardInfo:
    id: int
    code: str
    name: str
    office_address: str = ""
    office_hours: str = ""
    office_phone: str = ""


@dataclass(frozen=True)
class GroupInfo:
    id: int
    ward_id: int
    code: str
    name: str


def normalize_code(code: str) -> str:
    return code.strip().upper()


def _ward_info(row: Ward) -> WardInfo:
    assert row.id is not None
    return WardInfo(
        id=row.id,
        code=row.code,
        name=row.name,
        office_address=row.office_address,
        office_hours=row.office_hours,
        office_phone=row.office_phone,
    )


def _group_info(row: ResidentialGroup) -> GroupInfo:
    assert row.id is not None
    return GroupInfo(id=row.id, ward_id=row.ward_id, code=row.code, name=row.name)


class Places:
    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    async def add_ward(
        self, code: str, name: str, *, actor_member_id: int | None = None
    ) -> WardInfo:
        code = normalize_code(code)
        if not _CODE_RE.match(code):
            raise PlaceError("bad_code", code=code)
        if not name.strip():
            raise PlaceError("empty_name", code=code)
        async with self._db.session() as session:
            existing = (await session.exec(select(Ward).where(Ward.code == code))).first()
            if existing is not None:
                raise PlaceError("ward_exists", code=code)
            ward = Ward(code=code, name=name.strip(), created_at=self._clock.now())
            session.add(ward)
            await session.flush()
            audit.record(
                session, self._clock, action="ward.add", actor_member_id=actor_member_id,
                ward_id=ward.id, target=code, name=ward.name,
            )
            return _ward_info(ward)

    async def add_group(
        self, ward_code: str, code: str, name: str, *, actor_member_id: int | None = None
    ) -> GroupInfo:
        code = normalize_code(code)
        if not _CODE_RE.match(code):
            raise PlaceError("bad_code", code=code)
        async with self._db.session() as session:
            ward = (
                await session.exec(select(Ward).where(Ward.code == normalize_code(ward_code)))
            ).first()
            if ward is None or ward.id is None:
                raise PlaceError("unknown_ward", code=normalize_code(ward_code))
            existing = (
                await session.exec(
                    select(ResidentialGroup).where(
                        ResidentialGroup.ward_id == ward.id, ResidentialGroup.code == code
                    )
                )
            ).first()
            if existing is not None:
                raise PlaceError("group_exists", code=code)
            group = ResidentialGroup(
                ward_id=ward.id, code=code, name=name.strip() or code, created_at=self._clock.now()
            )
            session.add(group)
            await session.flush()
            audit.record(
                session, self._clock, action="group.add", actor_member_id=actor_member_id,
                ward_id=ward.id, target=code, name=group.name,
            )
            return _group_info(group)

    async def ward_by_code(self, code: str) -> WardInfo | None:
        async with self._db.session() as session:
            query = select(Ward).where(Ward.code == normalize_code(code))
            row = (await session.exec(query)).first()
            return _ward_info(row) if row else None

    async def ward(self, ward_id: int) -> WardInfo | None:
        async with self._db.session() as session:
            row = await session.get(Ward, ward_id)
            return _ward_info(row) if row else None

    async def wards(self) -> list[WardInfo]:
        async with self._db.session() as session:
            rows = (await session.exec(select(Ward).order_by(col(Ward.code)))).all()
            return [_ward_info(r) for r in rows]

    async def group_by_code(self, ward_id: int, code: str) -> GroupInfo | None:
        async with self._db.session() as session:
            row = (
                await session.exec(
                    select(ResidentialGroup).where(
                        ResidentialGroup.ward_id == ward_id,
                        ResidentialGroup.code == normalize_code(code),
                    )
                )
            ).first()
            return _group_info(row) if row else None

    async def group(self, group_id: int) -> GroupInfo | None:
        async with self._db.session() as session:
            row = await session.get(ResidentialGroup, group_id)
            return _group_info(row) if row else None

    async def groups(self, ward_id: int) -> list[GroupInfo]:
        async with self._db.session() as session:
            rows = (
                await session.exec(
                    select(ResidentialGroup)
                    .where(ResidentialGroup.ward_id == ward_id)
                    .order_by(col(ResidentialGroup.code))
                )
            ).all()
            return [_group_info(r) for r in rows]


def pick_groups(text: str, groups: list[GroupInfo]) -> tuple[list[int], list[str]]:
    """Groups as people type them: codes ("TDP03 TDP07", "tdp3, tdp7") and ranges
    ("TDP01-TDP40"), matched against the ward's groups; returns (ids, words not understood).
    Numbers compare as numbers, so "TDP3" finds "TDP03"."""
    by_key = {_code_key(g.code): g for g in groups}
    ordered = sorted(groups, key=lambda g: _code_key(g.code))
    chosen: dict[int, None] = {}
    unknown: list[str] = []
    for word in text.replace(",", " ").replace(";", " ").split():
        if "-" in word.strip("-"):
            low, _, high = word.partition("-")
            a, b = _code_key(low), _code_key(high)
            if a in by_key and b in by_key:
                for g in ordered:
                    if min(a, b) <= _code_key(g.code) <= max(a, b):
                        chosen[g.id] = None
                continue
        group = by_key.get(_code_key(word))
        if group is None:
            unknown.append(word)
        else:
            chosen[group.id] = None
    return list(chosen), unknown


def _code_key(code: str) -> tuple[str, int, str]:
    """"TDP03" → ("TDP", 3, ""): the letters, the number, anything after it."""
    code = normalize_code(code)
    head = len(code) - len(code.lstrip("ABCDEFGHIJKLMNOPQRSTUVWXYZĐ"))
    prefix, rest = code[:head], code[head:]
    digits = rest[: len(rest) - len(rest.lstrip("0123456789"))]
    return prefix, int(digits) if digits else -1, rest[len(digits):]
