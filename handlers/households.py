"""Households, door to door: `/ghi` for helpers, `/ho` to look one up, `/cuaho` for residents,
and the ward's list sent as a file by a coordinator.

`/ghi TDP01-012 vneid epayment` ticks steps in one line (`vneid=2` for two adults, `-vneid`
to untick, `| note` at the end); `/ghi TDP01-012` shows the checklist as buttons; `/ghi`
alone asks for the household. Every answer says what changed and offers one-button undo.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

from bot.core import Attachment, Button, is_number
from bot.faq import FaqPress
from bot.jobs.personal_reminders import DidIt
from bot.keyboards import page_rows
from bot.payloads import Payload
from bot.roles import Role
from bot.router import OWN_WARD, Ctx, Router, own_group
from bot.services.errors import ServiceError
from bot.services.households import Checklist, HouseholdInfo, Marked, may_log
from bot.services.tables import read_table
from handlers.staff import no_ward

log = logging.getLogger(__name__)

FIND, LINK = "hhfind", "hhlink"
IMPORT_SUFFIXES = (".csv", ".xlsx", ".txt")
IMPORT = "import"
MAX_FOUND = 200  # households a search lists (a page at a time); beyond, type more letters
FOUND_PAGE = 20


@dataclass(frozen=True)
class HouseholdPress(Payload, prefix="hh"):
    """On household `household`: `o` open its checklist, `t` tick step `key`, `p` / `m` one
    adult more / less, `c` / `r` confirm / reject a resident's report of step `key`."""

    action: Literal["o", "t", "p", "m", "c", "r"]
    household: int
    key: str = ""


@dataclass(frozen=True)
class Undo(Payload, prefix="hhu"):
    batch: str


@dataclass(frozen=True)
class FoundPage(Payload, prefix="hhf"):
    """Page `page` of the households a search found (the search is kept in the form)."""

    page: int


@dataclass(frozen=True)
class ImportPress(Payload, prefix="hi"):
    """Under a household file that names groups the ward does not have yet: `ok` creates
    them and imports the file, `no` stops. `ward`: the ward the file is for (the file itself
    is kept in the form)."""

    answer: Literal["ok", "no"]
    ward: int


async def household_place(ctx: Ctx) -> tuple[int, int | None] | None:
    """Where the pressed household lives: the router checks the helper's group against it."""
    found = await ctx.app.services.households.by_id(ctx.press(HouseholdPress).household)
    return None if found is None else (found.ward_id, found.group_id)


async def import_place(ctx: Ctx) -> tuple[int, int | None] | None:
    """The ward a file is imported into: the router checks the coordinator's role there."""
    ward = await ctx.app.services.places.ward(ctx.press(ImportPress).ward)
    return None if ward is None else (ward.id, None)


# --- helpers: /ghi and /ho -------------------------------------------------------------------
async def _ward_or_ask(ctx: Ctx) -> int | None:
    """The ward to search in, when the command names a household; otherwise ask for one
    (or say there is no ward) and return None."""
    ward_id = ctx.identity.ward_id
    if ward_id is None:
        await no_ward(ctx, "households/no_ward")
        return None
    if not ctx.args:
        await ctx.start_form(FIND, "query", {"ward_id": ward_id})
        await ctx.say("households/ask_household")
        return None
    return ward_id


async def log_steps(ctx: Ctx) -> None:
    ward_id = await _ward_or_ask(ctx)
    if ward_id is None:
        return
    household = await _household(ctx, ward_id, ctx.args[0])
    if household is None:
        return
    words, _, note = " ".join(ctx.args[1:]).partition("|")
    if not words.strip():
        await _show(ctx, household)
        return
    targets = await _parse_steps(ctx, words.split())
    if targets is None:
        return
    await _mark(ctx, household, targets, note=note.strip())


async def look_up(ctx: Ctx) -> None:
    ward_id = await _ward_or_ask(ctx)
    if ward_id is None:
        return
    await _find(ctx, ward_id, ctx.incoming.args_text)


