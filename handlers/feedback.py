"""Feedback, as residents and staff talk about it.

Residents: `/gopy` (a short form: kind of problem → what happened, photos welcome → where →
stay anonymous?), `/gopy <text>` in one line, "Hỏi cán bộ phường" from the guides,
`/theodoi [PA-12]`, `/xoadulieu`. Staff: `/phananh [filters | thang MM/YYYY]`, the ticket's
buttons, `/xuly PA-12 tiepnhan|dangxuly|traloi|daxong|tuchoi [message]`. The reporter is
told at every change; overdue tickets are nudged by `bot/jobs/feedback.py`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from bot.config import FEEDBACK_CATEGORIES
from bot.core import Button
from bot.jobs.feedback_followup import fixed_buttons
from bot.keyboards import page_rows
from bot.payloads import Payload
from bot.roles import Role
from bot.router import OWN_WARD, Ctx, Router
from bot.services.errors import ServiceError
from bot.services.feedback import Changed, Filters, TicketView, parse_ticket
from bot.services.privacy import mask_national_ids

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


Action = Literal["acknowledge", "start", "assign", "reply", "resolve", "reject"]


# --- what the buttons carry ---------------------------------------------------------------------
@dataclass(frozen=True)
class PickCategory(Payload, prefix="fbc"):
    category: str


@dataclass(frozen=True)
class SkipPlace(Payload, prefix="fbs"):
    what: Literal["skip"] = "skip"


@dataclass(frozen=True)
class PickAnonymous(Payload, prefix="fbn"):
    anonymous: bool


@dataclass(frozen=True)
class AskWard(Payload, prefix="fb"):
    """"Hỏi cán bộ phường" under a guide (`topic`) or after no guide matched; `report`: "📬 Gửi
    phản ánh này" after the understanding step read a message as a problem report."""

    what: Literal["ask", "report"] = "ask"
    topic: str = ""


@dataclass(frozen=True)
class Forget(Payload, prefix="fbd"):
    answer: Literal["yes", "no"]


@dataclass(frozen=True)
class ListPage(Payload, prefix="fbl"):
    """Page `page` of `/phananh` with its filters."""

    page: int
    group: str = ""
    category: str = ""
    state: str = ""
    overdue: bool = False


@dataclass(frozen=True)
class ViewTicket(Payload, prefix="fbv"):
    number: int


@dataclass(frozen=True)
class ActOn(Payload, prefix="fbx"):
    """A staff action on ticket `number`; `assign` shows page `page` of the people (0: the
    first, in a new message; ◀ ▶ then edit it)."""

    number: int
    action: Action
    page: int = 0


@dataclass(frozen=True)
class AssignTo(Payload, prefix="fba"):
    number: int
    member: int


# --- residents ------------------------------------------------------------------------------
async def feedback(ctx: Ctx) -> None:
    if ctx.args:
        await _file(ctx, text=ctx.incoming.args_text, category="other")
        return
    await ctx.start_form(FORM, "category", {})
    buttons = [[ctx.button(f"feedback.category.{c}", PickCategory(c))]
               for c in FEEDBACK_CATEGORIES]
    await ctx.say("feedback/ask_category", buttons=buttons)


