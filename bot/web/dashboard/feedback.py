"""The feedback queue on the web: filter, open a ticket with its history, and act on it
(acknowledge, start, reply, resolve, reject) exactly as in chat, the reporter told in chat."""

from __future__ import annotations

import logging
import secrets
from datetime import datetime, timedelta

from aiohttp import web

from bot.config import FEEDBACK_CATEGORIES
from bot.core import is_number
from bot.delivery.outbox import NewDelivery
from bot.services.errors import ServiceError
from bot.services.feedback import (
    FINAL_STATES,
    OPEN_STATES,
    TRANSITIONS,
    Changed,
    Filters,
    TicketView,
)
from bot.web.dashboard.frame import Frame, Viewer

log = logging.getLogger(__name__)

ACTIONS = ("acknowledge", "start", "reply", "resolve", "reject")
STATES = OPEN_STATES + FINAL_STATES


def _page_number(text: str) -> int:
    return int(text) if is_number(text) and 0 < int(text) < 10_000 else 1


async def queue(d: Frame, request: web.Request, viewer: Viewer) -> web.StreamResponse:
    q = request.query
    group_code = q.get("nhom", "").strip().upper()
    if group_code:
        group = await d.app.services.places.group_by_code(viewer.ward_id, group_code)
        if group is None or not viewer.may_see_group(group.id):
            return d.forbidden(viewer, "feedback filter by group")
    filters = Filters(
        group=group_code,
        category=q.get("loai", "") if q.get("loai", "") in FEEDBACK_CATEGORIES else "",
        state=q.get("trangthai", "") if q.get("trangthai", "") in STATES else "",
        overdue=q.get("quahan", "") == "1",
    )
    page = await d.app.services.feedback.list_for_staff(
        viewer.identity, filters, _page_number(q.get("trang", ""))
    )
    groups = [g for g in await d.app.services.places.groups(viewer.ward_id)
              if viewer.may_see_group(g.id)]
    tz = d.app.config.bot.tz
    today = d.app.clock.now().astimezone(tz)
    month_start = datetime(today.year, today.month, 1, tzinfo=tz)
    # The figure ward reports quote: received, handled, and what reporters said afterwards.
    summary = await d.app.services.feedback.summary(viewer.identity, month_start,
                                                    today + timedelta(seconds=1))
    return d.page(
        "feedback", viewer, nav="feedback", page=page, filters=filters, groups=groups,
        categories=FEEDBACK_CATEGORIES, states=STATES, summary=summary, month=today,
    )


def _allowed_actions(ticket: TicketView) -> list[str]:
    return [a for a in ACTIONS if ticket.state in TRANSITIONS[a][0]]


async def _ticket_page(
    d: Frame, viewer: Viewer, number: int, *, status: int = 200, error: str = "",
    done: str = "", told: bool = False, message: str = "",
) -> web.StreamResponse:
    try:
        ticket = await d.app.services.feedback.for_staff(viewer.identity, number)
    except ServiceError as exc:
        if exc.reason == "not_found":
            return d.not_found(viewer)
        return d.forbidden(viewer, f"ticket PA-{number}")
    return d.page(
        "ticket", viewer, status=status, nav="feedback", t=ticket,
        actions=_allowed_actions(ticket), error=error, done=done, told=told, message=message,
    )


async def ticket(d: Frame, request: web.Request, viewer: Viewer) -> web.StreamResponse:
    done = request.query.get("xong", "")
    return await _ticket_page(
        d, viewer, int(request.match_info["number"]),
        done=done if done in ACTIONS else "", told=request.query.get("bao") == "1",
    )


async def act(d: Frame, request: web.Request, viewer: Viewer) -> web.StreamResponse:
    number = int(request.match_info["number"])
    form = await request.post()
    action, message = str(form.get("action", "")), str(form.get("message", ""))
    try:
        changed = await d.app.services.feedback.act(viewer.identity, number, action, message)
    except ServiceError as exc:
        if exc.reason == "not_found":
            return d.not_found(viewer)
        if exc.reason == "not_yours":
            return d.forbidden(viewer, f"action on ticket PA-{number}")
        return await _ticket_page(d, viewer, number, status=400, error=exc.reason,
                                  message=message)
    told = await tell_reporter(d, changed)
    log.info("dashboard: member %s did %s on PA-%s", viewer.identity.member_id, action, number)
    return d.redirect(f"/dashboard/feedback/{number}?xong={action}&bao={int(told)}")


async def tell_reporter(d: Frame, changed: Changed) -> bool:
    """The same chat message `/xuly` sends, queued in the outbox (kept across a restart,
    paced, retried); False when the ticket has nobody to tell (anonymous)."""
    reporter = changed.reporter
    if reporter is None:
        return False
    text = d.app.texts.render(
        "feedback/notify_reporter", d.app.config.bot.locale, t=changed.ticket,
        action=changed.action, message=changed.message,
    )
    number = changed.ticket.number
    await d.app.services.outbox.enqueue([NewDelivery(
        kind="feedback_update", ref_id=number, platform=reporter.platform,
        chat_id=reporter.user_id, text=text, is_group=False, priority=3,
        # One row per change: a web form posts once, so nothing is left to deduplicate.
        dedupe=f"fbweb:{number}:{changed.action}:{secrets.token_hex(8)}",
    )])
    return True
