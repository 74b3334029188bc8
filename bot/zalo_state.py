"""What the Zalo adapters keep about themselves and the services read back (the quota
pause, the OA's re-authorisation, the OA's one-to-one counts): the names and the shape,
here so neither platforms nor services import the other."""

from __future__ import annotations

from dataclasses import dataclass

QUOTA_FLAG = "quota_exceeded"  # the Zalo bot's monthly quota is used up (flag of "zalo")
REAUTHORIZE_FLAG = "reauthorize"  # the OA's refresh token is dead (flag of "zalo_oa")


@dataclass(frozen=True)
class OACounts:
    """One month of OA one-to-one messages: free replies, proactive, not sent for budget."""

    month: str
    replies: int
    proactive: int
    refused: int
