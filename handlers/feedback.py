"""Feedback, as residents and staff talk about it.

Residents: `/gopy` (a short form: kind of problem → what happened, photos welcome → where →
stay anonymous?), `/gopy <text>` in one line, "Hỏi cán bộ phường" from the guides,
`/theodoi [PA-12]`, `/xoadulieu`. Staff: `/phananh [filters | thang MM/YYYY]`, the ticket's
buttons, `/xuly PA-12 tiepnhan|dangxuly|traloi|daxong|tuchoi [message]`. The reporter is
told at every change; overdue tickets are nudged by `nudge_overdue`.
"""

from __future__ import annotations

import logging
from datetime import datetime

from bot.config import FEEDBACK_CATEGORIES
from bot.context import AppContext
from bot.core import Button, Outgoing, Role, is_number
from bot.jobs.feedback_followup import fixed_buttons
from bot.router import Ctx, Router
from bot.services.feedback import (
    Changed,
    FeedbackError,
    Filters,
    TicketView,
    parse_ticket,
)
from bot.services.privacy import mask_national_ids

log = logging.getLogger(__name__)

FORM, QUESTION, MESSAGE = "feedback", "question", "fbmsg"
CATEGORY_WORDS = {
    "hatang": "infrastructure", "dien": "infrastructure", "duong": "infrastructure",
    "vesinh": "environment", "moitruong": "environment", "anninh": "security",
    "thutuc": "procedures", "congnghe": "digital_support", "cds": "digital_support",
    "khac": "other",
}
STATE_WORDS = {"moi": "new", "tiepnhan": "acknowledged", "dangxuly": "in_progress",
               "daxong": "resolved", "tuchoi": "rejected"}
ACTION_WORDS = {"tiepnhan": "acknowledge", "dangxuly": "start", "traloi": "reply",
                "daxong": "resolve", "tuchoi": "reject"}


# --- residents ------------------------------------------------------------------------------
async def feedback(ctx: Ctx) -> None:
    if ctx.args:
        await _file(ctx, text=ctx.incoming.args_text, category="other")
        return
    await ctx.start_form(FORM, "category", {})
    buttons = [[ctx.button(f"feedback.category.{c}", f"fbc:{c}")] for c in FEEDBACK_CATEGORIES]
    await ctx.say("feedback/ask_category", buttons=buttons)


async def form_button(ctx: Ctx) -> None:
    """`fbc:<category>`, `fbs:skip` (no place), `fbn:1|0` (anonymous or not)."""
    await ctx.answer_button()
    form = ctx.form
    if form is None or form.flow != FORM:
        await ctx.say("core/form_expired")
        return
    prefix, value = (ctx.incoming.payload or ":").split(":", 1)
    data = dict(form.data)
    if prefix == "fbc" and value in FEEDBACK_CATEGORIES:
        data["category"] = value
        await ctx.start_form(FORM, "text", data)
        await ctx.update("feedback/ask_text", category=value)
    elif prefix == "fbs":
        await _ask_anonymous(ctx, data)
    elif prefix == "fbn":
        await ctx.end_form()
        await _file(
            ctx, text=str(data.get("text", "")), category=str(data.get("category", "other")),
            location=str(data.get("location", "")), photos=list(data.get("photos", [])),
            anonymous=value == "1",
        )


async def form_text(ctx: Ctx) -> None:
    """Typed steps of the form: what happened (with photos), then where."""
    form = ctx.form
    assert form is not None
    data = dict(form.data)
    photos = list(data.get("photos", []))
    photos += [
        {"platform": ctx.platform.name, "file_id": a.file_id}
        for a in ctx.incoming.attachments if a.kind == "photo"
    ]
    data["photos"] = photos[:3]
    text = ctx.incoming.text.strip()
    if form.step == "text":
        if not text and photos:
            await ctx.start_form(FORM, "text", data)
            await ctx.say("feedback/photo_saved")
            return
        if not text:
            await ctx.say("feedback/error_empty")
            return
        data["text"] = mask_national_ids(text)  # held in the form until filed: never an ID
        await ctx.start_form(FORM, "location", data)
        await ctx.say("feedback/ask_location", buttons=[[ctx.button("feedback.skip", "fbs:skip")]])
    elif form.step == "location":
        if text:
            data["location"] = text
        await _ask_anonymous(ctx, data)
    else:
        await ctx.say("feedback/press_a_button")


