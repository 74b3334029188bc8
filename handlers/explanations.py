"""`/hoidap` and free text: plain-language answers, step by step, with 👍/👎 and a way to ask
a person. A confident match answers at once; a weak one offers the closest topics; none
offers to send the question to the ward (the feedback feature files it)."""

from __future__ import annotations

import re
from typing import Any

from bot.context import AppContext
from bot.core import Button, Role
from bot.router import Ctx, Router
from bot.services.explanations import Topic
from bot.services.guides import link_payload, parse_code
from bot.services.privacy import mask_national_ids

FLOW = "faq"
_MENTION = re.compile(r"@\w+")


def topic_context(ctx: Ctx) -> dict[str, Any]:
    """What a topic's text may name: the province's app, the ward office, the bot."""
    return topic_values(ctx.app, ctx.locale)


def topic_values(app: AppContext, locale: str) -> dict[str, Any]:
    """`topic_context` without a conversation (a guide posted to a group by a job)."""
    config = app.config
    office = config.office
    citizen_app = config.citizen_app
    if not citizen_app.name:
        citizen_app = citizen_app.model_copy(update={
            "name": app.texts.label("citizen_app.default_name", locale)})
    return {
        "app": citizen_app,
        "office": {
            "name": office.name, "address": office.address,
            "hours": office.hours, "phone": office.phone,
        },
        "bot": {"name": app.texts.label("bot.default_name", locale)
                if not config.bot.name else config.bot.name},
    }


async def _office(ctx: Ctx) -> dict[str, str]:
    return await ward_office(ctx.app, ctx.identity.ward_id, ctx.locale)


async def ward_office(app: AppContext, ward_id: int | None, locale: str) -> dict[str, str]:
    """The ward's own record wins over the config's office defaults."""
    base = topic_values(app, locale)["office"]
    ward = await app.services.places.ward(ward_id) if ward_id else None
    if ward is not None:
        base = {
            "name": base["name"] or ward.name,
            "address": ward.office_address or base["address"],
            "hours": ward.office_hours or base["hours"],
            "phone": ward.office_phone or base["phone"],
        }
    return dict(base)


def _rows(buttons: list[Button], per_row: int) -> list[list[Button]]:
    return [buttons[i : i + per_row] for i in range(0, len(buttons), per_row)]


async def menu(ctx: Ctx) -> None:
    """`/hoidap`: categories as buttons; `/hoidap <question>` searches at once."""
    if ctx.args and ctx.args[0].lower() == "thongke":
        await stats(ctx)
        return
    if ctx.args:
        await answer_text(ctx, ctx.incoming.args_text)
        return
    await _categories(ctx)


async def _categories(ctx: Ctx) -> None:
    library = ctx.app.services.explanations.library
    buttons = [
        ctx.button("faq.category", f"faq:cat:{c.key}", emoji=c.emoji, title=c.title)
        for c in library.categories
    ]
    await ctx.update("explanations/menu", buttons=_rows(buttons, 2))


async def button(ctx: Ctx) -> None:
    """`faq:cat:<c>`, `faq:t:<topic>`, `faq:steps:<topic>`, `faq:v:<topic>:1|0`, `faq:home`."""
    parts = (ctx.incoming.payload or "").split(":")
    kind = parts[1] if len(parts) > 1 else ""
    service = ctx.app.services.explanations
    if kind == "home":
        await ctx.answer_button()
        await _categories(ctx)
        return
    if kind == "cat" and len(parts) == 3:
        await ctx.answer_button()
        topics = service.library.in_category(parts[2])
        buttons = [ctx.button("faq.topic", f"faq:t:{t.key}", title=title(ctx, t)) for t in topics]
        buttons.append(ctx.button("faq.back", "faq:home"))
        category = next((c for c in service.library.categories if c.key == parts[2]), None)
        await ctx.update(
            "explanations/category", buttons=_rows(buttons, 1),
            title=category.title if category else "",
        )
        return
    topic = service.topic(parts[2]) if len(parts) >= 3 else None
    if topic is None:
        await ctx.answer_button("core.stale_button")
        return
    if kind == "t":
        await ctx.answer_button()
        await show_topic(ctx, topic)
    elif kind == "steps" and not ctx.incoming.is_private:
        await ctx.answer_button("guides.steps_in_private", bot=ctx.platform.bot_username)
    elif kind == "steps":
        await ctx.answer_button()
        await show_steps(ctx, topic)
    elif kind == "v" and len(parts) == 4:
        helpful = parts[3] == "1"
        await service.vote(topic.key, ctx.identity.member_id, helpful=helpful)
        await ctx.answer_button("faq.thanks_yes" if helpful else "faq.thanks_no")
        if not helpful:
            ask = ctx.button("faq.ask", f"fb:ask:{topic.key}")
            await ctx.say("explanations/unhelpful", buttons=[[ask]])
    else:
        await ctx.answer_button("core.stale_button")


async def show_steps(ctx: Ctx, topic: Topic) -> None:
    """A guide's steps, in this (private) chat."""
    await ctx.say(
        "explanations/steps", buttons=_topic_buttons(ctx, topic, steps=False),
        title=title(ctx, topic), steps=[await _render(ctx, s) for s in topic.steps],
    )


def title(ctx: Ctx, topic: Topic) -> str:
    """A topic's title as plain text, with the province's app named from the config."""
    return ctx.app.texts.plain_string(topic.title, ctx.locale, **topic_context(ctx))


