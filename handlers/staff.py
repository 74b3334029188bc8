"""`/canbo` lists the ward's staff with their roles; `/thuhoi` takes a role away (pick the
person, then the role, then confirm); `/phuong` lets an admin from `[admins]` pick the ward
they work in. Lists page by eight buttons; on Zalo they become short numbered lists.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

from bot.core import Button, Role
from bot.payloads import Payload
from bot.router import OWN_WARD, Ctx, Router
from bot.services.errors import ServiceError
from bot.services.staff import StaffMember

PAGE_BUTTONS = 8  # people per page of /thuhoi, one per row
PAGE_LINES = 20  # people per page of /canbo
WARD_PAGE = 16  # wards per page of /phuong, two per row
COMMAND_NAME = re.compile(r"[a-z0-9_]{0,32}")  # Telegram's rule for command names


@dataclass(frozen=True)
class StaffPress(Payload, prefix="st"):
    """`l` / `r` + page: a page of /canbo / of /thuhoi's people; `m` + member: this person's
    roles; `g` + grant: confirm taking it; `y` + grant: take it; `n`: stop. Members and
    grants are looked up in the coordinator's own ward (the route's scope)."""

    action: Literal["l", "r", "m", "g", "y", "n"]
    value: int | None = None

    def __post_init__(self) -> None:
        if (self.action == "n") != (self.value is None):
            raise ValueError(f"st:{self.action} with value {self.value!r}")


@dataclass(frozen=True)
class WardPick(Payload, prefix="aw"):
    """An admin from `[admins]` picks a ward: `w` + ward works in it, then runs `command`
    again (the one that needed a ward); `p` + page shows another page of wards."""

    action: Literal["w", "p"]
    value: int
    command: str = ""

    def __post_init__(self) -> None:
        if not COMMAND_NAME.fullmatch(self.command):
            raise ValueError(f"not a command name: {self.command!r}")


def _page_of(items: list[StaffMember], page: int, size: int) -> tuple[list[StaffMember], int, int]:
    pages = max(1, -(-len(items) // size))
    page = min(max(page, 0), pages - 1)
    return items[page * size : (page + 1) * size], page, pages


def _nav(ctx: Ctx, kind: Literal["l", "r"], page: int, pages: int) -> list[Button]:
    row = []
    if page > 0:
        row.append(ctx.button("staff.prev", StaffPress(kind, page - 1)))
    if page < pages - 1:
        row.append(ctx.button("staff.next", StaffPress(kind, page + 1)))
    return row


def _arg_page(ctx: Ctx) -> int:
    return int(ctx.args[0]) - 1 if ctx.args and ctx.args[0].isdigit() else 0


async def staff_list(ctx: Ctx, page: int | None = None) -> None:
    """`/canbo`: everyone with a staff role in the ward, coordinators first."""
    ward_id = ctx.identity.ward_id
    if ward_id is None:
        await no_ward(ctx, "staff/no_ward")
        return
    people = await ctx.app.services.staff.members(ward_id)
    shown, page, pages = _page_of(people, _arg_page(ctx) if page is None else page, PAGE_LINES)
    nav = _nav(ctx, "l", page, pages)
    await ctx.update(
        "staff/list", buttons=[nav] if nav else (), people=shown, total=len(people),
        page=page + 1, pages=pages, first=page * PAGE_LINES + 1,
        ward_code=ctx.identity.main_grant.ward_code if ctx.identity.main_grant else "",
    )


async def revoke(ctx: Ctx, page: int | None = None) -> None:
    """`/thuhoi`: step 1, pick the person."""
    ward_id = ctx.identity.ward_id
    if ward_id is None:
        await no_ward(ctx, "staff/no_ward")
        return
    people = [p for p in await ctx.app.services.staff.members(ward_id)
              if p.member_id != ctx.identity.member_id or ctx.identity.is_admin]
    if not people:
        await ctx.update("staff/nobody")
        return
    shown, page, pages = _page_of(people, _arg_page(ctx) if page is None else page,
                                  PAGE_BUTTONS)
    rows = [[ctx.button("staff.person", StaffPress("m", p.member_id), name=p.name or p.user_id,
                        role=p.top_role.value, count=len(p.grants))] for p in shown]
    nav = _nav(ctx, "r", page, pages)
    if nav:
        rows.append(nav)
    rows.append([ctx.button("staff.cancel", StaffPress("n"))])
    await ctx.update("staff/ask_person", buttons=rows, page=page + 1, pages=pages)


async def pressed(ctx: Ctx) -> None:
    """A `StaffPress`: turn a page, pick a person, a role, confirm, or stop. A member or
    grant that is not (any more) in the ward says the list has changed."""
    await ctx.answer_button()
    press = ctx.press(StaffPress)
    if press.value is None:  # "n", the only press without a number
        await ctx.update("staff/stopped")
        return
    await STEPS[press.action](ctx, press.value)


async def _ask_role(ctx: Ctx, member_id: int) -> None:
    """Step 2: which of this person's roles."""
    ward_id = ctx.identity.ward_id
    person = await ctx.app.services.staff.member(ward_id, member_id) if ward_id else None
    if person is None:
        await ctx.update("staff/gone")
        return
    rows = [[ctx.button("staff.grant", StaffPress("g", g.grant_id), role=g.role.value,
                        group=g.group_code)] for g in person.grants[:PAGE_BUTTONS * 2]]
    rows.append([ctx.button("staff.back", StaffPress("r", 0)),
                 ctx.button("staff.cancel", StaffPress("n"))])
    await ctx.update("staff/ask_role", buttons=rows, person=person)


