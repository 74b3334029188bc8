"""`/moi`: make an invite link and QR code for a role, in three short steps or one line.

One line: `/moi totruong TDP05 20` (role, group, how many people). Step by step: pick the
role, pick the group, say how many people (or "no limit"). The form is kept in the database.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Literal

from bot.core import Attachment, Button, is_number
from bot.keyboards import page_rows
from bot.payloads import Payload
from bot.roles import GROUP_ROLES, Role
from bot.router import OWN_WARD, Ctx, Router
from bot.services.errors import ServiceError
from bot.services.invites import STAFF_ROLES, InviteInfo, invitable_roles
from bot.services.selection import natural_key
from handlers.staff import no_ward

FLOW = "invite"


@dataclass(frozen=True)
class InviteRole(Payload, prefix="invr"):
    """Step 1: the role the invite gives."""

    role: Role


@dataclass(frozen=True)
class InvitePress(Payload, prefix="inv"):
    """`group` pick group `value`; `gp` page `value` of the groups; `uses` no limit (or one
    person, for staff)."""

    action: Literal["group", "gp", "uses"]
    value: int = 0

# What people type for each role (without diacritics), besides the English names.
ROLE_WORDS: dict[str, Role] = {
    "cudan": Role.RESIDENT, "dan": Role.RESIDENT, "resident": Role.RESIDENT,
    "tocds": Role.HELPER, "congnghe": Role.HELPER, "cds": Role.HELPER, "helper": Role.HELPER,
    "totruong": Role.LEADER, "leader": Role.LEADER,
    "canbo": Role.COORDINATOR, "coordinator": Role.COORDINATOR,
}


def qr_png(link: str) -> bytes:
    """A QR code big enough to print on A5 and scan from a metre away."""
    import segno  # drawn on request only: not loaded by an idle bot (~1.7 MB)

    buffer = io.BytesIO()
    segno.make(link, error="m").save(buffer, kind="png", scale=12, border=4)
    return buffer.getvalue()


async def invite(ctx: Ctx) -> None:
    ward_id = ctx.identity.ward_id
    if ward_id is None:
        await no_ward(ctx, "invites/no_ward")
        return
    roles = invitable_roles(ctx.identity, ward_id)
    if not roles:
        await ctx.say("core/denied", needed=Role.LEADER.value, role=ctx.identity.role.value)
        return
    if ctx.args:
        await _one_line(ctx, ward_id, roles)
        return
    await ctx.start_form(FLOW, "role", {"ward_id": ward_id})
    buttons = [[ctx.button(f"roles.{r.value}", InviteRole(r))] for r in roles]
    await ctx.say("invites/ask_role", buttons=buttons)


async def _one_line(ctx: Ctx, ward_id: int, roles: list[Role]) -> None:
    if ctx.args[0].lower() in ("huy", "revoke") and len(ctx.args) == 2:
        try:
            code = await ctx.app.services.invites.revoke(ctx.identity, ctx.args[1])
        except ServiceError as exc:
            await ctx.say(f"invites/revoke_{exc.reason}")
            return
        await ctx.say("invites/revoked", code=code)
        return
    role = ROLE_WORDS.get(ctx.args[0].lower())
    if role is None or role not in roles:
        await ctx.say("invites/usage", roles=[r.value for r in roles])
        return
    group_id: int | None = None
    rest = list(ctx.args[1:])
    if role in GROUP_ROLES:
        if not rest:
            await ctx.say("invites/usage", roles=[r.value for r in roles])
            return
        group = await ctx.app.services.places.group_by_code(ward_id, rest.pop(0))
        if group is None:
            await ctx.say("invites/unknown_group")
            return
        group_id = group.id
    uses: int | None = None
    if rest:
        if not is_number(rest[0]):
            await ctx.say("invites/bad_uses")
            return
        uses = int(rest[0]) or None
    await _create(ctx, role=role, ward_id=ward_id, group_id=group_id, uses=uses)


async def pick(ctx: Ctx) -> None:
    """Buttons of the step-by-step form (`InvitePress`)."""
    await ctx.answer_button()
    form = ctx.form
    if form is None or form.flow != FLOW:
        await ctx.say("core/form_expired")
        return
    press = ctx.pressed
    data = dict(form.data)
    ward_id = int(data["ward_id"])
    if isinstance(press, InvitePress) and press.action == "gp":
        await _ask_group(ctx, ward_id, press.value)
        return
    if isinstance(press, InviteRole):
        role = press.role
        if role not in invitable_roles(ctx.identity, ward_id):
            await ctx.say(
                "core/denied", needed=Role.COORDINATOR.value, role=ctx.identity.role.value
            )
            return
        data["role"] = role.value
        if role in GROUP_ROLES:
            await ctx.start_form(FLOW, "group", data)
            await _ask_group(ctx, ward_id)
            return
    elif isinstance(press, InvitePress) and press.action == "group":
        data["group_id"] = press.value
    elif isinstance(press, InvitePress) and press.action == "uses":
        await _finish(ctx, data, None)
        return
    await ctx.start_form(FLOW, "uses", data)
    await ctx.update("invites/ask_uses", buttons=_uses_buttons(ctx, data))


async def _ask_group(ctx: Ctx, ward_id: int, page: int = 1) -> None:
    groups = await ctx.app.services.places.groups(ward_id)
    mine = sorted((g for g in groups if ctx.identity.role_in_group(ward_id, g.id) >= Role.LEADER),
                  key=lambda g: natural_key(g.code))
    if not mine:
        await ctx.end_form()
        await ctx.update("invites/no_groups")
        return
    buttons = [ctx.button("invites.group", InvitePress("group", g.id), code=g.code) for g in mine]
    paged = page_rows(buttons, page, nav=lambda n: InvitePress("gp", n), label=ctx.label,
                      buttons=ctx.platform.capabilities.buttons, columns=4)
    await ctx.update("invites/ask_group", buttons=paged.rows, pages=paged.pages)


def _uses_buttons(ctx: Ctx, data: dict[str, object]) -> list[list[Button]]:
    """Residents and helpers: "no limit" (a link for the whole group); leaders and ward
    staff: one person unless a number is typed."""
    staff = Role(str(data.get("role", Role.RESIDENT.value))) in STAFF_ROLES
    label = "invites.one_person" if staff else "invites.no_limit"
    return [[ctx.button(label, InvitePress("uses"))]]


async def typed(ctx: Ctx) -> None:
    """Text while the form is open: a number of people, or a group code at the group step."""
    form = ctx.form
    assert form is not None
    data = dict(form.data)
    text = ctx.incoming.text.strip()
    if form.step == "uses":
        if not is_number(text) or not 0 <= int(text) <= 10_000:
            await ctx.say("invites/bad_uses")
            return
        await _finish(ctx, data, int(text) or None)
    elif form.step == "group":
        group = await ctx.app.services.places.group_by_code(int(data["ward_id"]), text)
        if group is None:
            await ctx.say("invites/unknown_group")
            return
        data["group_id"] = group.id
        await ctx.start_form(FLOW, "uses", data)
        await ctx.say("invites/ask_uses", buttons=_uses_buttons(ctx, data))
    else:
        await ctx.say("invites/ask_role_again")


async def _finish(ctx: Ctx, data: dict[str, object], uses: int | None) -> None:
    group_id = data.get("group_id")
    await ctx.end_form()
    await _create(
        ctx,
        role=Role(str(data["role"])),
        ward_id=int(str(data["ward_id"])),
        group_id=int(str(group_id)) if group_id is not None else None,
        uses=uses,
    )


async def _create(
    ctx: Ctx, *, role: Role, ward_id: int, group_id: int | None, uses: int | None
) -> None:
    try:
        info = await ctx.app.services.invites.create(
            ctx.identity, role=role, ward_id=ward_id, group_id=group_id, max_uses=uses
        )
    except ServiceError as exc:
        await ctx.say(f"invites/create_{exc.reason}")
        return
    await _show(ctx, info)


async def _show(ctx: Ctx, info: InviteInfo) -> None:
    link = ctx.platform.invite_link(info.code)
    await ctx.say("invites/created", info=info, link=link, role=info.role.value)
    if ctx.platform.capabilities.photos:
        caption = ctx.t("invites/qr_caption", info=info, role=info.role.value)
        photo = Attachment(kind="photo", filename=f"moi-{info.code}.png", data=qr_png(link),
                           mime_type="image/png")
        await ctx.reply(caption, attachment=photo)


def register(router: Router) -> None:
    router.command("moi", invite, aliases=("invite",), role=Role.LEADER, where="private",
                   scope=OWN_WARD)
    router.button(InviteRole, pick, role=Role.LEADER, scope=OWN_WARD)
    router.button(InvitePress, pick, role=Role.LEADER, scope=OWN_WARD)
    router.form(FLOW, typed)
