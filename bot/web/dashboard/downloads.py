"""Downloads: the progress workbook (as `/xuat` sends it) and a printable A4 poster per
group with a resident invite's QR code and a short "how to join"."""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from markupsafe import Markup

from bot.roles import Role
from bot.services import dashboard as data
from bot.services.errors import ServiceError
from bot.services.places import GroupInfo
from bot.web.dashboard.frame import Frame, Viewer

log = logging.getLogger(__name__)

POSTER_DAYS = 90


@dataclass(frozen=True)
class Channel:
    """One way to join: a platform, its link, and the link's QR code when it is a URL."""

    platform: str
    link: str
    qr: Markup | None


def qr_svg(link: str) -> Markup:
    """The QR code as inline SVG (crisp at any print size); segno writes only its own
    markup, so it is safe to insert unescaped."""
    import segno  # drawn on request only: not loaded by an idle bot (~1.7 MB)

    buffer = io.BytesIO()
    segno.make(link, error="m").save(
        buffer, kind="svg", scale=8, border=2, xmldecl=False, svgns=True, nl=False,
        svgclass="qr", omitsize=True,
    )
    return Markup(buffer.getvalue().decode())


async def xlsx(d: Frame, request: web.Request, viewer: Viewer) -> web.StreamResponse:
    """Coordinators get the whole ward; a leader only the groups he leads."""
    app = d.app
    groups = [g.id for g in await app.services.places.groups(viewer.ward_id)
              if viewer.may_see_group(g.id)]
    locale = app.config.bot.locale

    def label(key: str, **context: Any) -> str:
        return app.texts.label(key, locale, **context)

    book = await app.services.reports.progress_workbook(viewer.ward_id, label, groups)
    log.info("dashboard: member %s downloaded the workbook", viewer.identity.member_id)
    return web.Response(body=book.data, headers={
        "Content-Type": book.content_type,
        "Content-Disposition": f'attachment; filename="{book.filename}"',
        "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff",
    })


async def _group(d: Frame, request: web.Request, viewer: Viewer) -> GroupInfo | None:
    return await d.app.services.places.group_by_code(viewer.ward_id, request.match_info["code"])


def channels(d: Frame, code: str) -> list[Channel]:
    result = []
    for name, platform in sorted(d.app.platforms.items()):
        if name == "console":
            continue
        link = platform.invite_link(code)
        result.append(Channel(name, link, qr_svg(link) if link.startswith("https://") else None))
    return result


async def poster(d: Frame, request: web.Request, viewer: Viewer) -> web.StreamResponse:
    group = await _group(d, request, viewer)
    if group is None:
        return d.not_found(viewer)
    if not viewer.may_see_group(group.id):
        return d.forbidden(viewer, f"poster of group {group.id}")
    ward = await d.app.services.places.ward(viewer.ward_id)
    invite = await data.resident_invite(d.app.db, group.id, d.app.clock.now())
    return d.page(
        "poster", viewer, nav="overview", group=group, ward=ward, invite=invite,
        channels=channels(d, invite.code) if invite else [],
    )


async def new_poster(d: Frame, request: web.Request, viewer: Viewer) -> web.StreamResponse:
    """Make a fresh resident invite for the group (as `/moi cudan TDP05` would)."""
    group = await _group(d, request, viewer)
    if group is None:
        return d.not_found(viewer)
    if not viewer.may_see_group(group.id):
        return d.forbidden(viewer, f"poster of group {group.id}")
    try:
        await d.app.services.invites.create(
            viewer.identity, role=Role.RESIDENT, ward_id=viewer.ward_id, group_id=group.id,
            days=POSTER_DAYS,
        )
    except ServiceError:
        return d.forbidden(viewer, f"invite for group {group.id}")
    return d.redirect(f"/dashboard/group/{group.code}/poster")
