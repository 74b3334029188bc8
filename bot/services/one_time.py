"""One-time links (dashboard sign-in, downloads): only a hash of the token is stored, a link
works until it expires or is used, and using it up is atomic (one of two clicks wins)."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import TypeVar

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.models import DashboardLogin, DownloadLink

Link = TypeVar("Link", DashboardLogin, DownloadLink)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def usable(session: AsyncSession, model: type[Link], token: str,
                 now: datetime) -> Link | None:
    """The link row if it would still work now, without using it up."""
    row = (await session.exec(
        select(model).where(model.token_hash == token_hash(token)))).first()
    if row is None or row.used_at is not None or row.expires_at <= now:
        return None
    return row


async def use_up(session: AsyncSession, model: type[Link], token: str,
                 now: datetime) -> Link | None:
    """The link row, marked used, if this call is the one that used it."""
    row = await usable(session, model, token, now)
    if row is None:
        return None
    taken = await session.exec(
        sa.update(model).where(col(model.id) == row.id, col(model.used_at).is_(None))
        .values(used_at=now)
    )
    return row if taken.rowcount == 1 else None
