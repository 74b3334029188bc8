"""`/khaosat`: a quick poll in the group chats, with buttons so it works on every platform.

Question → options (one per line, 2-10) → groups, closing time, whether to post the results
→ sent through the outbox. Each person votes once and may change the vote until the poll
closes (at its time, or by the author's button). Results per group and for the ward go to
the author, and to the groups if chosen.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from bot.core import Button, is_number
from bot.delivery.outbox import NewDelivery
from bot.keyboards import page_rows
from bot.payloads import Payload
from bot.roles import Role
from bot.router import OWN_WARD, Ctx, Router
from bot.services.errors import ServiceError
from bot.services.polls import clean_options
from handlers.targets import (
    group_picker,
    picker_context,
    sending_ward,
    toggle,
    typed_groups,
)

FLOW = "poll"
CLOSINGS = ("1h", "evening", "1d", "3d", "never")


@dataclass(frozen=True)
class PollPress(Payload, prefix="pl"):
    """The form: `g` toggle group `value`, `all`, `pg` picker page, `when`, `post`, `send`,
    `stop`; my polls: `r` results of poll `value`, `c` close it, `mp` page of the list."""

    action: Literal["g", "all", "pg", "when", "post", "send", "stop", "r", "c", "mp"]
    value: int = 0


@dataclass(frozen=True)
class PollVote(Payload, prefix="pv"):
    """A resident's vote: option `option` (0-based) of poll `poll`."""

    poll: int
    option: int


async def poll(ctx: Ctx) -> None:
    ward_id = await sending_ward(ctx)
    if ward_id is None:
        return
    data: dict[str, Any] = {"ward_id": ward_id, "closing": "1d", "post": True}
    if ctx.args:
        data["question"] = ctx.incoming.args_text
        await ctx.start_form(FLOW, "options", data)
        await ctx.say("polls/ask_options")
        return
    if await ctx.app.services.polls.mine(ctx.identity, ward_id):
        await _mine(ctx, ward_id, 1)
    await ctx.start_form(FLOW, "question", data)
    await ctx.say("polls/ask_question")


async def _mine(ctx: Ctx, ward_id: int, page: int) -> None:
    """My polls with "results" and "close" buttons, paged."""
    mine = await ctx.app.services.polls.mine(ctx.identity, ward_id)
    items = [[ctx.button("polls.results", PollPress("r", p.id), id=p.id)]
             + ([] if p.closed else [ctx.button("polls.close", PollPress("c", p.id), id=p.id)])
             for p in mine]
    paged = page_rows(items, page, nav=lambda n: PollPress("mp", n), label=ctx.label,
                      buttons=ctx.platform.capabilities.buttons)
    await ctx.update("polls/mine", polls=mine[paged.start: paged.start + paged.shown],
                     buttons=paged.rows, page=paged.page, pages=paged.pages)


async def typed(ctx: Ctx) -> None:
    form = ctx.form
    assert form is not None
    data = dict(form.data)
    text = ctx.incoming.text.strip()
    if form.step == "question":
        if not text or len(text) > 300:
            await ctx.say("polls/ask_question")
            return
        data["question"] = text
        await ctx.start_form(FLOW, "options", data)
        await ctx.say("polls/ask_options")
    elif form.step == "options":
        try:
            lines = text.splitlines()
            if len(lines) == 1:  # one line (a terminal, a hurried phone): "A; B; C"
                lines = re.split(r"\s*[;|]\s*", text)
            data["options"] = clean_options(lines)
        except ServiceError as exc:
            await ctx.say(f"polls/error_{exc.reason}", **exc.details)
            return
        ward_id = int(data["ward_id"])
        if ctx.identity.role_in_ward(ward_id) < Role.COORDINATOR:
            data["groups"] = [g.id for g in await ctx.app.services.notices.allowed(
                ctx.identity, ward_id)]
        await ctx.start_form(FLOW, "targets", data)
        await _choices(ctx, data, fresh=True)
    else:
        allowed = await ctx.app.services.notices.allowed(ctx.identity, int(data["ward_id"]))
        chosen = await typed_groups(ctx, allowed) if form.step == "targets" else None
        if chosen is None:
            await ctx.say("polls/press_a_button")
        elif chosen:
            data["groups"], data["page"] = chosen, 1
            await ctx.start_form(FLOW, "targets", data)
            await _choices(ctx, data, fresh=True)