async def _render(ctx: Ctx, source: str) -> str:
    values = topic_context(ctx)
    values["office"] = await _office(ctx)
    return ctx.app.texts.render_string(source, ctx.locale, **values)


def _topic_buttons(ctx: Ctx, topic: Topic, *, steps: bool = True) -> list[list[Button]]:
    service = ctx.app.services.explanations
    rows: list[list[Button]] = []
    private = ctx.incoming.is_private
    if steps and topic.steps and private:
        rows.append([ctx.button("faq.steps", f"faq:steps:{topic.key}")])
    elif steps and topic.steps and ctx.platform.capabilities.buttons:
        # In a group the steps open in the person's private chat, never in the group.
        link = ctx.platform.invite_link(link_payload(topic.key))
        if link.startswith("https://"):
            rows.append([Button(ctx.label("faq.steps"), "", url=link)])
    related = [service.topic(k) for k in topic.related]
    rows.extend(
        [ctx.button("faq.related", f"faq:t:{t.key}", title=title(ctx, t))] for t in related if t
    )
    rows.append([
        ctx.button("faq.helpful", f"faq:v:{topic.key}:1"),
        ctx.button("faq.unhelpful", f"faq:v:{topic.key}:0"),
    ])
    rows.append([ctx.button("faq.ask", f"fb:ask:{topic.key}"), ctx.button("faq.back", "faq:home")])
    if private and ctx.identity.role >= Role.LEADER:  # residents do not see it
        rows.append([ctx.button("guides.share", f"gsh:{topic.key}")])
    return rows


async def show_topic(ctx: Ctx, topic: Topic) -> None:
    await ctx.app.services.explanations.record_read(topic.key)
    await ctx.say(
        "explanations/answer", buttons=_topic_buttons(ctx, topic),
        title=title(ctx, topic), answer=await _render(ctx, topic.answer),
    )


async def answer_text(ctx: Ctx, text: str) -> None:
    """Match what the person typed; answer, offer the closest topics, or offer a person."""
    question = _MENTION.sub(" ", text).strip()
    if not question:
        await _categories(ctx)
        return
    result = ctx.app.services.explanations.matcher.match(question)
    if result.confident is not None:
        await show_topic(ctx, result.confident)
        return
    # Keep the question so "Hỏi cán bộ phường" can send it as typed.
    await ctx.start_form(FLOW, "question", {"question": mask_national_ids(question[:2000])})
    if result.candidates:
        buttons = [
            [ctx.button("faq.topic", f"faq:t:{t.key}", title=title(ctx, t))]
            for t in result.candidates
        ]
        buttons.append([ctx.button("faq.none_of_these", "fb:ask")])
        await ctx.say("explanations/did_you_mean", buttons=buttons)
        return
    await ctx.say(
        "explanations/no_match",
        buttons=[[ctx.button("faq.ask", "fb:ask")], [ctx.button("faq.browse", "faq:home")]],
    )


async def free_text(ctx: Ctx) -> None:
    """Text outside a form is a question in a private chat; in a group when it names the
    bot, or replies to one of the bot's answers. A reply to a notice, reminder or poll
    ("Đã nhận ạ") or a sticker is chatter, not a question for the whole group."""
    if not ctx.incoming.is_private and not await _called_in_group(ctx):
        return
    if ctx.incoming.is_private and (topic := await _guide_code(ctx)) is not None:
        await open_from_post(ctx, topic, None, "code")  # "hd 3" from a group post on Zalo
        return
    await answer_text(ctx, ctx.incoming.text)


async def _guide_code(ctx: Ctx) -> Topic | None:
    service = ctx.app.services.explanations
    code = parse_code(ctx.incoming.text)
    if isinstance(code, int):
        key = await ctx.app.services.guides.key_of(code)
        return service.topic(key) if key else None
    return service.topic(code) if code else None


async def open_from_post(ctx: Ctx, topic: Topic, group_id: int | None, via: str) -> None:
    """Steps opened from a group post (a deep link, "hd 3"): shown in this private chat
    and counted as a read for the group the post went to."""
    await ctx.app.services.explanations.record_read(topic.key)
    await ctx.app.services.guides.record_read(ctx.identity, topic.key, group_id, via)
    await show_steps(ctx, topic)


async def _called_in_group(ctx: Ctx) -> bool:
    incoming = ctx.incoming
    me = f"@{ctx.platform.bot_username}".lower()
    if me != "@" and me in incoming.text.lower():
        return True
    if not incoming.reply_to or not incoming.text.strip():
        return False
    return not await ctx.app.services.outbox.is_broadcast(
        ctx.platform.name, incoming.chat.chat_id, incoming.reply_to)


async def stats(ctx: Ctx) -> None:
    """For coordinators: which topics are read most, and which get 👎."""
    if ctx.identity.role < Role.COORDINATOR:
        await ctx.say("core/denied", needed=Role.COORDINATOR.value, role=ctx.identity.role.value)
        return
    rows = await ctx.app.services.explanations.stats()
    used = [r for r in rows if r.reads or r.helpful or r.unhelpful]
    ward_id = ctx.identity.ward_id
    shared = await ctx.app.services.guides.stats(ward_id) if ward_id else []
    service = ctx.app.services.explanations
    titles = {s.key: title(ctx, t) for s in shared if (t := service.topic(s.key))}
    await ctx.say("explanations/stats", rows=used, shared=shared, titles=titles)


def register(router: Router) -> None:
    router.command("hoidap", menu, aliases=("faq",))
    router.button("faq", button)
    router.form(FLOW, free_text)
    router.text(free_text)
