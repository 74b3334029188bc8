"""Invites: a code (link and QR) that gives whoever opens it a role in a ward or a group.

Who may invite whom: a coordinator any role in the ward; a leader helpers and residents of
the groups he leads; an admin anyone anywhere. Codes expire and may be limited in uses;
using one is a single guarded UPDATE, so two people racing for the last use cannot both win.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import col, select

from bot.clock import Clock
from bot.core import GROUP_ROLES, Role
from bot.db import Database
from bot.models import Invite, ResidentialGroup, Ward
from bot.services import audit
from bot.services.access import Access, Grant, Identity

# No 0/O, 1/I/L: codes are read off paper and typed by hand on platforms without deep links.
_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 8


STAFF_ROLES = frozenset({Role.LEADER, Role.COORDINATOR})


class InviteError(Exception):
    """Why an invite cannot be made or used; `reason` names a message."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class InviteInfo:
    code: str
    role: Role
    ward_id: int
    ward_code: str
    ward_name: str
    group_id: int | None
    group_code: str
    group_name: str
    expires_at: datetime
    max_uses: int | None
    uses: int


@dataclass(frozen=True)
class Joined:
    grant: Grant
    ward_name: str
    group_name: str
    already_had: bool


def invitable_roles(identity: Identity, ward_id: int) -> list[Role]:
    """The roles this person may hand out in this ward (in the order menus show them)."""
    power = identity.role_in_ward(ward_id)
    if power >= Role.COORDINATOR:
        return [Role.RESIDENT, Role.HELPER, Role.LEADER, Role.COORDINATOR]
    if identity.groups_with(Role.LEADER):
        return [Role.RESIDENT, Role.HELPER]
    return []


def may_invite(identity: Identity, role: Role, ward_id: int, group_id: int | None) -> bool:
    if role not in invitable_roles(identity, ward_id):
        return False
    if role in GROUP_ROLES and group_id is None:
        return False
    if group_id is None:
        return identity.role_in_ward(ward_id) >= Role.COORDINATOR
    return identity.role_in_group(ward_id, group_id) >= Role.LEADER


def new_code() -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(CODE_LENGTH))


class Invites:
    def __init__(self, db: Database, clock: Clock, access: Access, *, default_days: int) -> None:
        self._db = db
        self._clock = clock
        self._access = access
        self._default_days = default_days

    async def create(
        self,
        identity: Identity | None,
        *,
        role: Role,
        ward_id: int,
        group_id: int | None,
        max_uses: int | None = None,
        days: int | None = None,
    ) -> InviteInfo:
        """`identity` None: the operator at the server (`cds-bot invite`), who may invite
        anyone; the link then stays valid whoever holds which role."""
        if identity is not None and not may_invite(identity, role, ward_id, group_id):
            raise InviteError("not_allowed")
        if role in GROUP_ROLES and group_id is None:
            raise InviteError("unknown_place")
        actor = identity.member_id if identity is not None else None
        if max_uses is not None and not 1 <= max_uses <= 10_000:
            raise InviteError("bad_uses")
        if max_uses is None and role in STAFF_ROLES:
            max_uses = 1  # a link that makes leaders or ward staff is for one person
        now = self._clock.now()
        async with self._db.session() as session:
            ward = await session.get(Ward, ward_id)
            group = await session.get(ResidentialGroup, group_id) if group_id else None
            if ward is None or (group_id and (group is None or group.ward_id != ward_id)):
                raise InviteError("unknown_place")
            invite = Invite(
                code=new_code(), role=role.value, ward_id=ward_id, group_id=group_id,
                created_by=actor, created_at=now,
                expires_at=now + timedelta(days=days or self._default_days),
                max_uses=max_uses, uses=0,
            )
            session.add(invite)
            audit.record(
                session, self._clock, action="invite.create",
                actor_member_id=actor, ward_id=ward_id, target=invite.code,
                role=role.value, group_id=group_id, max_uses=max_uses,
            )
            return _info(invite, ward, group)

    async def revoke(self, identity: Identity, code: str) -> str:
        """Stop an invite now: its maker, or a coordinator of its ward. Returns the code."""
        code = code.strip().upper()
        async with self._db.session() as session:
            invite = (await session.exec(select(Invite).where(Invite.code == code))).first()
            if invite is None:
                raise InviteError("unknown")
            mine = invite.created_by == identity.member_id
            if not mine and identity.role_in_ward(invite.ward_id) < Role.COORDINATOR:
                raise InviteError("not_allowed")
            invite.revoked = True
            session.add(invite)
            audit.record(session, self._clock, action="invite.revoke",
                         actor_member_id=identity.member_id, ward_id=invite.ward_id,
                         target=code)
            return code

    async def redeem(self, identity: Identity, code: str) -> Joined:
        """Use one of the invite's uses and give its role to this person."""
        code = code.strip().upper()
        now = self._clock.now()
        async with self._db.session() as session:
            invite = (await session.exec(select(Invite).where(Invite.code == code))).first()
            if invite is None or invite.revoked:
                raise InviteError("unknown")
            if invite.expires_at <= now:
                raise InviteError("expired")
            role = Role(invite.role)
            creator = (await self._access.identity_of(invite.created_by)
                       if invite.created_by is not None else None)
            if creator is not None and not may_invite(creator, role, invite.ward_id,
                                                      invite.group_id):
                # Its maker has lost the power to give this role: the link dies with it.
                raise InviteError("unknown")
            ward = await session.get(Ward, invite.ward_id)
            group = (
                await session.get(ResidentialGroup, invite.group_id) if invite.group_id else None
            )
            assert ward is not None
            had = any(
                g.role == role and g.ward_id == invite.ward_id and g.group_id == invite.group_id
                for g in identity.grants
            )
            if not had:
                taken = await session.exec(
                    sa.update(Invite)
                    .where(
                        col(Invite.id) == invite.id,
                        sa.or_(
                            col(Invite.max_uses).is_(None),
                            col(Invite.uses) < col(Invite.max_uses),
                        ),
                    )
                    .values(uses=col(Invite.uses) + 1)
                )
                if taken.rowcount != 1:
                    raise InviteError("used_up")
            grant = await self._access.add_grant(
                session, member_id=identity.member_id, role=role, ward_id=invite.ward_id,
                group_id=invite.group_id, actor_member_id=invite.created_by, via=f"invite:{code}",
            )
            if not had:
                audit.record(
                    session, self._clock, action="invite.redeem",
                    actor_member_id=identity.member_id, ward_id=invite.ward_id, target=code,
                    role=role.value,
                )
            return Joined(
                grant=grant, ward_name=ward.name, group_name=group.name if group else "",
                already_had=had,
            )


def _info(invite: Invite, ward: Ward, group: ResidentialGroup | None) -> InviteInfo:
    assert ward.id is not None
    return InviteInfo(
        code=invite.code, role=Role(invite.role), ward_id=ward.id, ward_code=ward.code,
        ward_name=ward.name, group_id=group.id if group else None,
        group_code=group.code if group else "", group_name=group.name if group else "",
        expires_at=invite.expires_at, max_uses=invite.max_uses, uses=invite.uses,
    )
