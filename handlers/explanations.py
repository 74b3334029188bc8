"""`/hoidap` and free text: plain-language answers, step by step, with 👍/👎 and a way to ask
a person. Free text is first read by the understanding step: small talk gets a short reply,
"a person please" goes straight to the ward's form, a problem report is offered for filing
first; a question is matched: a confident match answers at once, close ones are offered, and
when none fits the bot says so and offers the ward (the feedback feature files it)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from bot.core import Button
from bot.faq import FaqPress
from bot.keyboards import page_rows
from bot.payloads import Payload
from bot.roles import Role
from bot.router import Ctx, Router
from bot.services.explanations import MatchResult, Topic
from bot.services.guides import link_payload, parse_code
from bot.services.privacy import mask_national_ids
from bot.services.understanding import Kind
from bot.topics import topic_values, ward_office
from handlers.feedback import AskWard

FLOW = "faq"
ASK_FLOW = "question"  # the feedback feature's "ask the ward" form (handlers/feedback.py)


@dataclass(frozen=True)
class ShareGuide(Payload, prefix="gsh"):
    """"📣 Gửi vào nhóm" under guide `key` (handled in `handlers/guides.py`)."""

    key: str

_MENTION = re.compile(r"@\w+")


def topic_context(ctx: Ctx) -> dict[str, Any]:
    """What a topic's text may name: the province's app, the ward office, the bot."""
    key = ("topic_values", ctx.locale)
    values = ctx.memo.get(key)
    if values is None:  # once per update, not once per title and button rendered
        values = ctx.memo[key] = topic_values(ctx.app, ctx.locale)
    return dict(values)


async def _office(ctx: Ctx) -> dict[str, str]:
    return await ward_office(ctx.app, ctx.identity.ward_id, ctx.locale)


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
        ctx.button("faq.category", FaqPress("cat", c.key), emoji=c.emoji, title=c.title)
        for c in library.categories
    ]
    await ctx.update("explanations/menu", buttons=_rows(buttons, 2))


async def button(ctx: Ctx) -> None:
    """A `FaqPress`: the categories, a category's topics, a topic, its steps, a vote."""
    press = ctx.press(FaqPress)
    kind = press.action
    service = ctx.app.services.explanations
    if kind == "home":
        await ctx.answer_button()
        await _categories(ctx)
        return
    if kind == "cat":
        await ctx.answer_button()
        topics = service.library.in_category(press.key)
        buttons = [ctx.button("faq.topic", FaqPress("t", t.key), title=title(ctx, t))
                   for t in topics]
        paged = page_rows(buttons, max(press.value, 1),
                          nav=lambda n: FaqPress("cat", press.key, n), label=ctx.label,
                          buttons=ctx.platform.capabilities.buttons,
                          tail=[[ctx.button("faq.back", FaqPress("home"))]])
        category = next((c for c in service.library.categories if c.key == press.key), None)
        await ctx.update(
            "explanations/category", buttons=paged.rows,
            title=category.title if category else "",
        )
        return
    topic = service.topic(press.key) if press.key else None
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
    elif kind == "v":
        helpful = press.value == 1
        await service.vote(topic.key, ctx.identity.member_id, helpful=helpful)
        await ctx.answer_button("faq.thanks_yes" if helpful else "faq.thanks_no")
        if not helpful:
            ask = ctx.button("faq.ask", AskWard(topic=topic.key))
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


def _topic_buttons(ctx: Ctx, topic: Topic, *, steps: bool = True,
                   also: tuple[Topic, ...] = ()) -> list[list[Button]]:
    service = ctx.app.services.explanations
    rows: list[list[Button]] = []
    private = ctx.incoming.is_private
    if steps and topic.steps and private:
        rows.append([ctx.button("faq.steps", FaqPress("steps", topic.key))])
    elif steps and topic.steps and ctx.platform.capabilities.buttons:
        # In a group the steps open in the person's private chat, never in the group.
        link = ctx.platform.invite_link(link_payload(topic.key))
        if link.startswith("https://"):
            rows.append([Button(ctx.label("faq.steps"), "", url=link)])
    # A close runner-up of the matcher first ("Hay ý là…"), then the guide's related ones.
    rows.extend([ctx.button("faq.maybe", FaqPress("t", t.key), title=title(ctx, t))]
                for t in also)
    related = [t for k in topic.related if (t := service.topic(k)) and t not in also]
    rows.extend(
        [ctx.button("faq.related", FaqPress("t", t.key), title=title(ctx, t))]
        for t in related if t
    )
    rows.append([
        ctx.button("faq.helpful", FaqPress("v", topic.key, 1)),
        ctx.button("faq.unhelpful", FaqPress("v", topic.key, 0)),
    ])
    rows.append([ctx.button("faq.ask", AskWard(topic=topic.key)),
                 ctx.button("faq.back", FaqPress("home"))])
    if private and ctx.identity.role >= Role.LEADER:  # residents do not see it
        rows.append([ctx.button("guides.share", ShareGuide(topic.key))])
    return rows