async def _ask_anonymous(ctx: Ctx, data: dict[str, object]) -> None:
    await ctx.start_form(FORM, "anonymous", data)
    buttons = [[ctx.button("feedback.named", "fbn:0")], [ctx.button("feedback.anonymous", "fbn:1")]]
    await ctx.say("feedback/ask_anonymous", buttons=buttons)


async def ask_ward(ctx: Ctx) -> None:
    """"Hỏi cán bộ phường": send the unanswered question, or ask for it first."""
    await ctx.answer_button()
    topic = (ctx.incoming.payload or "").split(":")[2:3]
    form = ctx.form
    question = str(form.data.get("question", "")) if form and form.flow == "faq" else ""
    if question:
        await ctx.end_form()
        await _file(ctx, text=question, category="digital_support", kind="question",
                    topic=topic[0] if topic else "")
        return
    await ctx.start_form(QUESTION, "text", {"topic": topic[0] if topic else ""})
    await ctx.say("feedback/ask_question")


async def question_text(ctx: Ctx) -> None:
    form = ctx.form
    assert form is not None
    await ctx.end_form()
    await _file(ctx, text=ctx.incoming.text, category="digital_support", kind="question",
                topic=str(form.data.get("topic", "")))


async def _file(
    ctx: Ctx, *, text: str, category: str, kind: str = "report", location: str = "",
    photos: list[dict[str, str]] | None = None, anonymous: bool = False, topic: str = "",
) -> None:
    try:
        filed = await ctx.app.services.feedback.submit(
            ctx.identity, text=text, category=category, kind=kind, location=location,
            photos=photos, anonymous=anonymous, topic_key=topic,
        )
    except FeedbackError as exc:
        await ctx.say(f"feedback/error_{exc.reason}", **exc.details)
        return
    await ctx.say("feedback/filed", t=filed.ticket, merged=filed.merged)


async def track(ctx: Ctx) -> None:
    service = ctx.app.services.feedback
    if ctx.args:
        number = parse_ticket(ctx.args[0])
        try:
            ticket = await service.for_reporter(ctx.identity, number or 0)
        except FeedbackError:
            await ctx.say("feedback/error_not_found", number=ctx.args[0])
            return
        buttons: list[list[Button]] = []
        if ticket.may_reopen:  # resolved recently: the reporter may still say "not fixed"
            buttons = fixed_buttons(ctx.app, ticket.number)
            if ticket.fixed_answer == "fixed":
                buttons = [buttons[0][1:]]
        await ctx.say("feedback/ticket_mine", buttons=buttons, t=ticket)
        return
    await ctx.say("feedback/mine", tickets=await service.mine(ctx.identity))


async def forget_me(ctx: Ctx) -> None:
    buttons = [[ctx.button("feedback.forget_yes", "fbd:yes")],
               [ctx.button("feedback.forget_no", "fbd:no")]]
    await ctx.say("feedback/forget_confirm", buttons=buttons)


async def forget_button(ctx: Ctx) -> None:
    await ctx.answer_button()
    if ctx.incoming.payload != "fbd:yes":
        await ctx.update("feedback/forget_cancelled")
        return
    kept = await ctx.app.services.feedback.forget(ctx.identity)
    await ctx.update("feedback/forgotten", kept=kept)


# --- staff ------------------------------------------------------------------------------------
async def reports(ctx: Ctx) -> None:
    """`/phananh [TDP01] [hatang] [quahan] [moi|tiepnhan|…]` or `/phananh thang 11/2026`."""
    words = [w.lower() for w in ctx.args]
    if words and words[0] == "thang":
        await _summary(ctx, words[1] if len(words) > 1 else "")
        return
    filters = Filters(
        group=next((w.upper() for w in words if w.upper().startswith(("TDP", "TO", "THON"))), ""),
        category=next((CATEGORY_WORDS[w] for w in words if w in CATEGORY_WORDS), ""),
        state=next((STATE_WORDS[w] for w in words if w in STATE_WORDS), ""),
        overdue="quahan" in words,
    )
    await _list(ctx, filters, 1)


