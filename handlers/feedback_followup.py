"""The reporter closes the loop: "is it fixed?" answered with ✅ Đã xong (then an optional
1-5 satisfaction tap) or ❌ Chưa xong, which reopens the ticket, tells whoever handles it, and
invites the reporter to say what is still wrong. Also offered under a resolved ticket in
`/theodoi PA-12` while it may still be reopened."""

from __future__ import annotations

from bot.core import Button, is_number
from bot.router import Ctx, Router
from bot.services.feedback import FeedbackError, parse_ticket

NOTE = "fbreopen"  # the form that takes the reporter's words after "Chưa xong"


def _parse(payload: str | None) -> tuple[int, str] | None:
    """`fbq:<n>:y|n` and `fbr:<n>:<1-5>` → (ticket number, answer)."""
    parts = (payload or "").split(":")
    if len(parts) != 3 or not is_number(parts[1]):
        return None
    return int(parts[1]), parts[2]


async def answered(ctx: Ctx) -> None:
    """A press of ✅ Đã xong or ❌ Chưa xong."""
    parsed = _parse(ctx.incoming.payload)
    if parsed is None or parsed[1] not in ("y", "n"):
        await ctx.answer_button("core.stale_button")
        return
    await ctx.answer_button()
    number, answer = parsed
    service = ctx.app.services.feedback
    try:
        if answer == "y":
            ticket = await service.confirm_fixed(ctx.identity, number)
            stars = [[Button(ctx.label("feedback.stars", n=n), f"fbr:{number}:{n}")
                      for n in range(1, 6)]]
            await ctx.update("feedback/fixed_thanks", buttons=stars, t=ticket)
            return
        reopened = await service.reopen(ctx.identity, number)
    except FeedbackError as exc:
        await ctx.say(f"feedback/error_{exc.reason}", **{"number": number, **exc.details})
        return
    for person in reopened.tell:
        await ctx.notify(person.platform, person.user_id,
                         ctx.t("feedback/reopened_staff", t=reopened.ticket),
                         buttons=[[ctx.button("feedback.open_ticket", f"fbv:{number}",
                                              number=number)]])
    await ctx.start_form(NOTE, "text", {"number": number})
    await ctx.update("feedback/reopened", t=reopened.ticket, told=len(reopened.tell))


async def rated(ctx: Ctx) -> None:
    """A satisfaction tap, 1 to 5."""
    parsed = _parse(ctx.incoming.payload)
    if parsed is None or not is_number(parsed[1]):
        await ctx.answer_button("core.stale_button")
        return
    await ctx.answer_button()
    number, score = parsed[0], int(parsed[1])
    try:
        await ctx.app.services.feedback.rate(ctx.identity, number, score)
    except FeedbackError as exc:
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
    except FeedbackError as exc:
        await ctx.say(f"feedback/error_{exc.reason}", **{"number": number, **exc.details})
        return
    for person in noted.tell:
        await ctx.notify(person.platform, person.user_id,
                         ctx.t("feedback/reporter_note_staff", t=noted.ticket, message=text),
                         buttons=[[ctx.button("feedback.open_ticket", f"fbv:{number}",
                                              number=number)]])
    await ctx.say("feedback/reporter_note_saved", t=noted.ticket)


def register(router: Router) -> None:
    router.button("fbq", answered)
    router.button("fbr", rated)
    router.form(NOTE, note_text)
