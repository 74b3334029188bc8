"""Hourly housekeeping: forms nobody finished are dropped once they expire."""

from __future__ import annotations

from dataclasses import dataclass

from bot.services.conversations import Conversations


@dataclass(frozen=True)
class Housekeeping:
    conversations: Conversations

    async def purge_expired_forms(self) -> int:
        """Delete expired half-filled forms; returns how many went."""
        return await self.conversations.purge_expired()