async def _confirm(ctx: Ctx, grant_id: int) -> None:
    """Step 3: say exactly what will happen, then "Thu hồi" or "Thôi"."""
    ward_id = ctx.identity.ward_id
    people = await ctx.app.services.staff.members(ward_id) if ward_id else []
    found = next(((p, g) for p in people for g in p.grants if g.grant_id == grant_id), None)
    if found is None:
        await ctx.update("staff/gone")
        return
    person, grant = found
    rows = [[ctx.button("staff.yes", StaffPress("y", grant_id)),
             ctx.button("staff.cancel", StaffPress("n"))]]
    await ctx.update("staff/confirm", buttons=rows, person=person, role=grant.role.value,
                     group=grant.group_code)


async def _revoke(ctx: Ctx, grant_id: int) -> None:
    ward_id = ctx.identity.ward_id
    if ward_id is None:
        await ctx.update("staff/gone")
        return
    try:
        done = await ctx.app.services.staff.revoke(ctx.identity, ward_id, grant_id)
    except ServiceError as exc:
        await ctx.update(f"staff/error_{exc.reason}")
        return
    await ctx.update("staff/revoked", done=done, role=done.role.value)
    await ctx.notify(done.platform, done.user_id,
                     ctx.t("staff/revoked_notice", done=done, role=done.role.value))


STEPS: dict[str, Callable[[Ctx, int], Awaitable[None]]] = {
    "l": staff_list, "r": revoke, "m": _ask_role, "g": _confirm, "y": _revoke,
}


# --- admins from [admins]: which ward -------------------------------------------------------
async def no_ward(ctx: Ctx, template: str) -> None:
    """Nobody's ward: an admin picks one (and the command runs again); others are told."""
    if not ctx.identity.is_admin:
        await ctx.say(template)
        return
    await _ward_picker(ctx, ctx.incoming.command or "", 0)


async def choose_ward(ctx: Ctx) -> None:
    """`/phuong [CODE]`: an admin picks the ward they work in."""
    if ctx.args:
        ward = await ctx.app.services.places.ward_by_code(ctx.args[0])
        if ward is None:
            await ctx.say("staff/unknown_ward", code=ctx.args[0].upper())
            return
        await _set_ward(ctx, ward.id, "")
        return
    await _ward_picker(ctx, "", 0)


async def _ward_picker(ctx: Ctx, command: str, page: int) -> None:
    if not COMMAND_NAME.fullmatch(command):
        command = ""  # never a registered command: nothing to run again
    wards = await ctx.app.services.places.wards()
    if not wards:
        await ctx.say("staff/no_wards")
        return
    pages = max(1, -(-len(wards) // WARD_PAGE))
    page = min(max(page, 0), pages - 1)
    shown = wards[page * WARD_PAGE : (page + 1) * WARD_PAGE]
    buttons = [ctx.button("staff.ward", WardPick("w", w.id, command), code=w.code, name=w.name)
               for w in shown]
    rows = [buttons[i : i + 2] for i in range(0, len(buttons), 2)]
    nav = []
    if page > 0:
        nav.append(ctx.button("staff.prev", WardPick("p", page - 1, command)))
    if page < pages - 1:
        nav.append(ctx.button("staff.next", WardPick("p", page + 1, command)))
    if nav:
        rows.append(nav)
    await ctx.update("staff/ask_ward", buttons=rows, page=page + 1, pages=pages)


async def ward_pressed(ctx: Ctx) -> None:
    """A `WardPick`: work in the ward picked and run the command again, or turn the page."""
    press = ctx.press(WardPick)
    if press.action == "w" and await ctx.app.services.places.ward(press.value) is None:
        await ctx.answer_button("core.stale_button")  # a ward since removed (or forged)
        return
    await ctx.answer_button()
    if press.action == "p":
        await _ward_picker(ctx, press.command, press.value)
        return
    await _set_ward(ctx, press.value, press.command)


async def _set_ward(ctx: Ctx, ward_id: int, command: str) -> None:
    try:
        ctx.identity = await ctx.app.services.staff.choose_ward(ctx.identity, ward_id)
    except ServiceError as exc:
        await ctx.say(f"staff/error_{exc.reason}")
        return
    ward = await ctx.app.services.places.ward(ward_id)
    await ctx.update("staff/ward_chosen", ward=ward)
    if command and command not in ("phuong", "ward"):
        await ctx.router.run_command(ctx, command)


def register(router: Router) -> None:
    # Private only: names of the ward's staff are not for a group chat.
    router.command("canbo", staff_list, aliases=("staff",), role=Role.COORDINATOR,
                   where="private")
    router.command("thuhoi", revoke, aliases=("revoke",), role=Role.COORDINATOR,
                   where="private")
    router.command("phuong", choose_ward, aliases=("ward",), role=Role.ADMIN, where="private")
    router.button(StaffPress, pressed, role=Role.COORDINATOR, scope=OWN_WARD)
    # No scope: an admin from [admins] may work in any ward, and picking one is what this is.
    router.button(WardPick, ward_pressed, role=Role.ADMIN)
