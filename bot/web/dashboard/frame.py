"""What every dashboard page is given: the signed-in `Viewer`, and the `Frame` that renders
pages inside the signed-in layout (and the refusals: 403, 404, redirects). The route table
(`routes.py`) builds both and hands them to the pages, which import nothing back."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from bot.context import AppContext
from bot.roles import Role
from bot.services.access import Identity

log = logging.getLogger(__name__)

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; form-action 'self'; frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


@dataclass(frozen=True)
class Viewer:
    """The signed-in person: who, what role, which ward, and the form token. `identity`
    keeps only the grants of this ward, so services called with it stay inside the ward."""

    identity: Identity
    ward_id: int
    role: Role
    csrf: str

    @property
    def coordinator(self) -> bool:
        return self.role >= Role.COORDINATOR

    def may_see_group(self, group_id: int) -> bool:
        return self.identity.role_in_group(self.ward_id, group_id) >= Role.LEADER


class Frame:
    """Renders `messages/<locale>/web/` pages with the security headers."""

    def __init__(self, app: AppContext) -> None:
        self.app = app

    def render(self, name: str, status: int = 200, **context: Any) -> web.Response:
        html = self.app.texts.render(f"web/{name}", self.app.config.bot.locale, **context)
        return web.Response(
            text=html, status=status, content_type="text/html", charset="utf-8",
            headers=SECURITY_HEADERS,
        )

    def page(self, name: str, viewer: Viewer, status: int = 200, **context: Any) -> web.Response:
        """A page inside the signed-in frame (header, navigation, sign-out form)."""
        return self.render(
            name, status, viewer=viewer, role=viewer.role.value, today=self.app.clock.now(),
            **context,
        )

    def forbidden(self, viewer: Viewer | None, what: str) -> web.Response:
        # Ids only: names, phones and addresses never reach the logs.
        who = viewer.identity.member_id if viewer else "-"
        log.info("dashboard: member %s refused %s", who, what)
        return self.render("forbidden", status=403)

    def not_found(self, viewer: Viewer) -> web.Response:
        return self.page("not_found", viewer, status=404)

    @staticmethod
    def redirect(location: str) -> web.Response:
        return web.Response(status=303, headers={**SECURITY_HEADERS, "Location": location})
