"""The coordinators' web dashboard: sign-in by one-time link only, a signed HttpOnly session
cookie scoped to the person's role and ward, CSRF tokens on every form, pages rendered on
the server from `messages/<locale>/web/`. Every page checks role and scope again from the
database, so a revoked role closes the door at once.

This module holds sessions, the page guard and the route table; the pages themselves live
in `bot/dashboard_pages.py`, `bot/dashboard_feedback.py` and `bot/dashboard_downloads.py`.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from aiohttp import web
from itsdangerous import BadSignature, URLSafeTimedSerializer

from bot.context import AppContext
from bot.core import Role
from bot.services.access import Identity
from bot.services.dashboard_sessions import DashboardSessions
from bot.web.dashboard import downloads, feedback, pages

log = logging.getLogger(__name__)

COOKIE = "cds_session"
LOGIN_COOKIE = "cds_login"
SESSION_SECONDS = 8 * 3600
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; form-action 'self'; frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Page = Callable[["Dashboard", web.Request, "Viewer"], Awaitable[web.StreamResponse]]


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


class Dashboard:
    def __init__(self, app: AppContext, *, secret: str, secure_cookie: bool) -> None:
        self.app = app
        self._serializer = URLSafeTimedSerializer(secret, salt="cds-dashboard-session")
        self._login_forms = URLSafeTimedSerializer(secret, salt="cds-dashboard-login-form")
        self._secure = secure_cookie
        self._sessions = DashboardSessions(app.db, app.clock, timedelta(seconds=SESSION_SECONDS))

    def install(self, web_app: web.Application) -> None:
        add_get, add_post = web_app.router.add_get, web_app.router.add_post
        add_get("/login/{token}", self._login_page)
        add_post("/login/{token}", self._login)
        add_post("/logout", self._logout)
        add_get("/dashboard", self._page(pages.overview))
        add_get("/dashboard/group/{code:[A-Za-z0-9_-]{1,32}}", self._page(pages.group))
        add_get("/dashboard/notices", self._page(pages.notices))
        add_get("/dashboard/explanations", self._page(pages.explanations, Role.COORDINATOR))
        add_get("/dashboard/feedback", self._page(feedback.queue))
        # Bounded: a 30-digit "ticket number" is not a ticket, and not a database error.
        add_get("/dashboard/feedback/{number:\\d{1,9}}", self._page(feedback.ticket))
        add_post("/dashboard/feedback/{number:\\d{1,9}}", self._page(feedback.act, post=True))
        add_get("/dashboard/export.xlsx", self._page(downloads.xlsx))
        add_get("/dashboard/group/{code:[A-Za-z0-9_-]{1,32}}/poster",
                self._page(downloads.poster))
        add_post("/dashboard/group/{code:[A-Za-z0-9_-]{1,32}}/poster",
                 self._page(downloads.new_poster, post=True))

    # --- rendering ----------------------------------------------------------------------------
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

    # --- sessions -----------------------------------------------------------------------------
    async def _viewer(self, request: web.Request) -> Viewer | None:
        raw = request.cookies.get(COOKIE)
        if not raw:
            return None
        try:
            data = self._serializer.loads(raw, max_age=SESSION_SECONDS)
        except BadSignature:
            return None
        if not await self._sessions.alive(str(data.get("s", "")), int(data["m"])):
            return None  # signed out ("Đăng xuất" ends the session on the server)
        identity = await self.app.services.access.identity_of(int(data["m"]))
        if identity is None:
            return None
        ward_id = int(data["w"])
        role = identity.role_in_ward(ward_id)
        if role < Role.LEADER or (role < Role.COORDINATOR and not identity.groups_with(
            Role.LEADER
        )):
            return None
        scoped = replace(identity, grants=tuple(g for g in identity.grants
                                                if g.ward_id == ward_id))
        return Viewer(identity=scoped, ward_id=ward_id, role=role, csrf=str(data["c"]))

    def _page(self, page: Page, minimum: Role = Role.LEADER, *, post: bool = False) -> Handler:
        async def handle(request: web.Request) -> web.StreamResponse:
            viewer = await self._viewer(request)
            if viewer is None:
                return self.render("signed_out", status=401)
            if post:
                form = await request.post()
                if not hmac.compare_digest(str(form.get("csrf", "")), viewer.csrf):
                    return self.forbidden(viewer, f"{request.path} (form token)")
            if viewer.role < minimum:
                return self.forbidden(viewer, request.path)
            return await page(self, request, viewer)

        return handle

    async def _login_page(self, request: web.Request) -> web.StreamResponse:
        """Opening the link only shows a button: chat apps fetch links to preview them,
        and a GET that signed in would use the one-time link up (or sign the crawler in)."""
        if not await self.app.services.dashboard_logins.valid(request.match_info["token"]):
            return self.render("link_invalid", status=403)
        return self._login_form(request)

    def _login_form(self, request: web.Request, status: int = 200) -> web.Response:
        """The sign-in button, bound to this browser: a random value in a strict cookie and
        its signed copy in the form. A page on another site can make a browser post the
        form, but not with this cookie (login CSRF: signing a person into someone else's
        session)."""
        nonce = secrets.token_urlsafe(18)
        response = self.render("login_confirm", status,
                               form_token=self._login_forms.dumps(nonce))
        response.set_cookie(LOGIN_COOKIE, nonce, max_age=600, httponly=True,
                            samesite="Strict", secure=self._secure, path="/login")
        return response

    def _same_site(self, request: web.Request) -> bool:
        fetch_site = request.headers.get("Sec-Fetch-Site", "")
        if fetch_site and fetch_site not in ("same-origin", "none"):
            return False
        origin = request.headers.get("Origin", "")
        if origin and origin != "null":
            return origin.split("://", 1)[-1] == request.host
        return True

    async def _login_form_ok(self, request: web.Request) -> bool:
        form = await request.post()
        try:
            nonce = self._login_forms.loads(str(form.get("login", "")), max_age=600)
        except BadSignature:
            return False
        cookie = request.cookies.get(LOGIN_COOKIE, "")
        return bool(cookie) and hmac.compare_digest(str(nonce), cookie)

    async def _login(self, request: web.Request) -> web.StreamResponse:
        if not self._same_site(request) or not await self._login_form_ok(request):
            log.info("dashboard: sign-in refused (form not from this browser's page)")
            if not await self.app.services.dashboard_logins.valid(request.match_info["token"]):
                return self.render("link_invalid", status=403)
            return self._login_form(request, status=403)
        member_id = await self.app.services.dashboard_logins.redeem(request.match_info["token"])
        identity = await self.app.services.access.identity_of(member_id) if member_id else None
        if identity is not None and identity.is_admin and identity.ward_id is None:
            identity = await self.app.services.staff.with_admin_ward(identity)  # /phuong
        ward_id = identity.ward_id if identity else None
        if identity is None or ward_id is None or identity.role_in_ward(ward_id) < Role.LEADER:
            return self.render("link_invalid", status=403)
        session = await self._sessions.open(identity.member_id)
        cookie = self._serializer.dumps(
            {"m": identity.member_id, "w": ward_id, "c": secrets.token_urlsafe(24),
             "s": session}
        )
        response = self.redirect("/dashboard")
        response.set_cookie(
            COOKIE, cookie, max_age=SESSION_SECONDS, httponly=True, samesite="Lax",
            secure=self._secure, path="/",
        )
        return response

    async def _logout(self, request: web.Request) -> web.StreamResponse:
        viewer = await self._viewer(request)
        form = await request.post()
        if viewer is None or not hmac.compare_digest(str(form.get("csrf", "")), viewer.csrf):
            return self.forbidden(viewer, "/logout (form token)")
        raw = self._serializer.loads(request.cookies.get(COOKIE, ""), max_age=SESSION_SECONDS)
        await self._sessions.end(str(raw.get("s", "")), viewer.ward_id)
        response = self.render("logged_out")
        response.del_cookie(COOKIE, path="/")
        return response
