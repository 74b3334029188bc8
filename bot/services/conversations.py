"""Open forms, kept in the database so a restart in the middle of one loses nothing."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import col, select

from bot.clock import Clock
from bot.core import Button
from bot.db import Database
from bot.models import ConversationState
from bot.texts import Texts

MENU_SUFFIX = "#menu"
MENU_FLOW = "_menu"


@dataclass(frozen=True)
class FormState:
    flow: str
    step: str
    data: dict[str, Any] = field(default_factory=dict)
    expires_at: datetime | None = None
    expired: bool = False


@dataclass(frozen=True)
class Who:
    platform: str
    chat_id: str
    user_id: str


class Conversations:
    def __init__(self, db: Database, clock: Clock, *, timeout: timedelta) -> None:
        self._db = db
        self._clock = clock
        self._timeout = timeout

    async def get(self, who: Who) -> FormState | None:
        """The open form, or an `expired` marker once (the expired row is then removed)."""
        async with self._db.session() as session:
            row = (await session.exec(_OPEN_FORM, params={
                "platform": who.platform, "chat_id": who.chat_id, "user_id": who.user_id,
            })).first()
            if row is None:
                return None
            flow, step, data, expires_at = row
            if expires_at <= self._clock.now():
                await session.exec(sa.delete(ConversationState).where(*_keys(who)))
                return FormState(flow=flow, step=step, expired=True)
            return FormState(flow=flow, step=step, data=dict(data), expires_at=expires_at)

    async def save(self, who: Who, flow: str, step: str, data: dict[str, Any]) -> FormState:
        """Start or advance a form; every save gives the person the full timeout again."""
        now = self._clock.now()
        expires = now + self._timeout
        async with self._db.session() as session:
            row = (await session.exec(_select(who))).first()
            if row is None:
                row = ConversationState(
                    platform=who.platform, chat_id=who.chat_id, user_id=who.user_id,
                    flow=flow, step=step, data=data, updated_at=now, expires_at=expires,
                )
            else:
                row.flow, row.step, row.data = flow, step, dict(data)
                row.updated_at, row.expires_at = now, expires
            session.add(row)
        return FormState(flow=flow, step=step, data=dict(data), expires_at=expires)

    async def clear(self, who: Who) -> bool:
        async with self._db.session() as session:
            result = await session.exec(
                sa.delete(ConversationState).where(
                    col(ConversationState.platform) == who.platform,
                    col(ConversationState.chat_id) == who.chat_id,
                    col(ConversationState.user_id) == who.user_id,
                )
            )
            return bool(result.rowcount)

    async def save_menu(self, who: Who, payloads: list[str]) -> None:
        """Remember the buttons shown as a numbered list, so "2" can press the second one.

        Kept beside the person's form (same table, its own row) so a menu never disturbs a
        form and both survive a restart."""
        menu_who = Who(who.platform, who.chat_id, who.user_id + MENU_SUFFIX)
        await self.save(menu_who, MENU_FLOW, "shown", {"payloads": payloads})

    async def menu_choice(self, who: Who, number: int) -> str | None:
        """The payload of button `number` (1-based) of the menu last shown to this person."""
        state = await self.get(Who(who.platform, who.chat_id, who.user_id + MENU_SUFFIX))
        if state is None or state.expired:
            return None
        async with self._db.session() as session:
            form = (await session.exec(_select(who))).first()
        if form is not None and state.expires_at is not None and \
                form.expires_at > state.expires_at and form.expires_at > self._clock.now():
            # A form asked its question after this menu was shown: "2" answers the form.
            return None
        payloads = state.data.get("payloads", [])
        if 1 <= number <= len(payloads):
            return str(payloads[number - 1])
        return None

    async def purge_expired(self) -> int:
        async with self._db.session() as session:
            result = await session.exec(
                sa.delete(ConversationState).where(
                    col(ConversationState.expires_at) <= self._clock.now()
                )
            )
            return int(result.rowcount)


# The open form, read for nearly every update: plain columns, and built once with bound
# parameters (building and keying a statement costs about as much as SQLite running it).
_OPEN_FORM: Any = sa.select(
    col(ConversationState.flow), col(ConversationState.step),
    col(ConversationState.data), col(ConversationState.expires_at),
).where(
    col(ConversationState.platform) == sa.bindparam("platform"),
    col(ConversationState.chat_id) == sa.bindparam("chat_id"),
    col(ConversationState.user_id) == sa.bindparam("user_id"),
)


def _keys(who: Who) -> tuple[Any, ...]:
    return (
        col(ConversationState.platform) == who.platform,
        col(ConversationState.chat_id) == who.chat_id,
        col(ConversationState.user_id) == who.user_id,
    )


def _select(who: Who) -> Any:
    return select(ConversationState).where(
        ConversationState.platform == who.platform,
        ConversationState.chat_id == who.chat_id,
        ConversationState.user_id == who.user_id,
    )


async def numbered_menu(
    conversations: Conversations, texts: Texts, locale: str, who: Who, text: str,
    buttons: Sequence[Sequence[Button]],
) -> str:
    """Buttons as "1. ..., 2. ..." under `text`, for platforms without buttons (Zalo); the
    payloads are remembered so that "2" typed next presses the second one."""
    flat = [b for row in buttons for b in row]
    await conversations.save_menu(who, [b.payload for b in flat])
    menu = texts.render("core/numbered_menu", locale, labels=[b.label for b in flat])
    return f"{text}\n\n{menu}"
