"""Who is talking, and what they may do where: members, role grants, scopes."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.clock import Clock, Sleeper, SystemSleeper
from bot.core import Sender
from bot.db import IDENTITY_CHANNEL, Database, changes_identity
from bot.delivery.listen import Listener
from bot.models import Member, ResidentialGroup, RoleGrant, Ward
from bot.roles import GROUP_ROLES, Role
from bot.services import audit
from bot.services.errors import ServiceError
from bot.services.places import normalize_code

LAST_SEEN_PRECISION = timedelta(minutes=5)
# A person's identity (member, linked accounts, grants) is reused without reading the
# database for at most `bot.identity_cache_seconds` (default 5 s), and only while changes
# made elsewhere can be heard: grants and revocations made by this process drop it at
# once; made by another process (`cds-bot revoke`, the dashboard, a second instance),
# at once too on PostgreSQL (NOTIFY) and on an SQLite file (a file beside it, one `stat`
# per update). The seconds bound what nothing announces (docs/performance.md).
DEFAULT_IDENTITY_TTL = timedelta(seconds=5)
_IDENTITY_CACHE_SIZE = 20_000


@dataclass(frozen=True)
class Grant:
    role: Role
    ward_id: int | None
    ward_code: str
    group_id: int | None = None
    group_code: str = ""


@dataclass(frozen=True)
class Holder:
    """Someone who holds a role somewhere: enough to name them and to write to them."""

    member_id: int
    platform: str
    user_id: str
    name: str


@dataclass(frozen=True)
class Identity:
    member_id: int
    platform: str
    user_id: str
    name: str
    grants: tuple[Grant, ...] = ()
    is_admin: bool = False
    locale: str = ""

    @property
    def role(self) -> Role:
        if self.is_admin:
            return Role.ADMIN
        return max((g.role for g in self.grants), default=Role.GUEST, key=lambda r: r.rank)

    @property
    def main_grant(self) -> Grant | None:
        return max(self.grants, key=lambda g: g.role.rank, default=None)

    @property
    def ward_id(self) -> int | None:
        grant = self.main_grant
        return grant.ward_id if grant else None

    def ward_ids(self) -> set[int]:
        return {g.ward_id for g in self.grants if g.ward_id is not None}

    def role_in_ward(self, ward_id: int) -> Role:
        if self.is_admin:
            return Role.ADMIN
        roles = [g.role for g in self.grants if g.ward_id == ward_id]
        return max(roles, default=Role.GUEST, key=lambda r: r.rank)

    def role_in_group(self, ward_id: int, group_id: int) -> Role:
        """The power this person has over one group: ward-wide roles count everywhere."""
        if self.is_admin:
            return Role.ADMIN
        best = Role.GUEST
        for g in self.grants:
            if g.ward_id != ward_id:
                continue
            if g.group_id is None or g.group_id == group_id:
                best = max(best, g.role, key=lambda r: r.rank)
        return best

    def groups_with(self, minimum: Role) -> list[Grant]:
        """Group grants of at least `minimum` (the groups a leader or helper works in)."""
        return [g for g in self.grants if g.group_id is not None and g.role >= minimum]


@dataclass(frozen=True)
class _Cached:
    read_at: datetime
    name: str
    username: str
    stamp: tuple[object, ...]
    identity: Identity


class Access:
    def __init__(
        self, db: Database, clock: Clock, admins: Mapping[str, Iterable[str]], *,
        ttl: timedelta = DEFAULT_IDENTITY_TTL, sleeper: Sleeper | None = None,
    ) -> None:
        self._db = db
        self._clock = clock
        self._admins = {platform: frozenset(ids) for platform, ids in admins.items()}
        self._ttl = ttl
        # (platform, user id) -> what was read, and when: perf (#16).
        self._identities: dict[tuple[str, str], _Cached] = {}
        # Moves on every change of identity heard of (this process's writes, NOTIFY, the
        # listener reconnecting): an entry read before it moved is never used again.
        self._generation = 0
        self._listener = Listener(db, sleeper or SystemSleeper(), (IDENTITY_CHANNEL,),
                                  self._heard, connected=self._forget_all)
        db.on_write(self._forget_on_write)

    async def start(self) -> None:
        """Hear identity changes made by other processes (PostgreSQL; the running bot)."""
        self._listener.start()

    async def stop(self) -> None:
        await self._listener.stop()
        self._forget_all()

    def _forget_all(self) -> None:
        self._generation += 1
        self._identities.clear()

    def _heard(self, _channel: str, _payload: str) -> None:
        self._forget_all()

    def _forget_on_write(self, tables: set[str], objects: list[object]) -> None:
        """Grants, revocations and linked accounts change who someone is: forget them all
        (rare writes; a plain "last seen" update of a member does not count)."""
        if changes_identity(tables, objects):
            self._forget_all()

    def _stamp(self) -> tuple[object, ...]:
        return (self._generation, self._db.identity_stamp())

    def _trusted(self) -> bool:
        """Whether cached identities may be used at all: on PostgreSQL only while other
        processes' changes are heard (between a lost connection and the next, nothing is)."""
        if self._ttl <= timedelta(0):
            return False
        return not self._listener.active or self._listener.listening.is_set()

    async def identify(self, platform: str, sender: Sender) -> Identity:
        """Find or create the member for this sender and load their grants (reused for a
        few seconds: one person's burst of messages reads them once)."""
        key = (platform, sender.user_id)
        now = self._clock.now()
        stamp = self._stamp()  # before reading: a change from now on makes the read stale
        cached = self._identities.get(key)
        if cached is not None and self._trusted() and (
            timedelta(0) <= now - cached.read_at < self._ttl
            and cached.stamp == stamp
            and cached.name == sender.name and cached.username == sender.username
        ):
            return cached.identity
        identity = await self._identify(platform, sender)
        if self._ttl > timedelta(0):
            if len(self._identities) >= _IDENTITY_CACHE_SIZE:
                self._identities.clear()
            self._identities[key] = _Cached(now, sender.name, sender.username, stamp, identity)
        return identity

    async def _identify(self, platform: str, sender: Sender) -> Identity:
        async with self._db.session() as session:
            # One statement for the member, their linked accounts and every grant: what
            # each update not served from the cache costs (perf, #16).
            found = await _member_with_grants(session, platform, sender.user_id)
            if found is None or self._needs_touch(found, sender):
                member = await self._touch_member(session, platform, sender)
                assert member.id is not None
                member_id, name, locale = member.id, member.display_name, member.locale
                grants = (found.grants if found is not None else tuple(
                    await _load_grants(session, *await _same_person(session, member))))
            else:
                member_id, name, locale = found.member_id, found.name, found.locale
                grants = found.grants
            return Identity(
                member_id=member_id,
                platform=platform,
                user_id=sender.user_id,
                name=name,
                grants=grants,
                is_admin=sender.user_id in self._admins.get(platform, frozenset()),
                locale=locale,
            )

    def _needs_touch(self, found: _Found, sender: Sender) -> bool:
        """Whether `_touch_member` would write (a new name or username, or "last seen"
        older than its precision): only then is the member read as an object."""
        renamed = bool(sender.name) and found.name != sender.name[:200]
        return renamed or sender.username[:64] != found.username or (
            self._clock.now() - found.last_seen_at > LAST_SEEN_PRECISION
        )

    async def identity_of(self, member_id: int) -> Identity | None:
        """The person behind a member id, with current grants (revocations apply at once)."""
        async with self._db.session() as session:
            member = await session.get(Member, member_id)
            if member is None or member.id is None:
                return None
            grants = await _load_grants(session, *await _same_person(session, member))
            return Identity(
                member_id=member.id, platform=member.platform,
                user_id=member.platform_user_id, name=member.display_name,
                grants=tuple(grants),
                is_admin=member.platform_user_id in self._admins.get(member.platform, frozenset()),
                locale=member.locale,
            )

    async def coordinators(self, ward_id: int) -> list[tuple[str, str]]:
        """(platform, user id) of the ward's coordinators, for digests and final rankings."""
        return [(h.platform, h.user_id) for h in await self.holders(ward_id, {Role.COORDINATOR})]

    async def holders(
        self, ward_id: int, roles: Collection[Role], group_id: int | None = None
    ) -> list[Holder]:
        async with self._db.session() as session:
            return await holders(session, ward_id, roles, group_id)

    async def _touch_member(self, session: AsyncSession, platform: str, sender: Sender) -> Member:
        now = self._clock.now()
        member = await _find_member(session, platform, sender.user_id)
        if member is None:
            member = Member(
                platform=platform,
                platform_user_id=sender.user_id,
                display_name=sender.name[:200],
                username=sender.username[:64],
                created_at=now,
                last_seen_at=now,
            )
            try:
                async with session.begin_nested():
                    session.add(member)
            except IntegrityError:
                found = await _find_member(session, platform, sender.user_id)
                assert found is not None
                member = found
            return member
        renamed = bool(sender.name) and member.display_name != sender.name[:200]
        if renamed or sender.username[:64] != member.username or (
            now - member.last_seen_at > LAST_SEEN_PRECISION
        ):
            # Writing on every message would serialise all readers behind SQLite's one
            # writer; "last seen" to within a few minutes is all anyone needs.
            if sender.name:
                member.display_name = sender.name[:200]
            member.username = sender.username[:64]
            member.last_seen_at = now
            session.add(member)
        return member

    async def grant(
        self,
        *,
        platform: str,
        user_id: str,
        role: Role,
        ward_code: str,
        group_code: str | None = None,
        actor_member_id: int | None = None,
        name: str = "",
    ) -> Grant:
        """Give a role to a platform user (who may never have written to the bot yet)."""
        async with self._db.session() as session:
            ward = (
                await session.exec(select(Ward).where(Ward.code == normalize_code(ward_code)))
            ).first()
            if ward is None or ward.id is None:
                raise ServiceError("unknown_ward", code=normalize_code(ward_code))
            group_id: int | None = None
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
                    raise ServiceError("unknown_group", code=normalize_code(group_code))
                group_id = group.id
            elif role in GROUP_ROLES:
                raise ServiceError("group_required", role=role.value)
            member = await self._touch_member(session, platform, Sender(user_id=user_id, name=name))
            assert member.id is not None
            return await self.add_grant(
                session, member_id=member.id, role=role, ward_id=ward.id, group_id=group_id,
                actor_member_id=actor_member_id, via="cli" if actor_member_id is None else "chat",
            )

    async def add_grant(
        self,
        session: AsyncSession,
        *,
        member_id: int,
        role: Role,
        ward_id: int,
        group_id: int | None,
        actor_member_id: int | None,
        via: str,
    ) -> Grant:
        """Record a grant inside an open transaction; granting twice changes nothing."""
        existing = (
            await session.exec(
                select(RoleGrant).where(
                    RoleGrant.member_id == member_id,
                    RoleGrant.role == role.value,
                    RoleGrant.ward_id == ward_id,
                    RoleGrant.group_id == group_id if group_id is not None
                    else col(RoleGrant.group_id).is_(None),
                    col(RoleGrant.revoked_at).is_(None),
                )
            )
        ).first()
        if existing is None:
            session.add(
                RoleGrant(
                    member_id=member_id, role=role.value, ward_id=ward_id, group_id=group_id,
                    granted_by=actor_member_id, created_at=self._clock.now(),
                )
            )
            audit.record(
                session, self._clock, action="role.grant", actor_member_id=actor_member_id,
                ward_id=ward_id, target=f"member:{member_id}", role=role.value,
                group_id=group_id, via=via,
            )
            await session.flush()
        grants = await _load_grants(session, member_id)
        return next(
            g for g in grants if g.role == role and g.ward_id == ward_id and g.group_id == group_id
        )


