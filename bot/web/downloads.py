"""`/download/{token}`: the web side of one-time download links (see services/downloads)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from bot.context import AppContext
from bot.core import Role

log = logging.getLogger(__name__)

FileMaker = Callable[[AppContext, int], Awaitable[tuple[str, bytes, int]]]


class DownloadRoutes:
    def __init__(self, app: AppContext, makers: dict[str, tuple[FileMaker, str]]) -> None:
        self._app = app
        self._makers = makers  # kind → (make the file, its content type)

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
        if redeemed is None or redeemed.kind not in self._makers:
            return self._invalid()
        person = await self._app.services.access.identity_of(redeemed.member_id)
        if person is None or person.role_in_ward(redeemed.ward_id) < Role.COORDINATOR:
            return self._invalid()  # the role was taken away since the link was made
        make, content_type = self._makers[redeemed.kind]
        filename, data, _ = await make(self._app, redeemed.ward_id)
        return web.Response(
            body=data, content_type=content_type,
            headers={"Content-Disposition": f'attachment; filename="{filename}"',
                     "Cache-Control": "no-store"},
        )

    def _invalid(self) -> web.Response:
        html = self._app.texts.render("downloads/invalid", self._app.config.bot.locale)
        return web.Response(text=html, content_type="text/html", status=404)
