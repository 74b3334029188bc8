"""`/download/{token}`: the web side of one-time download links (see services/downloads)."""

from __future__ import annotations

import logging

from aiohttp import web

from bot.context import AppContext
from bot.roles import Role
from bot.services.reports import Workbook

log = logging.getLogger(__name__)


class DownloadRoutes:
    def __init__(self, app: AppContext) -> None:
        self._app = app

    def install(self, web_app: web.Application) -> None:
        web_app.router.add_get("/download/{token}", self.confirm)
        web_app.router.add_post("/download/{token}", self.download)

    async def confirm(self, request: web.Request) -> web.StreamResponse:
        """A page with a button: chat apps (Zalo) fetch links to preview them, and a GET
        that handed out the file would give the ward's list to their crawler."""
        if not await self._app.services.downloads.valid(request.match_info["token"]):
            return self._invalid()
        html = self._app.texts.render("downloads/confirm", self._app.config.bot.locale)
        return web.Response(text=html, content_type="text/html",
                            headers={"Cache-Control": "no-store"})

    async def download(self, request: web.Request) -> web.StreamResponse:
        redeemed = await self._app.services.downloads.redeem(request.match_info["token"])
        if redeemed is None or redeemed.kind != "progress_xlsx":
            return self._invalid()
        person = await self._app.services.access.identity_of(redeemed.member_id)
        if person is None or person.role_in_ward(redeemed.ward_id) < Role.COORDINATOR:
            return self._invalid()  # the role was taken away since the link was made
        book = await self._make(redeemed.kind, redeemed.ward_id)
        return web.Response(
            body=book.data, content_type=book.content_type,
            headers={"Content-Disposition": f'attachment; filename="{book.filename}"',
                     "Cache-Control": "no-store"},
        )

    async def _make(self, kind: str, ward_id: int) -> Workbook:
        """The file a link of this kind gives (services/downloads.KINDS)."""
        assert kind == "progress_xlsx"
        return await self._app.services.reports.progress_workbook(ward_id, self._app.texts.label)

    def _invalid(self) -> web.Response:
        html = self._app.texts.render("downloads/invalid", self._app.config.bot.locale)
        return web.Response(text=html, content_type="text/html", status=404)