@dataclass(frozen=True)
class _Found:
    member_id: int
    name: str
    username: str
    last_seen_at: datetime
    locale: str
    grants: tuple[Grant, ...]


def _identity_query() -> Any:
    linked = aliased(Member)
    columns: Any = sa.select(
        col(Member.id), col(Member.display_name), col(Member.username),
        col(Member.last_seen_at), col(Member.locale),
        col(RoleGrant.role), col(RoleGrant.ward_id), col(RoleGrant.group_id), col(Ward.code),
        col(ResidentialGroup.code),
    )
    return (
        columns
        .select_from(Member)
        .outerjoin(linked, sa.or_(
            col(linked.id) == col(Member.id),
            sa.and_(col(Member.person_id).is_not(None),
                    col(linked.person_id) == col(Member.person_id)),
        ))
        .outerjoin(RoleGrant, sa.and_(col(RoleGrant.member_id) == col(linked.id),
                                      col(RoleGrant.revoked_at).is_(None)))
        .outerjoin(Ward, col(Ward.id) == col(RoleGrant.ward_id))
        .outerjoin(ResidentialGroup, col(ResidentialGroup.id) == col(RoleGrant.group_id))
        .where(col(Member.platform) == sa.bindparam("platform"),
               col(Member.platform_user_id) == sa.bindparam("user_id"))
        .order_by(col(RoleGrant.id))
    )


