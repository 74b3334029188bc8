"""Choosing residential groups with toggle buttons, shared by notices, polls and campaigns:
`<prefix>:g:<id>` toggles one group, `<prefix>:g:all` the whole ward (coordinators)."""

from __future__ import annotations

from collections.abc import Sequence

from bot.core import Button, is_number
from bot.router import Ctx
from bot.services.places import GroupInfo
from handlers.staff import no_ward


def toggle(chosen: Sequence[int], value: str, allowed: Sequence[int]) -> list[int]:
    """The new choice after pressing `value`; ids outside `allowed` are never added, so an
    old or forged button cannot widen the scope."""
    current = {int(g) for g in chosen} & set(allowed)
    if value == "all":
        current = set() if current == set(allowed) else set(allowed)
    elif is_number(value) and int(value) in allowed:
        current ^= {int(value)}
    return sorted(current)


def group_buttons(
    ctx: Ctx, prefix: str, allowed: Sequence[GroupInfo], chosen: Sequence[int], *,
    whole_ward: bool,
) -> list[list[Button]]:
    picked = set(chosen)
    rows: list[list[Button]] = []
    if whole_ward:
        rows.append([ctx.button("notices.all", f"{prefix}:g:all",
                                on=bool(allowed) and len(picked) == len(allowed))])
    toggles = [ctx.button("notices.group", f"{prefix}:g:{g.id}", code=g.code, on=g.id in picked)
               for g in allowed]
    rows += [toggles[i: i + 3] for i in range(0, len(toggles), 3)]
    return rows


async def sending_ward(ctx: Ctx) -> int | None:
    """The ward a leader or coordinator sends to (notices, polls); None after saying why
    not (no ward, or no group of his own to reach)."""
    ward_id = ctx.identity.ward_id
    if ward_id is None:
        await no_ward(ctx, "households/no_ward")
        return None
    if not await ctx.app.services.notices.allowed(ctx.identity, ward_id):
        await ctx.say("notices/no_groups")
        return None
    return ward_id
