"""What a guide looks like in a group chat, for the share button and for series.

One screen: the title and the short answer. The steps open in the person's private chat:
on Telegram a "📝 Xem từng bước" link button (`t.me/<bot>?start=g_<key>_<group id>`), on
platforms without buttons one line "nhắn cho trợ lý: hd <number>". The steps themselves
are never posted into the group.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from bot.context import AppContext
from bot.core import Button
from bot.services.explanations import Topic
from bot.services.guides import link_payload
from handlers.explanations import topic_values, ward_office

Rows = tuple[tuple[Button, ...], ...]


@dataclass(frozen=True)
class GuideBody:
    """A guide rendered once for a ward: kept in a form's data between the preview and
    the send, so it is plain values."""

    key: str
    title: str
    answer: str
    number: int

    def as_data(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> GuideBody:
        return cls(key=str(data["key"]), title=str(data["title"]),
                   answer=str(data["answer"]), number=int(data["number"]))


async def guide_body(app: AppContext, topic: Topic, ward_id: int, locale: str) -> GuideBody:
    values = topic_values(app, locale)
    values["office"] = await ward_office(app, ward_id, locale)
    return GuideBody(
        key=topic.key,
        title=app.texts.plain_string(topic.title, locale, **values),
        answer=app.texts.render_string(topic.answer, locale, **values),
        number=await app.services.guides.number_of(topic.key),
    )


def has_links(app: AppContext, platform: str) -> bool:
    """Whether the platform opens a private chat from a link button (Telegram); the
    others (Zalo, the terminal chat) get the "hd <number>" line instead."""
    found = app.platforms.get(platform)
    return found is not None and found.capabilities.buttons and \
        found.invite_link("").startswith("https://")


def post(
    app: AppContext, body: GuideBody, platform: str, group_id: int | None, locale: str, *,
    author: str = "", series: Mapping[str, Any] | None = None,
) -> tuple[str, Rows]:
    """The text and buttons of one guide post to one chat of one group."""
    links = has_links(app, platform)
    text = app.texts.render("guides/post", locale, body=body, code=not links, author=author,
                            series=series)
    if not links:
        return text, ()
    link = app.platforms[platform].invite_link(link_payload(body.key, group_id))
    return text, ((Button(app.texts.label("faq.steps", locale), "", url=link),),)
