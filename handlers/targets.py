"""Choosing residential groups, shared by notices, polls and campaigns: one toggle button per
group, paged (bot/keyboards.py), "Cả phường" for coordinators, and codes or ranges typed
while the picker waits ("TDP01-TDP40", "TDP03 TDP07", "tất cả").

Each feature's payload has an `action` and a `value`: `g` toggles group `value`, `all` the
whole list, `pg` shows page `value`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal

from bot.core import Button
from bot.keyboards import Paged, page_rows
from bot.payloads import Payload
from bot.router import Ctx
from bot.services.places import GroupInfo
from bot.services.selection import choose, looks_like_choice, natural_key
from handlers.staff import no_ward

PickAction = Literal["g", "all", "pg"]
Press = Callable[[PickAction, int], Payload]


def toggle(chosen: Sequence[int], action: str, value: int, allowed: Sequence[int]) -> list[int]:
    """The new choice after pressing `action` (`g` one group, `all` every group); ids outside
    `allowed` are never added, so an old or forged button cannot widen the scope."""
    current = {int(g) for g in chosen} & set(allowed)
    if action == "all":
        current = set() if current == set(allowed) else set(allowed)
    elif action == "g" and value in allowed:
        current ^= {value}
    return sorted(current)


def group_picker(
    ctx: Ctx, press: Press, allowed: Sequence[GroupInfo], chosen: Sequence[int], *,
    whole_ward: bool, page: int, tail: Sequence[Sequence[Button]] = (),
) -> Paged:
    """The picker's rows: "Cả phường", one page of groups (4 a row), ◀ trang ▶, then `tail`."""
    picked = set(chosen)
    allowed = sorted(allowed, key=lambda g: natural_key(g.code))
    head: list[list[Button]] = []
    if whole_ward:
        head.append([ctx.button("notices.all", press("all", 0),
                                on=bool(allowed) and len(picked) == len(allowed))])
    toggles = [ctx.button("notices.group", press("g", g.id), code=g.code, on=g.id in picked)
               for g in allowed]
    return page_rows(toggles, page, nav=lambda n: press("pg", n), label=ctx.label,
                     buttons=ctx.platform.capabilities.buttons, columns=4, head=head,
                     tail=tail)


def picker_context(allowed: Sequence[GroupInfo], chosen: Sequence[int],
                   paged: Paged) -> dict[str, Any]:
    """What the choices templates show: the chosen codes and whether typing would help."""
    picked = set(chosen)
    ordered = sorted(allowed, key=lambda g: natural_key(g.code))
    return {"codes": [g.code for g in ordered if g.id in picked],
            "total_groups": len(allowed), "pages": paged.pages}


async def typed_groups(ctx: Ctx, allowed: Sequence[GroupInfo]) -> list[int] | None:
    """Groups typed while a picker waits; None (after saying why) when the text names a
    group the person may not choose, or is not a choice at all."""
    text = ctx.incoming.text.strip()
    if not looks_like_choice(text):
        return None
    chosen = choose(text, allowed)
    if chosen.unknown or not chosen.ids:
        await ctx.say("core/groups_unknown", words=chosen.unknown or [text])
        return []
    return chosen.ids


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
