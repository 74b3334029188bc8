"""The one way a service says no: `ServiceError(reason, **details)`.

`reason` is a short key that names the message the person sees (a handler renders
`<feature>/error_<reason>`, the CLI a label), and `details` fill that message (a code, a
limit, a column name). Services raise it for every request they refuse; handlers, the
dashboard and the CLI catch it around the one call that may refuse.
"""

from __future__ import annotations

from typing import Any


class ServiceError(Exception):
    def __init__(self, reason: str, /, **details: Any) -> None:
        super().__init__(reason)
        self.reason = reason
        self.details = details

    @property
    def detail(self) -> str:
        """The one free-text detail some reasons carry (a column name, a limit), or ""."""
        return str(self.details.get("detail", ""))