def _closes_at(ctx: Ctx, closing: str) -> datetime | None:
    """Counted from when the poll reaches the groups: after quiet hours if it is night."""
    now = ctx.app.clock.now()
    now = ctx.app.services.outbox.quiet_until(now) or now
    tz = ctx.app.config.bot.tz
    if closing == "1h":
        return now + timedelta(hours=1)
    if closing == "evening":
        local = now.astimezone(tz)
        evening = local.replace(hour=20, minute=0, second=0, microsecond=0)
        return evening if evening > local else evening + timedelta(days=1)
    if closing == "1d":
        return now + timedelta(days=1)
    if closing == "3d":
        return now + timedelta(days=3)
    return None


async def _choices(ctx: Ctx, data: dict[str, Any], *, fresh: bool = False) -> None:
    ward_id = int(data["ward_id"])
    allowed = await ctx.app.services.notices.allowed(ctx.identity, ward_id)
    chosen = [int(g) for g in data.get("groups", [])]
    tail = [[ctx.button(f"polls.closing.{data['closing']}", PollPress("when"))],
            [ctx.button("polls.post", PollPress("post"), on=bool(data.get("post")))],
            [ctx.button("polls.send", PollPress("send")),
             ctx.button("notices.abort", PollPress("stop"))]]
    paged = group_picker(ctx, lambda action, value: PollPress(action, value), allowed, chosen,
                         page=int(data.get("page", 1)), tail=tail,
                         whole_ward=ctx.identity.role_in_ward(ward_id) >= Role.COORDINATOR)
    closes_at = _closes_at(ctx, str(data["closing"]))
    context = {"data": data, "closes_at": closes_at, **picker_context(allowed, chosen, paged)}
    render = ctx.say if fresh else ctx.update
    await render("polls/choices", buttons=paged.rows, **context)


async def pressed(ctx: Ctx) -> None:
    """A press in the poll form or on my polls (`PollPress`)."""
    await ctx.answer_button()
    press = ctx.press(PollPress)
    action = press.action
    if action in ("r", "c"):
        await _manage(ctx, action, press.value)
        return
    if action == "mp" and ctx.identity.ward_id is not None:
        await _mine(ctx, ctx.identity.ward_id, press.value)
        return
    form = ctx.form
    if form is None or form.flow != FLOW or form.step != "targets":
        await ctx.say("core/form_expired")
        return
    data = dict(form.data)
    ward_id = int(data["ward_id"])
    if action in ("g", "all"):
        allowed = [g.id for g in await ctx.app.services.notices.allowed(ctx.identity, ward_id)]
        data["groups"] = toggle(data.get("groups", []), action, press.value, allowed)
    elif action == "pg":
        data["page"] = press.value
    elif action == "when":
        data["closing"] = CLOSINGS[(CLOSINGS.index(str(data["closing"])) + 1) % len(CLOSINGS)]
    elif action == "post":
        data["post"] = not data.get("post")
    elif action == "send":
        await _send(ctx, data)
        return
    elif action == "stop":
        await ctx.end_form()
        await ctx.update("notices/aborted")
        return
    await ctx.start_form(FLOW, "targets", data)
    await _choices(ctx, data)


