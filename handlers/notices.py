"""`/thongbao`: a notice to group chats, seen first exactly as residents will see it.

`/thongbao <text>` (or `/thongbao`, then the text, a photo or a document) → the preview →
the targets (a leader: his groups; a coordinator: the ward or chosen groups) → "Gửi ngay"
or "Hẹn giờ" → queued in the outbox. The author gets a delivery report when it is done.
`/thongbao` also lists my scheduled notices with a cancel button each.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from bot import topics as guide_posts
from bot.core import Attachment
from bot.keyboards import page_rows
from bot.payloads import Payload
from bot.roles import Role
from bot.router import OWN_WARD, Ctx, Router
from bot.services.errors import ServiceError
from bot.services.guides import PostTarget
from bot.services.notices import delivery_key
from bot.services.selection import natural_key
from bot.when import parse_when
from handlers.targets import group_picker, picker_context, sending_ward, toggle, typed_groups

FLOW = "notice"


@dataclass(frozen=True)
class NoticePress(Payload, prefix="nt"):
    """`g` toggle group `value`, `all` every group, `pg` page `value` of the picker, `p` pin,
    `now`, `later`, `stop`; `x` cancel scheduled notice `value`, `xp` its list's page."""

    action: Literal["g", "all", "pg", "p", "now", "later", "stop", "x", "xp"]
    value: int = 0


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
    if await notices.scheduled(ctx.identity, ward_id):
        await _scheduled(ctx, ward_id, 1)
    await ctx.start_form(FLOW, "text", data)
    await ctx.say("notices/ask_text")


async def _scheduled(ctx: Ctx, ward_id: int, page: int) -> None:
    """My scheduled notices, a cancel button each, paged."""
    scheduled = await ctx.app.services.notices.scheduled(ctx.identity, ward_id)
    paged = page_rows(
        [ctx.button("notices.cancel_one", NoticePress("x", n.id), id=n.id) for n in scheduled],
        page, nav=lambda n: NoticePress("xp", n), label=ctx.label,
        buttons=ctx.platform.capabilities.buttons,
    )
    shown = scheduled[paged.start: paged.start + paged.shown]
    await ctx.update("notices/scheduled", notices=shown, buttons=paged.rows,
                     page=paged.page, pages=paged.pages)


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
        allowed = await ctx.app.services.notices.allowed(ctx.identity, int(data["ward_id"]))
        chosen = await typed_groups(ctx, allowed)
        if chosen is None:
            await ctx.say("notices/press_a_button")
        elif chosen:
            data["groups"], data["page"] = chosen, 1
            await ctx.start_form(FLOW, "targets", data)
            await _choices(ctx, data, fresh=True)


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


async def _choices(ctx: Ctx, data: dict[str, Any], *, fresh: bool = False) -> None:
    """The targets and buttons under the preview; a press redraws them in place."""
    ward_id = int(data["ward_id"])
    allowed = await ctx.app.services.notices.allowed(ctx.identity, ward_id)
    chosen = [int(g) for g in data.get("groups", [])]
    tail = [[ctx.button("notices.pin", NoticePress("p"), on=bool(data.get("pin")))],
            [ctx.button("notices.now", NoticePress("now")),
             ctx.button("notices.later", NoticePress("later"))],
            [ctx.button("notices.abort", NoticePress("stop"))]]
    paged = group_picker(ctx, lambda action, value: NoticePress(action, value), allowed,
                         chosen, page=int(data.get("page", 1)), tail=tail,
                         whole_ward=ctx.identity.role_in_ward(ward_id) >= Role.COORDINATOR)
    render = ctx.say if fresh else ctx.update
    await render("notices/choices", pin=bool(data.get("pin")), buttons=paged.rows,
                 **picker_context(allowed, chosen, paged))


async def pressed(ctx: Ctx) -> None:
    """A press under the preview, or on the list of scheduled notices (`NoticePress`)."""
    await ctx.answer_button()
    press = ctx.press(NoticePress)
    action = press.action
    if action == "x":
        try:
            view = await ctx.app.services.notices.cancel(ctx.identity, press.value)
        except ServiceError as exc:
            await ctx.say(f"notices/error_{exc.reason}", **exc.details)
            return
        await ctx.update("notices/cancelled", notice=view)
        return
    if action == "xp" and ctx.identity.ward_id is not None:
        await _scheduled(ctx, ctx.identity.ward_id, press.value)
        return
    form = ctx.form
    if form is None or form.flow != FLOW or form.step not in ("targets", "when"):
        await ctx.say("core/form_expired")
        return
    data = dict(form.data)
    ward_id = int(data["ward_id"])
    if action in ("g", "all", "pg"):
        allowed = [g.id for g in await ctx.app.services.notices.allowed(ctx.identity, ward_id)]
        if action == "pg":
            data["page"] = press.value
        else:
            data["groups"] = toggle(data.get("groups", []), action, press.value, allowed)
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
    except ServiceError as exc:
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
    codes = sorted({t.group_code for t in created.targets}, key=natural_key)
    allowed = await ctx.app.services.notices.allowed(ctx.identity, int(data["ward_id"]))
    await ctx.say("notices/queued", created=created, codes=codes, quiet_until=quiet_until,
                  later=send_at is not None, total_groups=len(allowed))
    ctx.app.services.outbox.wake()  # now: the delivery report must come after this answer


def register(router: Router) -> None:
    router.command("thongbao", notice, aliases=("notice",), role=Role.LEADER, where="private",
                   scope=OWN_WARD)
    router.button(NoticePress, pressed, role=Role.LEADER, scope=OWN_WARD)
    router.form(FLOW, typed)
