"""The reporter closes the loop: "is it fixed?" answered with ✅ Đã xong (then an optional
1-5 satisfaction tap) or ❌ Chưa xong, which reopens the ticket, tells whoever handles it, and
invites the reporter to say what is still wrong. Also offered under a resolved ticket in
`/theodoi PA-12` while it may still be reopened."""

from __future__ import annotations

from bot.core import Button
from bot.jobs.feedback_followup import FixedAnswer, Rating
from bot.router import Ctx, Router
from bot.services.errors import ServiceError
from bot.services.feedback import parse_ticket
from handlers.feedback import ViewTicket

NOTE = "fbreopen"  # the form that takes the reporter's words after "Chưa xong"


async def answered(ctx: Ctx) -> None:
    """A press of ✅ Đã xong or ❌ Chưa xong."""
    press = ctx.press(FixedAnswer)
    await ctx.answer_button()
    number, answer = press.number, press.answer
    service = ctx.app.services.feedback
    try:
        if answer == "y":
            ticket = await service.confirm_fixed(ctx.identity, number)
            stars = [[Button(ctx.label("feedback.stars", n=n), Rating(number, n).pack())
                      for n in range(1, 6)]]
            await ctx.update("feedback/fixed_thanks", buttons=stars, t=ticket)
            return
        reopened = await service.reopen(ctx.identity, number)
    except ServiceError as exc:
        await ctx.say(f"feedback/error_{exc.reason}", **{"number": number, **exc.details})
        return
    for person in reopened.tell:
        await ctx.notify(person.platform, person.user_id,
                         ctx.t("feedback/reopened_staff", t=reopened.ticket),
                         buttons=[[ctx.button("feedback.open_ticket", ViewTicket(number),
                                              number=number)]])
    await ctx.start_form(NOTE, "text", {"number": number})
    await ctx.update("feedback/reopened", t=reopened.ticket, told=len(reopened.tell))


async def rated(ctx: Ctx) -> None:
    """A satisfaction tap, 1 to 5."""
    press = ctx.press(Rating)
    await ctx.answer_button()
    number, score = press.number, press.score
    try:
        await ctx.app.services.feedback.rate(ctx.identity, number, score)
    except ServiceError as exc:
        await ctx.say(f"feedback/error_{exc.reason}", **{"number": number, **exc.details})
        return
    await ctx.update("feedback/rated", score=score)


async def note_text(ctx: Ctx) -> None:
    """What is still wrong, in the reporter's words: kept on the ticket, passed to staff."""
    form = ctx.form
    assert form is not None
    await ctx.end_form()
    number = parse_ticket(str(form.data.get("number", ""))) or 0
    text = ctx.incoming.text.strip()
    if not text:
        await ctx.say("feedback/error_empty")
        return
    try:
        noted = await ctx.app.services.feedback.add_reporter_note(ctx.identity, number, text)
    except ServiceError as exc:
        await ctx.say(f"feedback/error_{exc.reason}", **{"number": number, **exc.details})
        return
    for person in noted.tell:
        await ctx.notify(person.platform, person.user_id,
                         ctx.t("feedback/reporter_note_staff", t=noted.ticket, message=text),
                         buttons=[[ctx.button("feedback.open_ticket", ViewTicket(number),
                                              number=number)]])
    await ctx.say("feedback/reporter_note_saved", t=noted.ticket)


def register(router: Router) -> None:
    router.button(FixedAnswer, answered)
    router.button(Rating, rated)
    router.form(NOTE, note_text)