async def _send(ctx: Ctx, data: dict[str, Any]) -> None:
    ward_id = int(data["ward_id"])
    allowed = {g.id: g for g in await ctx.app.services.notices.allowed(ctx.identity, ward_id)}
    group_ids = [int(g) for g in data.get("groups", []) if int(g) in allowed]
    if not group_ids:
        await ctx.say("notices/error_no_targets")
        return
    chats = await ctx.app.services.chats.active_by_group(ward_id)
    reach = await ctx.app.services.relays.reach(ward_id, group_ids)  # relay: via a person
    relayed = [reach[g] for g in group_ids if g in reach and reach[g].relay
               and reach[g].person is not None]
    targets = [(gid, chat) for gid in group_ids for chat in chats.get(gid, [])
               if gid not in reach or reach[gid].direct]
    if not targets and not relayed:
        await ctx.say("notices/error_no_chats", groups=[allowed[g].code for g in group_ids])
        return
    try:
        created = await ctx.app.services.polls.create(
            ctx.identity, ward_id, question=str(data["question"]),
            options=list(data["options"]), group_ids=group_ids,
            closes_at=_closes_at(ctx, str(data["closing"])), post_results=bool(data.get("post")),
        )
    except ServiceError as exc:
        await ctx.say(f"polls/error_{exc.reason}", **exc.details)
        return
    await ctx.end_form()
    buttons = [[Button(f"{i + 1}. {option}", PollVote(created.id, i).pack())]
               for i, option in enumerate(created.options)]
    texts = {}  # per platform: where there are no buttons, people answer with a command
    for name, platform in ctx.app.platforms.items():
        texts[name] = ctx.t("polls/poll", poll=created, author=ctx.identity.name,
                            by_command=not platform.capabilities.buttons)
    await ctx.app.services.outbox.enqueue([
        NewDelivery(kind="poll", ref_id=created.id, platform=chat.platform,
                    chat_id=chat.chat_id, text=texts.get(chat.platform, ""),
                    dedupe=f"poll:{created.id}:{chat.platform}:{chat.chat_id}",
                    ward_id=ward_id, group_id=gid, buttons=buttons)
        for gid, chat in targets if chat.platform in texts
    ])
    if relayed:  # residents of those groups answer the bot in their private chat
        ward = await ctx.app.services.places.ward(ward_id)
        body = ctx.t("polls/poll", poll=created, author=ctx.identity.name, by_command=True)
        await ctx.app.services.relay_delivery.send(
            kind="poll", ref_id=created.id, ward_id=ward_id, ward_name=ward.name if ward else "",
            author_member_id=ctx.identity.member_id, reaches=relayed,
            body=f"{body}\n\n{ctx.t('relay/poll_how')}", when=ctx.app.clock.now())
    await ctx.update("polls/sent", poll=created, chats=len(targets), relayed=len(relayed),
                     codes=sorted({allowed[g].code for g in group_ids}),
                     buttons=[[
                         ctx.button("polls.results", PollPress("r", created.id), id=created.id),
                         ctx.button("polls.close", PollPress("c", created.id), id=created.id),
                     ]])


async def _manage(ctx: Ctx, action: str, poll_id: int) -> None:
    polls = ctx.app.services.polls
    found = await polls.get(poll_id)
    mine = found is not None and (
        found.author_member_id == ctx.identity.member_id
        or ctx.identity.role_in_ward(found.ward_id) >= Role.COORDINATOR
    )
    if found is None or not mine:
        await ctx.say("polls/error_not_yours")
        return
    if action == "c":
        closed = await polls.close(poll_id)
        if closed is None:
            await ctx.say("polls/error_closed")
            return
        await ctx.app.jobs.polls.publish(closed, tell_author=False)
    results = await polls.results(poll_id)
    await ctx.say("polls/results", r=results, rows=results.shares())


async def vote(ctx: Ctx) -> None:
    """A `PollVote`, pressed in a group chat (or a private one)."""
    press = ctx.press(PollVote)
    key, option = await _vote(ctx, press.poll, press.option)
    await ctx.answer_button(key, option=option)


async def vote_command(ctx: Ctx) -> None:
    """`/binhchon <poll> <option>`: the same vote where a platform has no buttons (Zalo);
    options are numbered from 1, as the poll shows them."""
    if len(ctx.args) != 2 or not all(is_number(a) for a in ctx.args):
        await ctx.say("polls/vote_usage")
        return
    key, option = await _vote(ctx, int(ctx.args[0]), int(ctx.args[1]) - 1)
    await ctx.reply(ctx.label(key, option=option))


async def _vote(ctx: Ctx, poll_id: int, option: int) -> tuple[str, str]:
    """Record a vote; returns the label to answer with and the option's text."""
    group_id = None
    if not ctx.incoming.is_private:
        binding = await ctx.app.services.chats.binding(ctx.platform.name,
                                                       ctx.incoming.chat.chat_id)
        group_id = binding.group_id if binding else None
    polls = ctx.app.services.polls
    found = await polls.get(poll_id)
    if found is None or (group_id is not None and group_id not in found.group_ids):
        return "polls.not_here", ""
    try:
        poll_info, outcome = await polls.vote(ctx.identity.member_id, found.id, option,
                                              group_id)
    except ServiceError as exc:
        return f"polls.vote_{exc.reason}", ""
    return f"polls.vote_{outcome}", poll_info.options[option]


def register(router: Router) -> None:
    router.command("khaosat", poll, aliases=("poll",), role=Role.LEADER, where="private",
                   scope=OWN_WARD)
    router.button(PollPress, pressed, role=Role.LEADER, scope=OWN_WARD)
    router.button(PollVote, vote)
    router.command("binhchon", vote_command, aliases=("vote",), menu=False)
    router.form(FLOW, typed)