async def find_typed(ctx: Ctx) -> None:
    """The answer to "which household?": a code, or letters of a name or address."""
    form = ctx.form
    assert form is not None
    text = ctx.incoming.text.strip()
    if not text:
        await ctx.say("households/ask_household")
        return
    await ctx.end_form()
    await _find(ctx, int(form.data["ward_id"]), text)


def _scope(ctx: Ctx, ward_id: int) -> set[int] | None:
    """The groups this person logs for; None means the whole ward."""
    if ctx.identity.role_in_ward(ward_id) >= Role.COORDINATOR:
        return None
    return {g.group_id for g in ctx.identity.groups_with(Role.HELPER)
            if g.ward_id == ward_id and g.group_id is not None}


async def _find(ctx: Ctx, ward_id: int, text: str) -> None:
    households = ctx.app.services.households
    exact = await households.by_code(ward_id, text.split()[0]) if len(text.split()) == 1 else None
    if exact is not None:
        if may_log(ctx.identity, ward_id, exact.group_id):
            await _show(ctx, exact)
        else:
            await ctx.say("households/not_your_group", code=exact.code, group=exact.group_code)
        return
    found = await households.search(ward_id, text, _scope(ctx, ward_id), limit=MAX_FOUND)
    if not found:
        close = await households.close_codes(ward_id, text, _scope(ctx, ward_id))
        await ctx.say("households/not_found", query=text, close=close)
        return
    if len(found) == 1:
        await _show(ctx, found[0])
        return
    if await _found_page(ctx, found, text, 1) > 1:
        # ◀ ▶ need the search kept; typing more letters meanwhile narrows it.
        await ctx.start_form(FIND, "found", {"ward_id": ward_id, "query": text})


async def _found_page(ctx: Ctx, found: list[HouseholdInfo], query: str, page: int) -> int:
    """Show one page of what a search found; returns how many pages there are."""
    buttons = [ctx.button("households.pick", HouseholdPress("o", h.id), code=h.code,
                          name=h.head_name) for h in found]
    paged = page_rows(buttons, page, nav=FoundPage, label=ctx.label,
                      buttons=ctx.platform.capabilities.buttons, per_page=FOUND_PAGE)
    await ctx.update("households/found", households=found[paged.start: paged.start + paged.shown],
                     total=len(found), more=len(found) >= MAX_FOUND, query=query,
                     page=paged.page, pages=paged.pages, buttons=paged.rows)
    return paged.pages


async def found_page(ctx: Ctx) -> None:
    """◀ ▶ through the households a search found."""
    await ctx.answer_button()
    form = ctx.form
    if form is None or form.flow != FIND or "query" not in form.data:
        await ctx.say("core/form_expired")
        return
    ward_id, query = int(form.data["ward_id"]), str(form.data["query"])
    found = await ctx.app.services.households.search(ward_id, query, _scope(ctx, ward_id),
                                                     limit=MAX_FOUND)
    await _found_page(ctx, found, query, ctx.press(FoundPage).page)


async def _household(ctx: Ctx, ward_id: int, code: str) -> HouseholdInfo | None:
    households = ctx.app.services.households
    found = await households.by_code(ward_id, code)
    if found is None:
        close = await households.close_codes(ward_id, code, _scope(ctx, ward_id))
        await ctx.say("households/unknown_code", code=code, close=close)
        return None
    if not may_log(ctx.identity, ward_id, found.group_id):
        await ctx.say("households/not_your_group", code=found.code, group=found.group_code)
        return None
    return found


async def _parse_steps(ctx: Ctx, words: list[str]) -> dict[str, int | None] | None:
    """`vneid` (all), `vneid=2` (two adults), `-vneid` (not done). A word that is not a
    step stops the whole command: nothing is written on a half-understood line."""
    households = ctx.app.services.households
    targets: dict[str, int | None] = {}
    for word in words:
        key, _, count = word.lstrip("-").partition("=")
        step = households.step(key)
        if step is None:
            await ctx.say("households/error_unknown_step", step=key,
                          steps=[s.key for s in households.steps])
            return None
        if word.startswith("-"):
            targets[step.key] = 0
        elif count:
            if not is_number(count):
                await ctx.say("households/bad_count", step=step.key, count=count)
                return None
            targets[step.key] = int(count)
        else:
            targets[step.key] = None
    return targets