async def show_topic(ctx: Ctx, topic: Topic, also: tuple[Topic, ...] = ()) -> None:
    await ctx.app.services.explanations.record_read(topic.key)
    await ctx.say(
        "explanations/answer", buttons=_topic_buttons(ctx, topic, also=also),
        title=title(ctx, topic), answer=await _render(ctx, topic.answer),
    )


async def answer_text(ctx: Ctx, text: str) -> None:
    """Read what the person typed, then reply as a neighbour would: chat back, hand over to a
    person, offer to file a problem, or answer from the guides."""
    question = _MENTION.sub(" ", text).strip()
    if not question:
        await _categories(ctx)
        return
    reading = ctx.app.services.understanding.read(question)
    kept = {"question": mask_national_ids(question[:2000])}
    if reading.kind is Kind.SMALLTALK:
        await _small_talk(ctx, reading.reply)
    elif reading.kind is Kind.PERSON:
        await _to_a_person(ctx, kept, has_question=reading.has_question)
    elif reading.kind is Kind.REPORT:
        # Keep the text so "Gửi phản ánh này" files it as typed, with the guessed category.
        await ctx.start_form(FLOW, "question", {**kept, "report": reading.category})
        guide = ctx.app.services.explanations.topic(REPORT_GUIDE)
        buttons = [[ctx.button("understanding.file_report", AskWard("report"), unit=_unit(ctx))]]
        if guide is not None:
            buttons.append([ctx.button("faq.topic", FaqPress("t", guide.key),
                                       title=title(ctx, guide))])
        await ctx.say("understanding/report", buttons=buttons, unit=_unit(ctx))
    else:
        await _answer(ctx, reading.match or MatchResult(None, ()), kept)


REPORT_GUIDE = "citizen_app_report"  # the how-to shown under "file this report"


def _unit(ctx: Ctx) -> str:
    return ctx.app.config.office.unit


async def _small_talk(ctx: Ctx, reply: str) -> None:
    """A short friendly reply; a greeting also gets the topic menu. Never a guide or a ticket."""
    buttons: list[list[Button]] = []
    if reply == "greeting":
        library = ctx.app.services.explanations.library
        buttons = _rows([ctx.button("faq.category", FaqPress("cat", c.key), emoji=c.emoji,
                                    title=c.title) for c in library.categories], 2)
    await ctx.say("understanding/smalltalk", buttons=buttons, reply=reply, unit=_unit(ctx))


async def _to_a_person(ctx: Ctx, kept: dict[str, str], *, has_question: bool) -> None:
    """Straight to the ward: the question kept (one press sends it), the office's hours."""
    office = await _office(ctx)
    if has_question:
        await ctx.start_form(FLOW, "question", kept)
        buttons = [[ctx.button("understanding.send_question", AskWard())]]
    else:
        await ctx.start_form(ASK_FLOW, "text", {"topic": ""})
        buttons = []
    await ctx.say("understanding/person", buttons=buttons, office=office,
                  has_question=has_question, unit=_unit(ctx))


async def _answer(ctx: Ctx, result: MatchResult, kept: dict[str, str]) -> None:
    if result.confident is not None:
        await show_topic(ctx, result.confident, result.also)
        return
    # Keep the question so "Hỏi cán bộ phường" can send it as typed.
    await ctx.start_form(FLOW, "question", kept)
    if result.candidates:
        buttons = [
            [ctx.button("faq.topic", FaqPress("t", t.key), title=title(ctx, t))]
            for t in result.candidates
        ]
        buttons.append([ctx.button("faq.none_of_these", AskWard())])
        await ctx.say("explanations/did_you_mean", buttons=buttons)
        return
    await ctx.say(
        "explanations/no_match", unit=_unit(ctx),
        buttons=[[ctx.button("faq.ask", AskWard())], [ctx.button("faq.browse", FaqPress("home"))]],
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
    router.button(FaqPress, button)
    router.form(FLOW, free_text)
    router.text(free_text)
