"""The ward's staff: who holds which role, taking a role away, and the ward an admin works in.

A revoked grant is kept (with `revoked_at`) for the record; every identity is read afresh on
each message and each dashboard page, so a revocation closes the door at once.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.clock import Clock
from bot.core import Role
from bot.db import Database
from bot.models import AdminWard, Member, ResidentialGroup, RoleGrant, Ward
from bot.services import audit
from bot.services.access import Grant, Identity
from bot.services.places import PlaceError, normalize_code

# Roles /canbo lists and /thuhoi can take away (residents are the whole ward: the CLI only).
STAFF_ROLES = (Role.COORDINATOR, Role.LEADER, Role.HELPER)


class StaffError(Exception):
    """A revocation that cannot happen; `reason` names a message key."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class StaffGrant:
    grant_id: int
    role: Role
    group_code: str = ""


@dataclass(frozen=True)
class StaffMember:
    member_id: int
    name: str
    platform: str
    user_id: str
    grants: tuple[StaffGrant, ...]

    @property
    def top_role(self) -> Role:
        return max((g.role for g in self.grants), key=lambda r: r.rank)


@dataclass(frozen=True)
class Revoked:
    """One grant taken away, with what the actor and the person are told."""

    member_id: int
    name: str
    platform: str
    user_id: str
    role: Role
    ward_code: str
    ward_name: str
    group_code: str = ""


class Staff:
    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    async def members(self, ward_id: int) -> list[StaffMember]:
        """Everyone holding a staff role in the ward: coordinators first, then by name."""
        async with self._db.session() as session:
            rows = (
                await session.exec(
                    select(RoleGrant, Member, ResidentialGroup)
                    .join(Member, col(Member.id) == col(RoleGrant.member_id))
                    .outerjoin(ResidentialGroup,
                               col(ResidentialGroup.id) == col(RoleGrant.group_id))
                    .where(
                        RoleGrant.ward_id == ward_id, col(RoleGrant.revoked_at).is_(None),
                        col(RoleGrant.role).in_([r.value for r in STAFF_ROLES]),
                    )
                    .order_by(col(RoleGrant.id))
                )
            ).all()
        people: dict[int, StaffMember] = {}
        for grant, member, group in rows:
            assert grant.id is not None and member.id is not None
            item = StaffGrant(grant.id, Role(grant.role), group.code if group else "")
            known = people.get(member.id)
            if known is None:
                people[member.id] = StaffMember(
                    member.id, member.display_name, member.platform, member.platform_user_id,
                    (item,),
                )
            else:
                people[member.id] = replace(known, grants=(*known.grants, item))
        return sorted(people.values(), key=lambda p: (-p.top_role.rank, p.name.casefold(),
                                                      p.member_id))

    async def member(self, ward_id: int, member_id: int) -> StaffMember | None:
        return next((p for p in await self.members(ward_id) if p.member_id == member_id), None)

    async def revoke(self, actor: Identity, ward_id: int, grant_id: int) -> Revoked:
        """A coordinator (or admin) takes one staff role away, never their own."""
        if actor.role_in_ward(ward_id) < Role.COORDINATOR:
            raise StaffError("not_allowed")
        async with self._db.session() as session:
            grant = await session.get(RoleGrant, grant_id)
            if grant is None or grant.ward_id != ward_id or grant.revoked_at is not None:
                raise StaffError("gone")
            if grant.member_id == actor.member_id and not actor.is_admin:
                raise StaffError("self")
            if Role(grant.role) not in STAFF_ROLES:
                raise StaffError("gone")
            return await self._revoke(session, grant, actor.member_id, via="chat")

    async def revoke_by_user(
        self, *, platform: str, user_id: str, role: Role, ward_code: str,
        group_code: str | None = None,
    ) -> list[Revoked]:
        """The operator's `cds-bot revoke`: every matching active grant of that person."""
        async with self._db.session() as session:
            ward = (
                await session.exec(select(Ward).where(Ward.code == normalize_code(ward_code)))
            ).first()
            if ward is None:
                raise PlaceError("unknown_ward", code=normalize_code(ward_code))
            query = (
                select(RoleGrant)
                .join(Member, col(Member.id) == col(RoleGrant.member_id))
                .where(
                    Member.platform == platform, Member.platform_user_id == user_id,
                    RoleGrant.ward_id == ward.id, RoleGrant.role == role.value,
                    col(RoleGrant.revoked_at).is_(None),
                )
            )
            if group_code:
                group = (
                    await session.exec(
                        select(ResidentialGroup).where(
                            ResidentialGroup.ward_id == ward.id,
                            ResidentialGroup.code == normalize_code(group_code),
                        )
                    )
                ).first()
                if group is None:
                    raise PlaceError("unknown_group", code=normalize_code(group_code))
                query = query.where(RoleGrant.group_id == group.id)
            grants = list((await session.exec(query)).all())
            return [await self._revoke(session, g, None, via="cli") for g in grants]

    async def _revoke(
        self, session: AsyncSession, grant: RoleGrant, actor_member_id: int | None, *, via: str
    ) -> Revoked:
        assert grant.id is not None
        grant.revoked_at = self._clock.now()
        session.add(grant)
        member = await session.get(Member, grant.member_id)
        ward = await session.get(Ward, grant.ward_id)
        group = await session.get(ResidentialGroup, grant.group_id) if grant.group_id else None
        assert member is not None and ward is not None
        audit.record(
            session, self._clock, action="role.revoke", actor_member_id=actor_member_id,
            ward_id=grant.ward_id, target=f"member:{grant.member_id}", role=grant.role,
            group_id=grant.group_id, grant_id=grant.id, via=via,
        )
        await session.flush()
        return Revoked(
            member_id=grant.member_id, name=member.display_name, platform=member.platform,
            user_id=member.platform_user_id, role=Role(grant.role), ward_code=ward.code,
            ward_name=ward.name, group_code=group.code if group else "",
        )

    # --- admins from [admins]: the ward they are working in -----------------------------------
    async def with_admin_ward(self, identity: Identity) -> Identity:
        """An admin holding no grant works in their chosen ward, or the only one there is."""
        if not identity.is_admin or identity.ward_id is not None:
            return identity
        async with self._db.session() as session:
            chosen = await session.get(AdminWard, identity.member_id)
            ward = await session.get(Ward, chosen.ward_id) if chosen else None
            if ward is None:
                wards = (await session.exec(select(Ward).limit(2))).all()
                ward = wards[0] if len(wards) == 1 else None
        if ward is None or ward.id is None:
            return identity
        grant = Grant(role=Role.ADMIN, ward_id=ward.id, ward_code=ward.code)
        return replace(identity, grants=(grant,))

    async def choose_ward(self, identity: Identity, ward_id: int) -> Identity:
        """Remember the admin's ward; returns the identity working in it."""
        if not identity.is_admin:
            raise StaffError("not_allowed")
        async with self._db.session() as session:
            ward = await session.get(Ward, ward_id)
            if ward is None:
                raise StaffError("gone")
            row = await session.get(AdminWard, identity.member_id)
            if row is None:
                row = AdminWard(member_id=identity.member_id, ward_id=ward_id,
                                chosen_at=self._clock.now())
            row.ward_id = ward_id
            row.chosen_at = self._clock.now()
            session.add(row)
            code = ward.code
        grants = tuple(g for g in identity.grants if g.role != Role.ADMIN)
        return replace(identity, grants=(Grant(role=Role.ADMIN, ward_id=ward_id,
                                               ward_code=code), *grants))
