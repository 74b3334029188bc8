"""Who may do what: the roles, in rising order of power, and which are granted per group.

Platform-neutral and free of storage: the router's guard, the services' scope checks and
the dashboard all compare `Role`s; grants themselves live in `bot/services/access.py`.
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    """Roles in rising order of power; each may do what the ones below it may."""

    GUEST = "guest"
    RESIDENT = "resident"
    HELPER = "helper"
    LEADER = "leader"
    COORDINATOR = "coordinator"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return _RANKS[self]

    def __ge__(self, other: object) -> bool:
        if not isinstance(other, Role):
            return NotImplemented
        return self.rank >= other.rank

    def __gt__(self, other: object) -> bool:
        if not isinstance(other, Role):
            return NotImplemented
        return self.rank > other.rank

    def __le__(self, other: object) -> bool:
        if not isinstance(other, Role):
            return NotImplemented
        return self.rank <= other.rank

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Role):
            return NotImplemented
        return self.rank < other.rank


_RANKS = {role: rank for rank, role in enumerate(Role)}

# Roles that are granted per residential group rather than for the whole ward.
GROUP_ROLES = frozenset({Role.RESIDENT, Role.HELPER, Role.LEADER})
