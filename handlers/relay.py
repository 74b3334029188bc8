"""Relay through the group leaders, as the people involved see it.

`/chuyentiep` shows how each group is reached (`/chuyentiep TDP05`: one group);
`/chuyentiep TDP05 chuyentiep` changes it;
`/chuyentiep TDP05 toi` makes me the one who forwards for TDP05. The relay person presses
"✅ Đã chuyển vào nhóm" under a relayed message (or answers 1 on Zalo, or types
`/dachuyen`). "📊 Xem tình hình chuyển tin" under a notice's report shows its reach: direct,
relayed, waiting, failed.
"""

from __future__ import annotations

from bot.core import is_number
from bot.roles import Role
from bot.router import Ctx, Router, own_group
from bot.services.errors import ServiceError
from bot.services.relay_delivery import RelayPress, confirm_payload

# The words after the group code (Vietnamese without diacritics, English aliases) → mode.
WORDS = {"tructiep": "direct", "chuyentiep": "relay", "cahai": "both", "tudong": "auto",
         "direct": "direct", "relay": "relay", "both": "both", "auto": "auto"}


async def reach(ctx: Ctx) -> None:
    ward_id = ctx.identity.ward_id
    if ward_id is None:
        await ctx.say("households/no_ward")
        return
    relays = ctx.app.services.relays
    if not ctx.args:
        mine = ctx.identity.role_in_ward(ward_id) < Role.COORDINATOR
        ids = [g.group_id for g in ctx.identity.groups_with(Role.HELPER)
               if g.group_id is not None] if mine else None
        found = await relays.reach(ward_id, ids)
        await ctx.say("relay/reach", reaches=list(found.values()))
        return
    if len(ctx.args) > 2:
        await ctx.say("relay/usage", word=ctx.incoming.args_text[:40])
        return
    group = await ctx.app.services.places.group_by_code(ward_id, ctx.args[0])
    if group is None:
        await ctx.say("relay/error_unknown_group")
        return
    if len(ctx.args) == 1:  # one group: how it is reached
        one = await relays.reach(ward_id, [group.id])
        await ctx.say("relay/reach", reaches=list(one.values()))
        return
    word = ctx.args[1].lower()
    try:
        if word == "toi":
            await relays.set_person(ctx.identity, ward_id, group.id)
            await ctx.say("relay/saved", group_code=group.code, person=True, mode="")
            return
        mode = WORDS.get(word)
        if mode is None:
            await ctx.say("relay/usage", word=word[:40])
            return
        await relays.set_mode(ctx.identity, ward_id, group.id, mode)
    except ServiceError as exc:
        await ctx.say(f"relay/error_{exc.reason}")
        return
    await ctx.say("relay/saved", group_code=group.code, person=False, mode=mode)


async def relayed(ctx: Ctx) -> None:
    """`/dachuyen`: one waiting message is confirmed at once; several are listed."""
    waiting = await ctx.app.services.relays.waiting_for(ctx.identity)
    if len(ctx.args) == 1 and is_number(ctx.args[0]) and 1 <= int(ctx.args[0]) <= len(waiting):
        waiting = [waiting[int(ctx.args[0]) - 1]]
    if not waiting:
        await ctx.say("relay/nothing_waiting")
        return
    if len(waiting) == 1:
        await _confirm(ctx, waiting[0].id)
        return
    buttons = [[ctx.button("relay.done_for", confirm_payload(t.id), code=t.group_code)]
               for t in waiting[:20]]
    await ctx.say("relay/choose_waiting", buttons=buttons)


async def relay_place(ctx: Ctx) -> tuple[int, int | None] | None:
    """Where the press acts: the relayed message's group, or the notice's ward. The router
    checks the person's role there (the service then checks the task is theirs)."""
    press = ctx.press(RelayPress)
    if press.action == "ok":
        task = await ctx.app.services.relays.task(press.ref)
        return None if task is None else (task.ward_id, task.group_id)
    ward_id = await ctx.app.services.notices.ward_of(press.ref)
    return None if ward_id is None else (ward_id, None)


async def pressed(ctx: Ctx) -> None:
    """A `RelayPress`: confirm a relayed message, or show how a notice went."""
    await ctx.answer_button()
    press = ctx.press(RelayPress)
    if press.action == "ok":
        await _confirm(ctx, press.ref)
    else:
        await _notice_status(ctx, press.ref)


async def _confirm(ctx: Ctx, task_id: int) -> None:
    try:
        done = await ctx.app.services.relays.confirm(ctx.identity, task_id)
    except ServiceError as exc:
        await ctx.say(f"relay/error_{exc.reason}")
        return
    await ctx.update("relay/thanks", task=done.task, already=done.already)


async def _notice_status(ctx: Ctx, notice_id: int) -> None:
    summary = await ctx.app.services.notices.reach_summary(ctx.identity, notice_id)
    if summary is None:
        await ctx.say("relay/error_unknown_task")
        return
    await ctx.say("relay/status", title=ctx.label("relay.notice_title", id=notice_id),
                  summary_text=ctx.app.services.relay_delivery.summary_text(summary))


def register(router: Router) -> None:
    router.command("chuyentiep", reach, aliases=("relay",), role=Role.HELPER, where="private")
    router.command("dachuyen", relayed, aliases=("relayed",), role=Role.HELPER)
    router.button(RelayPress, pressed, role=Role.HELPER, scope=own_group(relay_place))
