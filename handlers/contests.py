"""The knowledge contest as people meet it.

Residents: `/cuocthi` lists the contests open in their ward; "▶️ Tham gia" starts an attempt:
one question at a time (A-D buttons on Telegram, numbered choices on Zalo), each answer
followed by the right one, a one-line explanation and the guide button; the score at the end.
Coordinators: "➕ Tạo cuộc thi" (name → question bank, or an XLSX sent now → period → groups
→ confirm), results and an Excel file per contest, ending one early. The group chats get the
announcement, a mid-contest standing and the final result (see `bot/jobs/contests.py`).
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any

from bot.core import Attachment, Button, Role, is_number
from bot.router import Ctx, Router
from bot.services.contests import (
    LETTERS,
    ContestError,
    ContestInfo,
    Question,
    read_bank_file,
    results_xlsx,
)
from bot.services.places import pick_groups
from bot.when import parse_period

FORM = "contest"
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


# --- everyone ---------------------------------------------------------------------------------
async def menu(ctx: Ctx) -> None:
    services = ctx.app.services
    wards = set(ctx.identity.ward_ids())
    household = await services.households.household_of(ctx.identity)
    if household is not None:
        wards.add(household.household.ward_id)
    open_now = await services.contests.open_for(wards)
    buttons = [[ctx.button("contests.play", f"ct:p:{c.id}", title=c.title[:40])]
               for c in open_now]
    ward_id = ctx.identity.ward_id
    managed: list[ContestInfo] = []
    if ward_id is not None and ctx.identity.role_in_ward(ward_id) >= Role.COORDINATOR:
        managed = (await services.contests.in_ward(ward_id))[:5]
        buttons.append([ctx.button("contests.new", "ct:new")])
        for c in managed:
            row = [ctx.button("contests.results", f"ct:s:{c.id}", number=c.id),
                   ctx.button("contests.excel", f"ct:x:{c.id}", number=c.id)]
            if c.state == "active" and c.ends_at > ctx.app.clock.now():
                row.append(ctx.button("contests.end", f"ct:e:{c.id}", number=c.id))
            buttons.append(row)
    await ctx.say("contests/menu", buttons=buttons, open=open_now, managed=managed,
                  now=ctx.app.clock.now())


async def pressed(ctx: Ctx) -> None:
    """`ct:p:<id>` play, `ct:a:<play>:<n>:<choice>` answer, `ct:s|x|e:<id>` results, Excel,
    end; `ct:new`, `ct:b:<bank>`, `ct:g:all`, `ct:ok`, `ct:no` steps of the creation form."""
    parts = (ctx.incoming.payload or "").split(":")
    action = parts[1] if len(parts) > 1 else ""
    numbers = [int(p) for p in parts[2:] if is_number(p)]
    if action == "p" and len(numbers) == 1:
        await ctx.answer_button()
        await _play(ctx, numbers[0])
    elif action == "a" and len(numbers) == 3:
        await ctx.answer_button()
        await _answer(ctx, *numbers)
    elif action in ("s", "x", "e") and len(numbers) == 1:
        await ctx.answer_button()
        await _manage(ctx, action, numbers[0])
    elif action in ("new", "b", "g", "ok", "no"):
        await ctx.answer_button()
        await _form_button(ctx, action, parts[2] if len(parts) > 2 else "")
    else:
        await ctx.answer_button("core.stale_button")


async def _play(ctx: Ctx, contest_id: int) -> None:
    try:
        shown = await ctx.app.services.contests.start(ctx.identity, contest_id)
    except ContestError as exc:
        await ctx.say(f"contests/error_{exc.reason}", **exc.details)
        return
    await _ask(ctx, shown)


async def _ask(ctx: Ctx, shown: Any) -> None:
    payload = f"ct:a:{shown.play_id}:{shown.index}"
    if ctx.platform.capabilities.buttons:  # the options in the text, A-D on one row
        buttons = [[Button(LETTERS[i], f"{payload}:{i}") for i in range(len(shown.options))]]
        await ctx.say("contests/question", buttons=buttons, q=shown, letters=LETTERS,
                      listed=True)
    else:  # Zalo: the options themselves become the numbered choices
        buttons = [[Button(option, f"{payload}:{i}")] for i, option in enumerate(shown.options)]
        await ctx.say("contests/question", buttons=buttons, q=shown, letters=LETTERS,
                      listed=False)


async def _answer(ctx: Ctx, play_id: int, index: int, choice: int) -> None:
    try:
        result = await ctx.app.services.contests.answer(ctx.identity, play_id, index, choice)
    except ContestError as exc:
        await ctx.say(f"contests/error_{exc.reason}", **exc.details)
        return
    guides = ctx.app.services.explanations.library.topics
    buttons = [[ctx.button("contests.guide", f"faq:t:{result.guide}")]] \
        if result.guide in guides else []
    await ctx.update("contests/answered", buttons=buttons, r=result)
    if result.next is not None:
        await _ask(ctx, result.next)
    else:
        await ctx.say("contests/finished", r=result)


# --- coordinators --------------------------------------------------------------------------------
async def _manage(ctx: Ctx, action: str, contest_id: int) -> None:
    services = ctx.app.services
    info = await services.contests.get(contest_id)
    if info is None or ctx.identity.role_in_ward(info.ward_id) < Role.COORDINATOR:
        await ctx.say("contests/error_not_found", number=contest_id)
        return
    if action == "e":
        info = await services.contests.end(ctx.identity, contest_id)
        await ctx.say("contests/ended", c=info)
        return
    standings = await services.contests.standings(contest_id)
    if action == "s":
        await ctx.say("contests/standing", s=standings, final=False)
        return
    if not ctx.platform.capabilities.documents:
        await ctx.say("contests/no_documents")
        return
    players = await services.contests.players_table(contest_id)
    data = results_xlsx(standings, players, ctx.label, ctx.app.config.bot.tz)
    await ctx.reply(ctx.t("contests/excel_caption", c=info),
                    attachment=Attachment(kind="document", filename=f"cuoc-thi-{info.id}.xlsx",
                                          data=data, mime_type=XLSX_TYPE))


async def _form_button(ctx: Ctx, action: str, value: str) -> None:
    ward_id = ctx.identity.ward_id
    if ward_id is None or ctx.identity.role_in_ward(ward_id) < Role.COORDINATOR:
        await ctx.say("core/denied", needed=Role.COORDINATOR.value,
                      role=ctx.identity.role.value)
        return
    if action == "new":
        await ctx.start_form(FORM, "title", {"ward_id": ward_id})
        await ctx.say("contests/ask_title")
        return
    form = ctx.form
    if form is None or form.flow != FORM:
        await ctx.say("core/form_expired")
        return
    data = dict(form.data)
    if action == "b" and form.step == "bank" and value in ctx.app.services.contests.banks:
        data["bank"] = value
        await _ask_period(ctx, data)
    elif action == "g" and form.step == "groups":
        data["groups"] = []
        await _confirm(ctx, data)
    elif action == "ok" and form.step == "confirm":
        await _create(ctx, data)
    elif action == "no":
        await ctx.end_form()
        await ctx.update("contests/cancelled")
    else:
        await ctx.say("contests/press_a_button")


async def form_text(ctx: Ctx) -> None:
    """Typed steps: the name, an XLSX question bank, the period, the groups."""
    form = ctx.form
    assert form is not None
    data = dict(form.data)
    text = ctx.incoming.text.strip()
    if form.step == "title":
        if not text or len(text) > 200:
            await ctx.say("contests/bad_title")
            return
        data["title"] = text
        await ctx.start_form(FORM, "bank", data)
        banks = ctx.app.services.contests.banks
        buttons = [[ctx.button("contests.bank", f"ct:b:{key}", title=b.title,
                               count=len(b.questions))] for key, b in banks.items()]
        await ctx.say("contests/ask_bank", buttons=buttons)
    elif form.step == "bank":
        documents = [a for a in ctx.incoming.attachments if a.kind == "document"]
        if not documents:
            await ctx.say("contests/press_a_button")
            return
        raw = await ctx.platform.download(documents[0])
        try:
            questions = read_bank_file(raw, documents[0].filename)
        except ContestError as exc:
            await ctx.say(f"contests/error_{exc.reason}", **exc.details)
            return
        data["questions"] = [q.as_row() for q in questions]
        await ctx.say("contests/bank_read", count=len(questions))
        await _ask_period(ctx, data)
    elif form.step == "period":
        today = ctx.app.clock.now().astimezone(ctx.app.config.bot.tz).date()
        period = parse_period(text, today)
        if period is None:
            await ctx.say("contests/bad_period")
            return
        data["starts_on"], data["ends_on"] = period[0].isoformat(), period[1].isoformat()
        await ctx.start_form(FORM, "groups", data)
        await ctx.say("contests/ask_groups",
                      buttons=[[ctx.button("contests.all_groups", "ct:g:all")]])
    elif form.step == "groups":
        groups = await ctx.app.services.places.groups(int(data["ward_id"]))
        ids, unknown = pick_groups(text, groups)
        if unknown or not ids:
            await ctx.say("contests/bad_groups", unknown=unknown)
            return
        data["groups"] = ids
        await _confirm(ctx, data)
    else:
        await ctx.say("contests/press_a_button")


async def _ask_period(ctx: Ctx, data: dict[str, Any]) -> None:
    await ctx.start_form(FORM, "period", data)
    await ctx.say("contests/ask_period")


def _moments(ctx: Ctx, data: dict[str, Any]) -> tuple[datetime, datetime]:
    """From the first day (now if it is today) to the end of the last day, local time."""
    tz = ctx.app.config.bot.tz
    start = datetime.combine(datetime.fromisoformat(data["starts_on"]).date(), time(0), tz)
    end = datetime.combine(datetime.fromisoformat(data["ends_on"]).date(), time(0), tz)
    return max(start, ctx.app.clock.now()), end + timedelta(days=1)


def _questions(ctx: Ctx, data: dict[str, Any]) -> list[Question]:
    if "questions" in data:
        return [Question.from_row(q) for q in data["questions"]]
    bank = ctx.app.services.contests.banks.get(str(data.get("bank", "")))
    return list(bank.questions) if bank else []


async def _confirm(ctx: Ctx, data: dict[str, Any]) -> None:
    await ctx.start_form(FORM, "confirm", data)
    groups = {g.id: g.code for g in await ctx.app.services.places.groups(int(data["ward_id"]))}
    starts_at, ends_at = _moments(ctx, data)
    buttons = [[ctx.button("contests.create", "ct:ok"), ctx.button("contests.cancel", "ct:no")]]
    await ctx.say("contests/confirm", buttons=buttons, title=data["title"],
                  questions=len(_questions(ctx, data)),
                  per_player=ctx.app.config.contest.questions_per_player,
                  starts_at=starts_at, last_day=ends_at - timedelta(seconds=1),
                  groups=[groups[g] for g in data.get("groups", []) if g in groups])


async def _create(ctx: Ctx, data: dict[str, Any]) -> None:
    starts_at, ends_at = _moments(ctx, data)
    try:
        info = await ctx.app.services.contests.create(
            ctx.identity, int(data["ward_id"]), title=str(data["title"]),
            questions=_questions(ctx, data), starts_at=starts_at, ends_at=ends_at,
            group_ids=[int(g) for g in data.get("groups", [])],
        )
    except ContestError as exc:
        await ctx.say(f"contests/error_{exc.reason}", **exc.details)
        return
    await ctx.end_form()
    await ctx.update("contests/created", c=info)


def register(router: Router) -> None:
    router.command("cuocthi", menu, aliases=("contest",), role=Role.RESIDENT, where="private")
    router.button("ct", pressed, role=Role.RESIDENT)
    router.form(FORM, form_text)
