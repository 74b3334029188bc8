"""Group chats the bot is in, and which residential group each one speaks for."""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.clock import Clock
from bot.core import Chat
from bot.db import Database
from bot.models import ChatBinding, ResidentialGroup
from bot.roles import Role
from bot.services import audit
from bot.services.access import Identity
from bot.services.errors import ServiceError
from bot.services.places import normalize_code


@dataclass(frozen=True)
class BindingInfo:
    platform: str
    chat_id: str
    title: str
    active: bool
    ward_id: int | None
    group_id: int | None
    group_code: str = ""
    group_name: str = ""


@dataclass(frozen=True)
class BindResult:
    binding: BindingInfo
    previous_group_code: str


class Chats:
    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    async def _get(self, session: AsyncSession, platform: str, chat_id: str) -> ChatBinding | None:
        return (
            await session.exec(
                select(ChatBinding).where(
                    ChatBinding.platform == platform, ChatBinding.chat_id == chat_id
                )
            )
        ).first()

    async def _upsert(
        self, session: AsyncSession, platform: str, chat: Chat, *, active: bool = True
    ) -> ChatBinding:
        now = self._clock.now()
        row = await self._get(session, platform, chat.chat_id)
        if row is None:
            row = ChatBinding(
                platform=platform, chat_id=chat.chat_id, chat_type=chat.kind,
                title=chat.title[:255], active=active, created_at=now, updated_at=now,
            )
        else:
            row.active = active
            row.title = chat.title[:255] or row.title
            row.updated_at = now
        session.add(row)
        await session.flush()
        return row

    async def bot_added(
        self, platform: str, chat: Chat, actor_member_id: int | None, *, can_post: bool = True
    ) -> BindingInfo:
        async with self._db.session() as session:
            row = await self._upsert(session, platform, chat)
            row.can_post = can_post
            audit.record(
                session, self._clock, action="chat.added", actor_member_id=actor_member_id,
                ward_id=row.ward_id, target=f"{platform}:{chat.chat_id}", title=chat.title,
            )
            return await self._info(session, row)

    async def bot_removed(
        self, platform: str, chat: Chat, actor_member_id: int | None
    ) -> BindingInfo:
        async with self._db.session() as session:
            row = await self._upsert(session, platform, chat, active=False)
            audit.record(
                session, self._clock, action="chat.removed", actor_member_id=actor_member_id,
                ward_id=row.ward_id, target=f"{platform}:{chat.chat_id}", title=chat.title,
            )
            return await self._info(session, row)

    async def migrated(self, platform: str, old_chat_id: str, new_chat_id: str) -> None:
        """Follow a group upgraded to a supergroup: the binding moves to the new id."""
        async with self._db.session() as session:
            old = await self._get(session, platform, old_chat_id)
            new = await self._get(session, platform, new_chat_id)
            if old is None:
                return
            if new is None:
                old.chat_id = new_chat_id
                old.chat_type = "group"
                old.updated_at = self._clock.now()
                session.add(old)
            else:
                if new.group_id is None:
                    new.group_id, new.ward_id = old.group_id, old.ward_id
                new.active = True
                old.active = False
                session.add_all([old, new])
            audit.record(
                session, self._clock, action="chat.migrated", actor_member_id=None,
                ward_id=old.ward_id, target=f"{platform}:{old_chat_id}", new_chat_id=new_chat_id,
            )

    async def bind(
        self, identity: Identity, platform: str, chat: Chat, group_code: str
    ) -> BindResult:
        """Bind this chat to a group the caller leads (or any group of a coordinator's ward)."""
        code = normalize_code(group_code)
        async with self._db.session() as session:
            ward_ids = list(identity.ward_ids())
            if identity.is_admin and not ward_ids:
                query = select(ResidentialGroup).where(ResidentialGroup.code == code)
            else:
                query = select(ResidentialGroup).where(
                    ResidentialGroup.code == code, col(ResidentialGroup.ward_id).in_(ward_ids)
                )
            groups = (await session.exec(query)).all()
            if not groups:
                raise ServiceError("unknown_group")
            allowed = [
                g for g in groups
                if g.id is not None and identity.role_in_group(g.ward_id, g.id) >= Role.LEADER
            ]
            if not allowed:
                raise ServiceError("not_allowed")
            if len(allowed) > 1:
                raise ServiceError("ambiguous_group")
            group = allowed[0]
            existing = await self._get(session, platform, chat.chat_id)
            if existing is not None and existing.group_id and existing.group_id != group.id:
                # Moving a chat away from a group takes power over that group too: another
                # group's leader must not be able to take its chat.
                old = await session.get(ResidentialGroup, existing.group_id)
                if old is not None and old.id is not None and \
                        identity.role_in_group(old.ward_id, old.id) < Role.LEADER:
                    raise ServiceError("not_allowed")
            row = await self._upsert(session, platform, chat)
            previous = ""
            if row.group_id and row.group_id != group.id:
                prev = await session.get(ResidentialGroup, row.group_id)
                previous = prev.code if prev else ""
            row.group_id, row.ward_id, row.bound_by = group.id, group.ward_id, identity.member_id
            session.add(row)
            audit.record(
                session, self._clock, action="chat.bind", actor_member_id=identity.member_id,
                ward_id=group.ward_id, target=f"{platform}:{chat.chat_id}", group=group.code,
                previous=previous,
            )
            return BindResult(binding=await self._info(session, row), previous_group_code=previous)

    async def active_by_group(self, ward_id: int) -> dict[int, list[BindingInfo]]:
        """The active group chats of each residential group of a ward (one query: a ward
        has hundreds of them, and the dashboard and every broadcast ask)."""
        async with self._db.session() as session:
            rows = (
                await session.exec(
                    select(ChatBinding, ResidentialGroup.code, ResidentialGroup.name)
                    .join(ResidentialGroup,
                          col(ResidentialGroup.id) == col(ChatBinding.group_id))
                    .where(
                        ChatBinding.ward_id == ward_id, col(ChatBinding.active).is_(True),
                    ).order_by(col(ChatBinding.id))
                )
            ).all()
            result: dict[int, list[BindingInfo]] = {}
            for row, code, name in rows:
                assert row.group_id is not None
                result.setdefault(row.group_id, []).append(BindingInfo(
                    platform=row.platform, chat_id=row.chat_id, title=row.title,
                    active=row.active, ward_id=row.ward_id, group_id=row.group_id,
                    group_code=code, group_name=name,
                ))
            return result

    async def binding(self, platform: str, chat_id: str) -> BindingInfo | None:
        async with self._db.session() as session:
            row = await self._get(session, platform, chat_id)
            return await self._info(session, row) if row else None

    async def _info(self, session: AsyncSession, row: ChatBinding) -> BindingInfo:
        group = await session.get(ResidentialGroup, row.group_id) if row.group_id else None
        return BindingInfo(
            platform=row.platform, chat_id=row.chat_id, title=row.title, active=row.active,
            ward_id=row.ward_id, group_id=row.group_id,
            group_code=group.code if group else "", group_name=group.name if group else "",
        )
