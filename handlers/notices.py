"""`/thongbao`: a notice to group chats, seen first exactly as residents will see it.

`/thongbao <text>` (or `/thongbao`, then the text, a photo or a document) → the preview →
the targets (a leader: his groups; a coordinator: the ward or chosen groups) → "Gửi ngay"
or "Hẹn giờ" → queued in the outbox. The author gets a delivery report when it is done.
`/thongbao` also lists my scheduled notices with a cancel button each.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from bot.context import AppContext
from bot.core import Attachment, Outgoing, Role, is_number
from bot.router import Ctx, Router
from bot.services.guides import PostTarget
from bot.services.notices import NoticeError, delivery_key
from bot.when import parse_when
from handlers import guide_posts
from handlers.targets import group_buttons, sending_ward, toggle

log = logging.getLogger(__name__)

FLOW = "notice"


async def notice(ctx: Ctx) -> None:
    ward_id = await sending_ward(ctx)
    if ward_id is None:
        return
    notices = ctx.app.services.notices
    data: dict[str, Any] = {"ward_id": ward_id, "pin": False}
    if ctx.args:
        data["text"] = ctx.incoming.args_text
        await _preview(ctx, data)
        return
    scheduled = await notices.scheduled(ctx.identity, ward_id)
    if scheduled:
        buttons = [[ctx.button("notices.cancel_one", f"nt:x:{n.id}", id=n.id)] for n in scheduled]
        await ctx.say("notices/scheduled", notices=scheduled, buttons=buttons)
    await ctx.start_form(FLOW, "text", data)
    await ctx.say("notices/ask_text")


async def typed(ctx: Ctx) -> None:
    form = ctx.form
    assert form is not None
    data = dict(form.data)
    if form.step == "text":
        attachment = next(iter(ctx.incoming.attachments), None)
        text = ctx.incoming.text.strip()
        if not text and attachment is None:
            await ctx.say("notices/error_empty")
            return
        data["text"] = text
        if attachment is not None:
            data["attachment"] = {"kind": attachment.kind, "file_id": attachment.file_id,
                                  "filename": attachment.filename,
                                  "platform": ctx.platform.name}
        await _preview(ctx, data)
    elif form.step == "when":
        when = parse_when(ctx.incoming.text, ctx.app.clock.now(), ctx.app.config.bot.tz)
        if when is None:
            await ctx.say("notices/bad_time")
            return
        if when <= ctx.app.clock.now():
            await ctx.say("notices/error_past")
            return
        data["send_at"] = when.isoformat()
        await _send(ctx, data)
    else:
        await ctx.say("notices/press_a_button")


async def open_with(ctx: Ctx, data: dict[str, Any]) -> None:
    """Start the notice flow at the preview with a body chosen elsewhere (a guide: its
    `data["guide"]` is a `GuideBody`'s data, `data["text"]` its title)."""
    await _preview(ctx, data)


def _render(ctx: Ctx, data: dict[str, Any]) -> str:
    if data.get("guide"):
        return _guide_post(ctx, data, ctx.platform.name, None)[0]
    return ctx.t("notices/notice", text=str(data.get("text", "")), author=ctx.identity.name)


def _guide_post(
    ctx: Ctx, data: dict[str, Any], platform: str, group_id: int | None
) -> tuple[str, guide_posts.Rows]:
    body = guide_posts.GuideBody.from_data(data["guide"])
    return guide_posts.post(ctx.app, body, platform, group_id, ctx.locale,
                            author=ctx.identity.name)


async def _preview(ctx: Ctx, data: dict[str, Any]) -> None:
    """Show the notice as residents will get it, then the choices under it."""
    ward_id = int(data["ward_id"])
    allowed = await ctx.app.services.notices.allowed(ctx.identity, ward_id)
    if "groups" not in data:
        mine = ctx.identity.role_in_ward(ward_id) < Role.COORDINATOR
        data["groups"] = [g.id for g in allowed] if mine else []
    rendered = _render(ctx, data)
    if len(rendered) > ctx.platform.capabilities.max_text * 3:
        await ctx.say("notices/error_too_long", limit=ctx.platform.capabilities.max_text * 3)
        return
    await ctx.start_form(FLOW, "targets", data)
    attachment = data.get("attachment")
    await ctx.say("notices/preview_header")
    outgoing_attachment = None
    if attachment and attachment.get("platform") == ctx.platform.name:
        outgoing_attachment = Attachment(kind=attachment["kind"], file_id=attachment["file_id"],
                                         filename=attachment.get("filename", ""))
    if outgoing_attachment is not None:
        await ctx.reply(rendered, attachment=outgoing_attachment)
    elif data.get("guide"):  # with its "📝 Xem từng bước" link, as residents will see it
        await ctx.reply(*_guide_post(ctx, data, ctx.platform.name, None))
    else:
        await ctx.reply(rendered)
    await _choices(ctx, data)


async def _choices(ctx: Ctx, data: dict[str, Any]) -> None:
    """The targets and buttons under the preview; a press redraws them in place."""
    ward_id = int(data["ward_id"])
    allowed = await ctx.app.services.notices.allowed(ctx.identity, ward_id)
    chosen = [int(g) for g in data.get("groups", [])]
    rows = group_buttons(ctx, "nt", allowed, chosen,
                         whole_ward=ctx.identity.role_in_ward(ward_id) >= Role.COORDINATOR)
    rows.append([ctx.button("notices.pin", "nt:p", on=bool(data.get("pin")))])
    rows.append([ctx.button("notices.now", "nt:now"), ctx.button("notices.later", "nt:later")])
    rows.append([ctx.button("notices.abort", "nt:stop")])
    codes = [g.code for g in allowed if g.id in set(chosen)]
    await ctx.update("notices/choices", codes=codes, pin=bool(data.get("pin")), buttons=rows)


async def pressed(ctx: Ctx) -> None:
    """`nt:g:<id|all>` toggle a target, `nt:p` pin, `nt:now`, `nt:later`, `nt:stop`,
    `nt:x:<id>` cancel a scheduled notice."""
    await ctx.answer_button()
    parts = (ctx.incoming.payload or "").split(":")
    if len(parts) == 3 and parts[1] == "x" and is_number(parts[2]):
        try:
            view = await ctx.app.services.notices.cancel(ctx.identity, int(parts[2]))
        except NoticeError as exc:
            await ctx.say(f"notices/error_{exc.reason}", **exc.details)
            return
        await ctx.update("notices/cancelled", notice=view)
        return
    form = ctx.form
    if form is None or form.flow != FLOW or form.step not in ("targets", "when"):
        await ctx.say("core/form_expired")
        return
    data = dict(form.data)
    action = parts[1] if len(parts) > 1 else ""
    ward_id = int(data["ward_id"])
    if action == "g" and len(parts) == 3:
        allowed = [g.id for g in await ctx.app.services.notices.allowed(ctx.identity, ward_id)]
        data["groups"] = toggle(data.get("groups", []), parts[2], allowed)
        await ctx.start_form(FLOW, "targets", data)
        await _choices(ctx, data)
    elif action == "p":
        data["pin"] = not data.get("pin")
        await ctx.start_form(FLOW, "targets", data)
        await _choices(ctx, data)
    elif action == "now":
        data.pop("send_at", None)
        await _send(ctx, data)
    elif action == "later":
        if not data.get("groups"):
            await ctx.say("notices/error_no_targets")
            return
        await ctx.start_form(FLOW, "when", data)
        await ctx.say("notices/ask_time")
    elif action == "stop":
        await ctx.end_form()
        await ctx.update("notices/aborted")


async def _send(ctx: Ctx, data: dict[str, Any]) -> None:
    send_at = datetime.fromisoformat(str(data["send_at"])) if data.get("send_at") else None
    try:
        created = await ctx.app.services.notices.create(
            ctx.identity, int(data["ward_id"]), raw_text=str(data.get("text", "")),
            rendered=_render(ctx, data), group_ids=[int(g) for g in data.get("groups", [])],
            send_at=send_at, pin=bool(data.get("pin")), attachment=data.get("attachment"),
            wake=False,
            compose=(lambda t: _guide_post(ctx, data, t.platform, t.group_id))
            if data.get("guide") else None,
        )
    except NoticeError as exc:
        await ctx.say(f"notices/error_{exc.reason}", **exc.details)
        return
    if data.get("guide"):  # counted per group: posts sent, and the reads they bring
        await ctx.app.services.guides.record_posts(
            int(data["ward_id"]), str(data["guide"]["key"]), "share", created.notice_id,
            [PostTarget(t.group_id, t.platform, t.chat_id,
                        delivery_key(created.notice_id, t.platform, t.chat_id))
             for t in created.targets])
    await ctx.end_form()
    quiet_until = ctx.app.services.outbox.quiet_until(created.send_at)
    codes = sorted({t.group_code for t in created.targets})
    await ctx.say("notices/queued", created=created, codes=codes, quiet_until=quiet_until,
                  later=send_at is not None)
    ctx.app.services.outbox.wake()  # now: the delivery report must come after this answer


async def report(app: AppContext, notice_id: int) -> None:
    """The outbox finished a notice: tell its author how it went, once."""
    finished = await app.services.notices.finish(notice_id)
    if finished is None:
        return
    view, lines = finished
    author = await app.services.access.identity_of(view.author_member_id)
    if author is None:
        return
    platform = app.platforms.get(author.platform)
    if platform is None:
        return
    text = app.texts.render("notices/report", author.locale or app.config.bot.locale,
                            notice=view, lines=lines,
                            sent=sum(1 for line in lines if line.state == "sent"))
    try:
        await platform.send(author.user_id, Outgoing(text=text))
    except Exception:
        log.warning("delivery report for notice %s not delivered", notice_id, exc_info=True)


def register(router: Router) -> None:
    router.command("thongbao", notice, aliases=("notice",), role=Role.LEADER, where="private")
    router.button("nt", pressed, role=Role.LEADER)
    router.form(FLOW, typed)
