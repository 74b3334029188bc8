"""The audit log: who changed what, when. Written inside the caller's transaction."""

from __future__ import annotations

from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.clock import Clock
from bot.models import AuditLog


def record(
    session: AsyncSession,
    clock: Clock,
    *,
    action: str,
    actor_member_id: int | None,
    ward_id: int | None,
    target: str = "",
    **details: Any,
) -> None:
    """Add an audit row to the session; it commits with the change it describes."""
    session.add(
        AuditLog(
            at=clock.now(),
            actor_member_id=actor_member_id,
            ward_id=ward_id,
            action=action,
            target=target[:200],
            details=details,
        )
    )