async def _mark(
    ctx: Ctx, household: HouseholdInfo, targets: dict[str, int | None], *, note: str = ""
) -> None:
    try:
        marked = await ctx.app.services.households.mark(
            ctx.identity, household.id, targets, note=note
        )
    except ServiceError as exc:
        await ctx.say(f"households/error_{exc.reason}", **exc.details)
        return
    await _answer_marked(ctx, marked)


async def _answer_marked(ctx: Ctx, marked: Marked) -> None:
    buttons = _checklist_buttons(ctx, marked.checklist)
    if marked.changes:
        buttons.append([ctx.button("households.undo", Undo(marked.batch))])
    # After a press the checklist message itself changes; after a command, a new one.
    await ctx.update("households/changed", marked=marked, checklist=marked.checklist,
                     buttons=buttons)


async def _show(ctx: Ctx, household: HouseholdInfo) -> None:
    checklist = await ctx.app.services.households.checklist(household.id)
    await ctx.update("households/checklist", checklist=checklist,
                     buttons=_checklist_buttons(ctx, checklist))


def _checklist_buttons(ctx: Ctx, checklist: Checklist) -> list[list[Button]]:
    hid = checklist.household.id
    rows: list[list[Button]] = []
    for state in checklist.steps:
        key = state.step.key
        if state.step.per == "adult":
            rows.append([
                ctx.button("households.adult_step", HouseholdPress("p", hid, key),
                           title=state.step.label,
                           done=state.units, total=state.total, complete=state.complete,
                           reported=state.reported),
                # As a numbered list (Zalo, the terminal) a bare "➖" says nothing.
                ctx.button("households.minus" if _side_by_side(ctx) else
                           "households.minus_named", HouseholdPress("m", hid, key),
                           title=state.step.label),
            ])
        else:
            rows.append([ctx.button("households.step", HouseholdPress("t", hid, key),
                                    title=state.step.label, complete=state.complete,
                                    reported=state.reported)])
    return rows


def _side_by_side(ctx: Ctx) -> bool:
    """Buttons shown in rows next to each other (Telegram), not as a numbered list."""
    caps = ctx.platform.capabilities
    return caps.buttons and caps.markup != "terminal"


async def pressed(ctx: Ctx) -> None:
    """A `HouseholdPress`. The router has checked that the household is in the helper's
    group (its route's scope), and the service checks again on every write: an old or
    forged button cannot reach another group."""
    await ctx.answer_button()
    press = ctx.press(HouseholdPress)
    action, key = press.action, press.key
    households = ctx.app.services.households
    try:
        household = await households.by_id(press.household)
        if household is None:
            await ctx.say("households/error_unknown_household")
            return
        if action == "o":
            await _show(ctx, household)
            return
        checklist = await households.checklist(household.id)
        state = checklist.state(key)
        if state is None:
            await ctx.say("households/error_unknown_household")
            return
        if action == "t":
            target: int | None = 0 if state.complete else None
        elif action == "p":
            target = 0 if state.units >= state.total else state.units + 1
        elif action == "m":
            target = max(state.units - 1, 0)
        elif action == "c":
            target = None
        else:  # "r"
            if await households.reject_report(ctx.identity, household.id, key):
                await _tell_residents(ctx, household, "households/report_rejected",
                                      step=state.step.title)
            await _show(ctx, household)
            return
        marked = await households.mark(ctx.identity, household.id, {key: target})
        if action == "c" and marked.changes:
            await _tell_residents(ctx, household, "households/report_confirmed",
                                  step=state.step.title)
        await _answer_marked(ctx, marked)
    except ServiceError as exc:
        await ctx.say(f"households/error_{exc.reason}", **exc.details)