async def form_button(ctx: Ctx) -> None:
    """A category (`PickCategory`), no place (`SkipPlace`), anonymous or not (`PickAnonymous`)."""
    await ctx.answer_button()
    form = ctx.form
    if form is None or form.flow != FORM:
        await ctx.say("core/form_expired")
        return
    press = ctx.pressed
    data = dict(form.data)
    if isinstance(press, PickCategory) and press.category in FEEDBACK_CATEGORIES:
        data["category"] = press.category
        if data.get("text"):  # filed from a message the resident already typed: ask where
            await ctx.start_form(FORM, "location", data)
            await ctx.say("feedback/ask_location",
                          buttons=[[ctx.button("feedback.skip", SkipPlace())]])
            return
        await ctx.start_form(FORM, "text", data)
        await ctx.update("feedback/ask_text", category=press.category)
    elif isinstance(press, SkipPlace):
        await _ask_anonymous(ctx, data)
    elif isinstance(press, PickAnonymous):
        await ctx.end_form()
        await _file(
            ctx, text=str(data.get("text", "")), category=str(data.get("category", "other")),
            location=str(data.get("location", "")), photos=list(data.get("photos", [])),
            anonymous=press.anonymous,
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
        await ctx.say("feedback/ask_location", buttons=[[ctx.button("feedback.skip", SkipPlace())]])
    elif form.step == "location":
        if text:
            data["location"] = text
        await _ask_anonymous(ctx, data)
    else:
        await ctx.say("feedback/press_a_button")


async def _ask_anonymous(ctx: Ctx, data: dict[str, object]) -> None:
    await ctx.start_form(FORM, "anonymous", data)
    buttons = [[ctx.button("feedback.named", PickAnonymous(False))],
               [ctx.button("feedback.anonymous", PickAnonymous(True))]]
    await ctx.say("feedback/ask_anonymous", buttons=buttons)


async def ask_ward(ctx: Ctx) -> None:
    """"Hỏi cán bộ phường": send the unanswered question, or ask for it first."""
    await ctx.answer_button()
    press = ctx.press(AskWard)
    if press.what == "report":
        await _report_from_question(ctx)
        return
    topic = press.topic
    form = ctx.form
    question = str(form.data.get("question", "")) if form and form.flow == "faq" else ""
    if question:
        await ctx.end_form()
        await _file(ctx, text=question, category="digital_support", kind="question",
                    topic=topic)
        return
    await ctx.start_form(QUESTION, "text", {"topic": topic})
    await ctx.say("feedback/ask_question")


async def _report_from_question(ctx: Ctx) -> None:
    """"📬 Gửi phản ánh này": the message the resident typed becomes the report; they confirm
    the guessed category (first button), then say where, then named or anonymous."""
    form = ctx.form
    data = dict(form.data) if form and form.flow == "faq" else {}
    text = str(data.get("question", ""))
    if not text:
        await ctx.say("core/form_expired")
        return
    guess = str(data.get("report", "other"))
    guess = guess if guess in FEEDBACK_CATEGORIES else "other"
    await ctx.start_form(FORM, "category", {"text": text})
    label = ctx.label(f"feedback.category.{guess}")
    buttons = [[ctx.button("understanding.guessed", PickCategory(guess), label=label)]]
    buttons += [[ctx.button(f"feedback.category.{c}", PickCategory(c))]
                for c in FEEDBACK_CATEGORIES if c != guess]
    await ctx.say("feedback/confirm_category", buttons=buttons, text=text, guess=label)


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
    except ServiceError as exc:
        await ctx.say(f"feedback/error_{exc.reason}", **exc.details)
        return
    await ctx.say("feedback/filed", t=filed.ticket, merged=filed.merged)


async def track(ctx: Ctx) -> None:
    service = ctx.app.services.feedback
    if ctx.args:
        number = parse_ticket(ctx.args[0])
        try:
            ticket = await service.for_reporter(ctx.identity, number or 0)
        except ServiceError:
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
    buttons = [[ctx.button("feedback.forget_yes", Forget("yes"))],
               [ctx.button("feedback.forget_no", Forget("no"))]]
    await ctx.say("feedback/forget_confirm", buttons=buttons)


async def forget_button(ctx: Ctx) -> None:
    await ctx.answer_button()
    if ctx.press(Forget).answer != "yes":
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
    buttons = [[ctx.button("feedback.open_ticket", ViewTicket(t.number), number=t.number)]
               for t in result.items]
    if result.page < result.pages:
        more = ListPage(result.page + 1, filters.group[:12], filters.category, filters.state,
                        filters.overdue)
        buttons.append([ctx.button("feedback.more", more)])
    await ctx.say("feedback/staff_list", page=result, filters=filters, buttons=buttons)


async def list_button(ctx: Ctx) -> None:
    await ctx.answer_button()
    press = ctx.press(ListPage)
    filters = Filters(group=press.group, category=press.category, state=press.state,
                      overdue=press.overdue)
    await _list(ctx, filters, press.page)


def _staff_buttons(ctx: Ctx, t: TicketView) -> list[list[Button]]:
    if t.state in ("resolved", "rejected"):
        return []
    n = t.number
    rows = [[ctx.button("feedback.act.acknowledge", ActOn(n, "acknowledge")),
             ctx.button("feedback.act.start", ActOn(n, "start"))],
            [ctx.button("feedback.act.assign", ActOn(n, "assign")),
             ctx.button("feedback.act.reply", ActOn(n, "reply"))],
            [ctx.button("feedback.act.resolve", ActOn(n, "resolve")),
             ctx.button("feedback.act.reject", ActOn(n, "reject"))]]
    if t.state not in ("new", "reopened"):
        rows[0] = rows[0][1:] if t.state == "acknowledged" else []
    return [r for r in rows if r]


async def _show_staff(ctx: Ctx, number: int, *, edit: bool = False) -> None:
    try:
        ticket = await ctx.app.services.feedback.for_staff(ctx.identity, number)
    except ServiceError as exc:
        await _staff_error(ctx, exc, number)
        return
    render = ctx.update if edit else ctx.say
    await render("feedback/ticket_staff", buttons=_staff_buttons(ctx, ticket), t=ticket)


async def view_button(ctx: Ctx) -> None:
    await ctx.answer_button()
    await _show_staff(ctx, ctx.press(ViewTicket).number)


async def act_button(ctx: Ctx) -> None:
    """`ActOn`: acknowledge/start at once; reply/resolve/reject ask for a text; assign shows
    the people it can go to, a page at a time."""
    await ctx.answer_button()
    press = ctx.press(ActOn)
    number, action = press.number, press.action
    if action == "assign":
        try:
            people = await ctx.app.services.feedback.staff_of(ctx.identity, number)
        except ServiceError as exc:
            await _staff_error(ctx, exc, number)
            return
        paged = page_rows([Button(p.name, AssignTo(number, p.member_id).pack()) for p in people],
                          max(press.page, 1), nav=lambda n: ActOn(number, "assign", n),
                          label=ctx.label, buttons=ctx.platform.capabilities.buttons,
                          columns=2)
        render = ctx.update if press.page else ctx.say
        await render("feedback/ask_assignee", buttons=paged.rows, number=number)
    elif action in ("reply", "resolve", "reject"):
        try:
            await ctx.app.services.feedback.for_staff(ctx.identity, number)
        except ServiceError as exc:
            await _staff_error(ctx, exc, number)
            return
        await ctx.start_form(MESSAGE, "message", {"number": number, "action": action})
        await ctx.say("feedback/ask_message", action=action, number=number)
    else:
        await _act(ctx, number, action, "")


async def assign_button(ctx: Ctx) -> None:
    await ctx.answer_button()
    press = ctx.press(AssignTo)
    try:
        changed = await ctx.app.services.feedback.assign(ctx.identity, press.number,
                                                         press.member)
    except ServiceError as exc:
        await _staff_error(ctx, exc, press.number)
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
    except ServiceError as exc:
        await _staff_error(ctx, exc, number)
        return
    await _tell_reporter(ctx, changed)
    await ctx.say("feedback/acted", t=changed.ticket, action=action,
                  told=changed.reporter is not None)


async def _staff_error(ctx: Ctx, exc: ServiceError, number: int) -> None:
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


def register(router: Router) -> None:
    router.command("gopy", feedback, aliases=("feedback",), where="private")
    router.command("theodoi", track, aliases=("track",), where="private")
    router.command("phananh", reports, aliases=("reports",), role=Role.LEADER, where="private")
    router.command("xuly", handle, aliases=("handle",), role=Role.LEADER, where="private")
    router.command("xoadulieu", forget_me, aliases=("deletemydata",), where="private")
    for kind in (PickCategory, SkipPlace, PickAnonymous):
        router.button(kind, form_button)
    router.button(AskWard, ask_ward)
    router.button(Forget, forget_button)
    # Whose ticket it is (its group, or the ward for coordinators) the service checks on
    # every action, with an answer that names the ticket.
    router.button(ListPage, list_button, role=Role.LEADER, scope=OWN_WARD)
    router.button(ViewTicket, view_button, role=Role.LEADER, scope=OWN_WARD)
    router.button(ActOn, act_button, role=Role.LEADER, scope=OWN_WARD)
    router.button(AssignTo, assign_button, role=Role.LEADER, scope=OWN_WARD)
    router.form(FORM, form_text)
    router.form(QUESTION, question_text)
    router.form(MESSAGE, message_text)