async def _list(ctx: Ctx, filters: Filters, page: int) -> None:
    result = await ctx.app.services.feedback.list_for_staff(ctx.identity, filters, page)
    buttons = [[ctx.button("feedback.open_ticket", f"fbv:{t.number}", number=t.number)]
               for t in result.items]
    if result.page < result.pages:
        code = f"{filters.group}:{filters.category}:{filters.state}:{int(filters.overdue)}"
        buttons.append([ctx.button("feedback.more", f"fbl:{result.page + 1}:{code}")])
    await ctx.say("feedback/staff_list", page=result, filters=filters, buttons=buttons)


async def list_button(ctx: Ctx) -> None:
    await ctx.answer_button()
    parts = (ctx.incoming.payload or "").split(":")
    if len(parts) != 6 or not is_number(parts[1]):
        await ctx.answer_button("core.stale_button")
        return
    filters = Filters(group=parts[2], category=parts[3], state=parts[4], overdue=parts[5] == "1")
    await _list(ctx, filters, int(parts[1]))


def _staff_buttons(ctx: Ctx, t: TicketView) -> list[list[Button]]:
    if t.state in ("resolved", "rejected"):
        return []
    n = t.number
    rows = [[ctx.button("feedback.act.acknowledge", f"fbx:{n}:acknowledge"),
             ctx.button("feedback.act.start", f"fbx:{n}:start")],
            [ctx.button("feedback.act.assign", f"fbx:{n}:assign"),
             ctx.button("feedback.act.reply", f"fbx:{n}:reply")],
            [ctx.button("feedback.act.resolve", f"fbx:{n}:resolve"),
             ctx.button("feedback.act.reject", f"fbx:{n}:reject")]]
    if t.state not in ("new", "reopened"):
        rows[0] = rows[0][1:] if t.state == "acknowledged" else []
    return [r for r in rows if r]


async def _show_staff(ctx: Ctx, number: int, *, edit: bool = False) -> None:
    try:
        ticket = await ctx.app.services.feedback.for_staff(ctx.identity, number)
    except FeedbackError as exc:
        await _staff_error(ctx, exc, number)
        return
    render = ctx.update if edit else ctx.say
    await render("feedback/ticket_staff", buttons=_staff_buttons(ctx, ticket), t=ticket)


async def view_button(ctx: Ctx) -> None:
    await ctx.answer_button()
    number = parse_ticket((ctx.incoming.payload or "").split(":", 1)[1])
    await _show_staff(ctx, number or 0)


async def act_button(ctx: Ctx) -> None:
    """`fbx:<n>:<action>`: acknowledge/start at once; reply/resolve/reject ask for a text."""
    await ctx.answer_button()
    _, raw, action = ((ctx.incoming.payload or "") + "::").split(":")[:3]
    number = parse_ticket(raw) or 0
    if action == "assign":
        try:
            people = await ctx.app.services.feedback.staff_of(ctx.identity, number)
        except FeedbackError as exc:
            await _staff_error(ctx, exc, number)
            return
        buttons = [[Button(p.name, f"fba:{number}:{p.member_id}")] for p in people]
        await ctx.say("feedback/ask_assignee", buttons=buttons, number=number)
    elif action in ("reply", "resolve", "reject"):
        try:
            await ctx.app.services.feedback.for_staff(ctx.identity, number)
        except FeedbackError as exc:
            await _staff_error(ctx, exc, number)
            return
        await ctx.start_form(MESSAGE, "message", {"number": number, "action": action})
        await ctx.say("feedback/ask_message", action=action, number=number)
    else:
        await _act(ctx, number, action, "")


async def assign_button(ctx: Ctx) -> None:
    await ctx.answer_button()
    parts = (ctx.incoming.payload or "").split(":")
    if len(parts) != 3 or not is_number(parts[1]) or not is_number(parts[2]):
        await ctx.answer_button("core.stale_button")
        return
    try:
        changed = await ctx.app.services.feedback.assign(ctx.identity, int(parts[1]),
                                                         int(parts[2]))
    except FeedbackError as exc:
        await _staff_error(ctx, exc, int(parts[1]))
        return
    if changed.reporter is not None:
        await ctx.notify(changed.reporter.platform, changed.reporter.user_id,
                         ctx.t("feedback/notify_assignee", t=changed.ticket))
    if changed.also_tell is not None:  # a new ticket is acknowledged by being assigned
        await ctx.notify(changed.also_tell.platform, changed.also_tell.user_id,
                         ctx.t("feedback/notify_reporter", t=changed.ticket,
                               action="acknowledge", message=""))
    await ctx.say("feedback/assigned", t=changed.ticket)