async def undo(ctx: Ctx) -> None:
    """One-button undo of what a `/ghi` or a press just changed (the service checks whose)."""
    await ctx.answer_button()
    try:
        marked = await ctx.app.services.households.undo(ctx.identity, ctx.press(Undo).batch)
    except ServiceError as exc:
        await ctx.say(f"households/error_{exc.reason}", **exc.details)
        return
    await _answer_marked(ctx, marked)


async def _tell_residents(ctx: Ctx, household: HouseholdInfo, template: str, **kw: object) -> None:
    for person in await ctx.app.services.households.residents_of(household.id):
        await ctx.notify(person.platform, person.user_id,
                         ctx.t(template, household=household, **kw))


# --- residents: /cuaho --------------------------------------------------------------------
async def my_household(ctx: Ctx) -> None:
    households = ctx.app.services.households
    ward_id = ctx.identity.ward_id
    if ctx.args and ward_id is not None:
        await _link(ctx, ward_id, ctx.args[0], " ".join(ctx.args[1:]))
        return
    checklist = await households.household_of(ctx.identity)
    if checklist is not None:
        await _show_mine(ctx, checklist)
        return
    if ward_id is None:
        await no_ward(ctx, "households/no_ward")
        return
    await ctx.start_form(LINK, "code", {"ward_id": ward_id})
    await ctx.say("households/ask_code")


async def link_typed(ctx: Ctx) -> None:
    form = ctx.form
    assert form is not None
    text = ctx.incoming.text.strip()
    data = dict(form.data)
    if form.step == "code":
        if not text or len(text.split()) > 1:
            await ctx.say("households/ask_code")
            return
        data["code"] = text
        await ctx.start_form(LINK, "name", data)
        await ctx.say("households/ask_head_name")
        return
    await ctx.end_form()
    await _link(ctx, int(data["ward_id"]), str(data["code"]), text)


async def _link(ctx: Ctx, ward_id: int, code: str, head_name: str) -> None:
    if not head_name.strip():
        await ctx.start_form(LINK, "name", {"ward_id": ward_id, "code": code})
        await ctx.say("households/ask_head_name")
        return
    try:
        checklist = await ctx.app.services.households.link(ctx.identity, ward_id, code, head_name)
    except ServiceError as exc:
        await ctx.say(f"households/link_{exc.reason}", code=code)
        return
    await ctx.say("households/linked", household=checklist.household)
    await _show_mine(ctx, checklist)


async def _show_mine(ctx: Ctx, checklist: Checklist) -> None:
    guides = ctx.app.services.explanations.library.topics
    numbered = list(enumerate(checklist.steps, start=1))
    rows = [
        [b for b in (
            ctx.button("households.guide", FaqPress("t", s.step.guide), number=n)
            if s.step.guide in guides else None,
            ctx.button("households.i_did_it", DidIt("d", s.step.key), number=n)
            if not s.reported else None,
        ) if b is not None]
        for n, s in numbered if not s.complete
    ]
    await ctx.say("households/mine", checklist=checklist, buttons=[r for r in rows if r])


async def i_did_it(ctx: Ctx) -> None:
    """`DidIt`: a resident says his household finished a step; a helper confirms."""
    await ctx.answer_button()
    key = ctx.press(DidIt).key
    try:
        checklist, new = await ctx.app.services.households.self_report(ctx.identity, key)
    except ServiceError as exc:
        await ctx.say(f"households/error_{exc.reason}", **exc.details)
        return
    state = checklist.state(key)
    assert state is not None
    await ctx.say("households/reported", step=state.step.title, new=new)
    if not new:
        return
    household = checklist.household
    text = ctx.t("households/report_to_helper", household=household, step=state.step.title,
                 who=ctx.identity.name)
    buttons = [[ctx.button("households.confirm", HouseholdPress("c", household.id, key)),
                ctx.button("households.reject", HouseholdPress("r", household.id, key))]]
    for person in await ctx.app.services.households.staff_of_group(household.group_id):
        await ctx.notify(person.platform, person.user_id, text, buttons)