# Built once with bound parameters: read for every update whose identity is not cached.
_IDENTITY = _identity_query()


async def _member_with_grants(
    session: AsyncSession, platform: str, user_id: str
) -> _Found | None:
    """The member and the live grants of every account of the same person, in one query
    (as `_find_member` + `_same_person` + `_load_grants`, which stay for the rare paths)."""
    rows = (
        await session.exec(_IDENTITY, params={"platform": platform, "user_id": user_id})
    ).all()
    if not rows:
        return None
    member_id, name, username, last_seen_at, locale = rows[0][:5]
    seen: set[tuple[str, int | None, int | None]] = set()
    grants = []
    for *_member, role, ward_id, group_id, ward_code, group_code in rows:
        key = (role, ward_id, group_id)
        if role is None or ward_code is None or key in seen:
            continue
        seen.add(key)
        grants.append(Grant(role=Role(role), ward_id=ward_id, ward_code=ward_code,
                            group_id=group_id, group_code=group_code or ""))
    return _Found(member_id, name, username, last_seen_at, locale, tuple(grants))


async def _same_person(session: AsyncSession, member: Member) -> list[int]:
    """This member and every account linked to it (roles follow the person)."""
    assert member.id is not None
    if member.person_id is None:
        return [member.id]
    rows = (
        await session.exec(select(Member.id).where(Member.person_id == member.person_id))
    ).all()
    return sorted({member.id, *(r for r in rows if r is not None)})


