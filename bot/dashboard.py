"""The coordinators' web dashboard: sign-in by one-time link only, a signed HttpOnly session
cookie scoped to the person's role and ward, CSRF tokens on every form, pages rendered on
the server from `messages/<locale>/web/`. Every page checks role and scope again from the
database, so a revoked role closes the door at once."""

from __future__ import annotations

import hmac
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from itsdangerous import BadSignature, URLSafeTimedSerializer

from bot.context import AppContext
from bot.core import Role
from bot.services.access import Identity

log = logging.getLogger(__name__)

COOKIE = "cds_session"
SESSION_SECONDS = 8 * 3600
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; form-action 'self'; frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}

Page = Callable[[web.Request, "Viewer"], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Viewer:
    """The signed-in person: who, what role, which ward, and the form token."""

    identity: Identity
    ward_id: int
    role: Role
    csrf: str

    def may_see_group(self, group_id: int) -> bool:
        return self.identity.role_in_group(self.ward_id, group_id) >= Role.LEADER


class Dashboard:
    def __init__(self, app: AppContext, *, secret: str, secure_cookie: bool) -> None:
        self.app = app
        self._serializer = URLSafeTimedSerializer(secret, salt="cds-dashboard-session")
        self._secure = secure_cookie

    def install(self, web_app: web.Application) -> None:
        web_app.router.add_get("/login/{token}", self._login)
        web_app.router.add_get("/dashboard", self._page(self._overview))
        web_app.router.add_get("/dashboard/group/{code}", self._page(self._group))
        web_app.router.add_post("/logout", self._logout)

    # --- sessions ----------------------------------------------------------------------------
    def _render(self, name: str, status: int = 200, **context: Any) -> web.Response:
        html = self.app.texts.render(f"web/{name}", self.app.config.bot.locale, **context)
        return web.Response(
            text=html, status=status, content_type="text/html", charset="utf-8",
            headers=SECURITY_HEADERS,
        )

    async def _viewer(self, request: web.Request) -> Viewer | None:
        raw = request.cookies.get(COOKIE)
        if not raw:
            return None
        try:
            data = self._serializer.loads(raw, max_age=SESSION_SECONDS)
        except BadSignature:
            return None
        identity = await self.app.services.access.identity_of(int(data["m"]))
        if identity is None:
            return None
        ward_id = int(data["w"])
        role = identity.role_in_ward(ward_id)
        if role < Role.LEADER or (role < Role.COORDINATOR and not identity.groups_with(
            Role.LEADER
        )):
            return None
        return Viewer(identity=identity, ward_id=ward_id, role=role, csrf=str(data["c"]))

    def _page(self, page: Page) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def handle(request: web.Request) -> web.StreamResponse:
            viewer = await self._viewer(request)
            if viewer is None:
                return self._render("signed_out", status=401)
            return await page(request, viewer)

        return handle

    async def _login(self, request: web.Request) -> web.StreamResponse:
        member_id = await self.app.services.dashboard_logins.redeem(request.match_info["token"])
        identity = await self.app.services.access.identity_of(member_id) if member_id else None
        ward_id = identity.ward_id if identity else None
        if identity is None or ward_id is None or identity.role_in_ward(ward_id) < Role.LEADER:
            return self._render("link_invalid", status=403)
        cookie = self._serializer.dumps(
            {"m": identity.member_id, "w": ward_id, "c": secrets.token_urlsafe(24)}
        )
        response = web.Response(status=303, headers={**SECURITY_HEADERS, "Location": "/dashboard"})
        response.set_cookie(
            COOKIE, cookie, max_age=SESSION_SECONDS, httponly=True, samesite="Lax",
            secure=self._secure, path="/",
        )
        return response

    async def _logout(self, request: web.Request) -> web.StreamResponse:
        viewer = await self._viewer(request)
        form = await request.post()
        if viewer is None or not hmac.compare_digest(str(form.get("csrf", "")), viewer.csrf):
            return self._render("forbidden", status=403)
        response = self._render("logged_out")
        response.del_cookie(COOKIE, path="/")
        return response

    # --- pages -------------------------------------------------------------------------------
    async def _overview(self, request: web.Request, viewer: Viewer) -> web.StreamResponse:
        places = self.app.services.places
        ward = await places.ward(viewer.ward_id)
        groups = [g for g in await places.groups(viewer.ward_id) if viewer.may_see_group(g.id)]
        chats = await self.app.services.chats.active_by_group(viewer.ward_id)
        return self._render(
            "overview", viewer=viewer, ward=ward, groups=groups, chats=chats,
            role=viewer.role.value,
        )

    async def _group(self, request: web.Request, viewer: Viewer) -> web.StreamResponse:
        group = await self.app.services.places.group_by_code(
            viewer.ward_id, request.match_info["code"]
        )
        if group is None:
            return self._render("not_found", status=404, viewer=viewer)
        if not viewer.may_see_group(group.id):
            log.info("dashboard: member %s refused group %s", viewer.identity.member_id, group.id)
            return self._render("forbidden", status=403)
        chats = await self.app.services.chats.active_by_group(viewer.ward_id)
        return self._render(
            "group", viewer=viewer, group=group, chats=chats.get(group.id, []),
            role=viewer.role.value,
        )
