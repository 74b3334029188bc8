"""Downloads: the progress workbook (as `/xuat` sends it) and a printable A4 poster per
group with a resident invite's QR code and a short "how to join"."""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import segno
from aiohttp import web
from markupsafe import Markup

from bot.core import Role
from bot.services import dashboard as data
from bot.services.invites import InviteError
from bot.services.places import GroupInfo
from bot.services.reports import progress_xlsx

if TYPE_CHECKING:
    from bot.web.dashboard.routes import Dashboard, Viewer

log = logging.getLogger(__name__)

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
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
    buffer = io.BytesIO()
    segno.make(link, error="m").save(
        buffer, kind="svg", scale=8, border=2, xmldecl=False, svgns=True, nl=False,
        svgclass="qr", omitsize=True,
    )
    return Markup(buffer.getvalue().decode())


async def xlsx(d: Dashboard, request: web.Request, viewer: Viewer) -> web.StreamResponse:
    """Coordinators get the whole ward; a leader only the groups he leads."""
    app = d.app
    groups = [g for g in await app.services.places.groups(viewer.ward_id)
              if viewer.may_see_group(g.id)]
    codes = {g.code for g in groups}
    progress = await app.services.progress.ward(viewer.ward_id, [g.id for g in groups])
    rows = [r for r in await app.services.registry.household_rows(viewer.ward_id)
            if r["group"] in codes]
    locale = app.config.bot.locale

    def label(key: str, **context: Any) -> str:
        return app.texts.label(key, locale, **context)

    body = progress_xlsx(progress, rows, label, app.config.bot.tz)
    ward = await app.services.places.ward(viewer.ward_id)
    day = app.clock.now().astimezone(app.config.bot.tz).strftime("%Y-%m-%d")
    name = f"tien-do-{ward.code if ward else 'phuong'}-{day}.xlsx"
    log.info("dashboard: member %s downloaded the workbook", viewer.identity.member_id)
    return web.Response(body=body, headers={
        "Content-Type": XLSX, "Content-Disposition": f'attachment; filename="{name}"',
        "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff",
    })


async def _group(d: Dashboard, request: web.Request, viewer: Viewer) -> GroupInfo | None:
    return await d.app.services.places.group_by_code(viewer.ward_id, request.match_info["code"])


def channels(d: Dashboard, code: str) -> list[Channel]:
    result = []
    for name, platform in sorted(d.app.platforms.items()):
        if name == "console":
            continue
        link = platform.invite_link(code)
        result.append(Channel(name, link, qr_svg(link) if link.startswith("https://") else None))
    return result


async def poster(d: Dashboard, request: web.Request, viewer: Viewer) -> web.StreamResponse:
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


async def new_poster(d: Dashboard, request: web.Request, viewer: Viewer) -> web.StreamResponse:
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
    except InviteError:
        return d.forbidden(viewer, f"invite for group {group.id}")
    return d.redirect(f"/dashboard/group/{group.code}/poster")
