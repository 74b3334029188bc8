"""`/khaosat`: a quick poll in the group chats, with buttons so it works on every platform.

Question → options (one per line, 2-10) → groups, closing time, whether to post the results
→ sent through the outbox. Each person votes once and may change the vote until the poll
closes (at its time, or by the author's button). Results per group and for the ward go to
the author, and to the groups if chosen.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime, timedelta
from typing import Any

from bot.context import AppContext
from bot.core import Button, Role, is_number
from bot.delivery.outbox import NewDelivery
from bot.router import Ctx, Router
from bot.services.polls import PollError, PollInfo, Results, clean_options
from handlers.targets import group_buttons, sending_ward, toggle

log = logging.getLogger(__name__)

FLOW = "poll"
CLOSINGS = ("1h", "evening", "1d", "3d", "never")


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
    mine = await ctx.app.services.polls.mine(ctx.identity, ward_id)
    if mine:
        rows = [[ctx.button("polls.results", f"pl:r:{p.id}", id=p.id)]
                + ([] if p.closed else [ctx.button("polls.close", f"pl:c:{p.id}", id=p.id)])
                for p in mine]
        await ctx.say("polls/mine", polls=mine, buttons=rows)
    await ctx.start_form(FLOW, "question", data)
    await ctx.say("polls/ask_question")


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
        except PollError as exc:
            await ctx.say(f"polls/error_{exc.reason}", **exc.details)
            return
        ward_id = int(data["ward_id"])
        if ctx.identity.role_in_ward(ward_id) < Role.COORDINATOR:
            data["groups"] = [g.id for g in await ctx.app.services.notices.allowed(
                ctx.identity, ward_id)]
        await ctx.start_form(FLOW, "targets", data)
        await _choices(ctx, data)
    else:
        await ctx.say("polls/press_a_button")


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


async def _choices(ctx: Ctx, data: dict[str, Any]) -> None:
    ward_id = int(data["ward_id"])
    allowed = await ctx.app.services.notices.allowed(ctx.identity, ward_id)
    chosen = [int(g) for g in data.get("groups", [])]
    rows = group_buttons(ctx, "pl", allowed, chosen,
                         whole_ward=ctx.identity.role_in_ward(ward_id) >= Role.COORDINATOR)
    rows.append([ctx.button(f"polls.closing.{data['closing']}", "pl:when")])
    rows.append([ctx.button("polls.post", "pl:post", on=bool(data.get("post")))])
    rows.append([ctx.button("polls.send", "pl:send"), ctx.button("notices.abort", "pl:stop")])
    codes = [g.code for g in allowed if g.id in set(chosen)]
    closes_at = _closes_at(ctx, str(data["closing"]))
    context = {"data": data, "codes": codes, "closes_at": closes_at}
    await ctx.update("polls/choices", buttons=rows, **context)


async def pressed(ctx: Ctx) -> None:
    """Form: `pl:g:<id|all>`, `pl:when`, `pl:post`, `pl:send`, `pl:stop`;
    my polls: `pl:r:<id>` results, `pl:c:<id>` close."""
    await ctx.answer_button()
    parts = (ctx.incoming.payload or "").split(":")
    action = parts[1] if len(parts) > 1 else ""
    value = parts[2] if len(parts) > 2 else ""
    if action in ("r", "c") and is_number(value):
        await _manage(ctx, action, int(value))
        return
    form = ctx.form
    if form is None or form.flow != FLOW or form.step != "targets":
        await ctx.say("core/form_expired")
        return
    data = dict(form.data)
    ward_id = int(data["ward_id"])
    if action == "g":
        allowed = [g.id for g in await ctx.app.services.notices.allowed(ctx.identity, ward_id)]
        data["groups"] = toggle(data.get("groups", []), value, allowed)
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
    targets = [(gid, chat) for gid in group_ids for chat in chats.get(gid, [])]
    if not targets:
        await ctx.say("notices/error_no_chats", groups=[allowed[g].code for g in group_ids])
        return
    try:
        created = await ctx.app.services.polls.create(
            ctx.identity, ward_id, question=str(data["question"]),
            options=list(data["options"]), group_ids=group_ids,
            closes_at=_closes_at(ctx, str(data["closing"])), post_results=bool(data.get("post")),
        )
    except PollError as exc:
        await ctx.say(f"polls/error_{exc.reason}", **exc.details)
        return
    await ctx.end_form()
    buttons = [[Button(f"{i + 1}. {option}", f"pv:{created.id}:{i}")]
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
    await ctx.update("polls/sent", poll=created, chats=len(targets),
                     codes=sorted({allowed[g].code for g in group_ids}),
                     buttons=[[ctx.button("polls.results", f"pl:r:{created.id}", id=created.id),
                               ctx.button("polls.close", f"pl:c:{created.id}", id=created.id)]])


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
        await publish(ctx.app, closed, tell_author=False)
    results = await polls.results(poll_id)
    await ctx.say("polls/results", r=results, rows=_rows(results))


def _rows(results: Results) -> list[tuple[str, int, float]]:
    total = results.total
    return [(option, n, n / total if total else 0.0)
            for option, n in zip(results.poll.options, results.ward, strict=True)]


async def vote(ctx: Ctx) -> None:
    """`pv:<poll>:<option>`, pressed in a group chat (or a private one)."""
    parts = (ctx.incoming.payload or "").split(":")
    if len(parts) != 3 or not is_number(parts[1]) or not is_number(parts[2]):
        await ctx.answer_button("core.stale_button")
        return
    key, option = await _vote(ctx, int(parts[1]), int(parts[2]))
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
    except PollError as exc:
        return f"polls.vote_{exc.reason}", ""
    return f"polls.vote_{outcome}", poll_info.options[option]


async def publish(app: AppContext, closed: PollInfo, *, tell_author: bool = True) -> None:
    """A poll closed: results to its author, and to its groups if chosen."""
    results = await app.services.polls.results(closed.id)
    text = app.texts.render("polls/results", app.config.bot.locale, r=results,
                            rows=_rows(results))
    items = []
    if tell_author:
        author = await app.services.access.identity_of(closed.author_member_id)
        if author is not None:
            items.append(NewDelivery(
                kind="poll_result", ref_id=closed.id, platform=author.platform,
                chat_id=author.user_id, dedupe=f"pres:{closed.id}:{author.platform}:author",
                text=text, is_group=False, priority=3))
    if closed.post_results:
        chats = await app.services.chats.active_by_group(closed.ward_id)
        items += [
            NewDelivery(kind="poll_result", ref_id=closed.id, platform=chat.platform,
                        chat_id=chat.chat_id, text=text, ward_id=closed.ward_id, group_id=gid,
                        dedupe=f"pres:{closed.id}:{chat.platform}:{chat.chat_id}")
            for gid in closed.group_ids for chat in chats.get(gid, [])
        ]
    await app.services.outbox.enqueue(items)


async def close_due(app: AppContext) -> int:
    closed = 0
    for poll_id in await app.services.polls.due_to_close():
        found = await app.services.polls.close(poll_id)
        if found is not None:
            await publish(app, found)
            closed += 1
    return closed


def register(router: Router) -> None:
    router.command("khaosat", poll, aliases=("poll",), role=Role.LEADER, where="private")
    router.button("pl", pressed, role=Role.LEADER)
    router.button("pv", vote)
    router.command("binhchon", vote_command, aliases=("vote",), menu=False)
    router.form(FLOW, typed)