# --- coordinators: the ward's list as a file ---------------------------------------------------
async def document(ctx: Ctx) -> None:
    """A file sent in a private chat: a coordinator's household list, imported at once
    (after a confirm button when it names groups the ward does not have yet)."""
    attachment = next((a for a in ctx.incoming.attachments if a.kind == "document"), None)
    if attachment is None:
        return
    ward_id = ctx.identity.ward_id
    if ward_id is None or ctx.identity.role_in_ward(ward_id) < Role.COORDINATOR:
        await ctx.say("households/import_not_allowed")
        return
    if not attachment.filename.lower().endswith(IMPORT_SUFFIXES):
        await ctx.say("households/import_wrong_type", filename=attachment.filename)
        return
    await _import_file(ctx, ward_id, attachment, create_groups=False)


async def _import_file(
    ctx: Ctx, ward_id: int, attachment: Attachment, *, create_groups: bool
) -> None:
    try:
        data = await ctx.platform.download(attachment)
        table = read_table(data, attachment.filename)
        report = await ctx.app.services.registry.import_table(
            ward_id, table, actor_member_id=ctx.identity.member_id, create_groups=create_groups,
        )
    except ServiceError as exc:
        await ctx.say("households/import_failed", reason=exc.reason, detail=exc.detail)
        return
    buttons: list[list[Button]] = []
    if report.new_groups and not report.groups_confirmed:
        await ctx.start_form(IMPORT, "groups", {
            "ward_id": ward_id, "file_id": attachment.file_id, "filename": attachment.filename,
        })
        buttons = [[ctx.button("households.create_groups", ImportPress("ok", ward_id),
                               count=len(report.new_groups)),
                    ctx.button("households.import_stop", ImportPress("no", ward_id))]]
    await ctx.say("households/import_report", buttons=buttons, report=report,
                  filename=attachment.filename)


async def import_confirmed(ctx: Ctx) -> None:
    """An `ImportPress`: create the new groups and import the file sent before, or stop.
    The router has checked the coordinator's role in the press's ward; a button of a file
    for another ward than the one waiting is an old button."""
    press = ctx.press(ImportPress)
    form = ctx.form
    if form is not None and form.flow == IMPORT and int(form.data["ward_id"]) != press.ward:
        await ctx.answer_button("core.stale_button")
        return
    await ctx.answer_button()
    if form is None or form.flow != IMPORT:
        await ctx.say("core/form_expired")
        return
    await ctx.end_form()
    if press.answer == "no":
        await ctx.update("households/import_stopped")
        return
    attachment = Attachment(kind="document", file_id=str(form.data["file_id"]),
                            filename=str(form.data["filename"]))
    await _import_file(ctx, press.ward, attachment, create_groups=True)


async def import_typed(ctx: Ctx) -> None:
    await ctx.say("households/import_press_a_button")


def register(router: Router) -> None:
    router.command("ghi", log_steps, aliases=("log",), role=Role.HELPER,
                   where="private")
    router.command("ho", look_up, aliases=("household",), role=Role.HELPER, where="private")
    router.command("cuaho", my_household, aliases=("myhousehold",), role=Role.RESIDENT,
                   where="private")
    router.button(HouseholdPress, pressed, role=Role.HELPER, scope=own_group(household_place))
    router.button(Undo, undo, role=Role.HELPER, scope=OWN_WARD)
    router.button(FoundPage, found_page, role=Role.HELPER, scope=OWN_WARD)
    router.button(DidIt, i_did_it, role=Role.RESIDENT)
    router.form(FIND, find_typed)
    router.form(LINK, link_typed)
    router.document(document)
    router.button(ImportPress, import_confirmed, role=Role.COORDINATOR,
                  scope=own_group(import_place))
    router.form(IMPORT, import_typed)