async def message_text(ctx: Ctx) -> None:
    form = ctx.form
    assert form is not None
    await ctx.end_form()
    await _act(ctx, int(form.data["number"]), str(form.data["action"]), ctx.incoming.text)


async def handle(ctx: Ctx) -> None:
    """`/xuly PA-12 daxong Đã thay bóng đèn` in one line."""
    number = parse_ticket(ctx.args[0]) if ctx.args else None
    action = ACTION_WORDS.get(ctx.args[1].lower()) if len(ctx.args) > 1 else None
    if number is None or action is None:
        await ctx.say("feedback/handle_usage")
        return
    await _act(ctx, number, action, " ".join(ctx.args[2:]))


async def _act(ctx: Ctx, number: int, action: str, message: str) -> None:
    try:
        changed = await ctx.app.services.feedback.act(ctx.identity, number, action, message)
    except FeedbackError as exc:
        await _staff_error(ctx, exc, number)
        return
    await _tell_reporter(ctx, changed)
    await ctx.say("feedback/acted", t=changed.ticket, action=action,
                  told=changed.reporter is not None)


async def _staff_error(ctx: Ctx, exc: FeedbackError, number: int) -> None:
    """Staff asking for a ticket that is not theirs to see get a staff-worded answer."""
    reason = "not_found_staff" if exc.reason == "not_found" else exc.reason
    await ctx.say(f"feedback/error_{reason}", **{"number": number, **exc.details})


async def _tell_reporter(ctx: Ctx, changed: Changed) -> None:
    if changed.reporter is None:
        return
    text = ctx.t("feedback/notify_reporter", t=changed.ticket, action=changed.action,
                 message=changed.message)
    await ctx.notify(changed.reporter.platform, changed.reporter.user_id, text)


async def _summary(ctx: Ctx, month_text: str) -> None:
    tz = ctx.app.config.bot.tz
    now = ctx.app.clock.now().astimezone(tz)
    month, year = now.month, now.year
    if month_text:
        try:
            parsed = datetime.strptime(month_text, "%m/%Y")  # noqa: DTZ007 - only month/year used
        except ValueError:
            await ctx.say("feedback/summary_usage")
            return
        month, year = parsed.month, parsed.year
    start = datetime(year, month, 1, tzinfo=tz)
    end = datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=tz)
    summary = await ctx.app.services.feedback.summary(ctx.identity, start, end)
    await ctx.say("feedback/summary", s=summary, month=month, year=year)


# --- the scheduler's job ------------------------------------------------------------------------
async def nudge_overdue(app: AppContext, router: Router) -> int:
    """Tell whoever holds each overdue ticket (or the ward's staff); returns nudges sent."""
    sent = 0
    for nudge in await app.services.feedback.overdue_nudges():
        text = app.texts.render("feedback/nudge", app.config.bot.locale, t=nudge.ticket)
        for person in nudge.recipients:
            platform = router.platforms.get(person.platform)
            if platform is None:
                continue
            try:
                await platform.send(person.user_id, Outgoing(text=text))
                sent += 1
            except Exception:
                log.warning("nudge for PA-%s not delivered", nudge.ticket.number, exc_info=True)
    return sent


def register(router: Router) -> None:
    router.command("gopy", feedback, aliases=("feedback",), where="private")
    router.command("theodoi", track, aliases=("track",), where="private")
    router.command("phananh", reports, aliases=("reports",), role=Role.LEADER, where="private")
    router.command("xuly", handle, aliases=("handle",), role=Role.LEADER, where="private")
    router.command("xoadulieu", forget_me, aliases=("deletemydata",), where="private")
    for prefix in ("fbc", "fbs", "fbn"):
        router.button(prefix, form_button)
    router.button("fb", ask_ward)
    router.button("fbd", forget_button)
    router.button("fbl", list_button, role=Role.LEADER)
    router.button("fbv", view_button, role=Role.LEADER)
    router.button("fbx", act_button, role=Role.LEADER)
    router.button("fba", assign_button, role=Role.LEADER)
    router.form(FORM, form_text)
    router.form(QUESTION, question_text)
    router.form(MESSAGE, message_text)