async def _find_member(session: AsyncSession, platform: str, user_id: str) -> Member | None:
    return (
        await session.exec(
            select(Member).where(Member.platform == platform, Member.platform_user_id == user_id)
        )
    ).first()


async def _load_grants(session: AsyncSession, *member_ids: int) -> list[Grant]:
    # Plain columns, not three ORM objects per grant: read on every identity (perf).
    columns: Any = sa.select(
        col(RoleGrant.role), col(RoleGrant.ward_id), col(RoleGrant.group_id), col(Ward.code),
        col(ResidentialGroup.code),
    )
    rows = (
        await session.exec(
            columns
            .join(Ward, col(Ward.id) == col(RoleGrant.ward_id))
            .outerjoin(ResidentialGroup, col(ResidentialGroup.id) == col(RoleGrant.group_id))
            .where(
                col(RoleGrant.member_id).in_(member_ids), col(RoleGrant.revoked_at).is_(None)
            )
            .order_by(col(RoleGrant.id))
        )
    ).all()
    seen: set[tuple[str, int | None, int | None]] = set()
    grants = []
    for role, ward_id, group_id, ward_code, group_code in rows:
        key = (role, ward_id, group_id)
        if key not in seen:
            seen.add(key)
            grants.append(Grant(
                role=Role(role), ward_id=ward_id, ward_code=ward_code,
                group_id=group_id, group_code=group_code or "",
            ))
    return grants


async def holders(
    session: AsyncSession, ward_id: int, roles: Collection[Role], group_id: int | None = None
) -> list[Holder]:
    """Who holds one of `roles` in a ward now (revoked grants do not count); with
    `group_id`, only grants covering that group: its own, or ward-wide ones. Each person's
    account once, ordered by name. The one query behind "tell the coordinators", "the
    group's leaders and helpers", "who can handle this ticket"."""
    query = (
        select(Member.id, Member.platform, Member.platform_user_id, Member.display_name)
        .join(RoleGrant, col(RoleGrant.member_id) == col(Member.id))
        .where(col(RoleGrant.ward_id) == ward_id, col(RoleGrant.revoked_at).is_(None),
               col(RoleGrant.role).in_([r.value for r in roles]))
        .distinct()
    )
    if group_id is not None:
        query = query.where(sa.or_(col(RoleGrant.group_id).is_(None),
                                   col(RoleGrant.group_id) == group_id))
    rows = (await session.exec(query)).all()
    found = {m: Holder(m, p, u, name) for m, p, u, name in rows if m is not None}
    return sorted(found.values(), key=lambda h: (h.name, h.member_id))
