"""Replies under Telegram's limits, end to end: the real python-telegram-bot against the fake
Bot API with its limits on (30 a second, 20 a minute per group, 429 with `retry_after`).
The bot is made to pace faster than the fake allows, so 429s come; time is virtual (the fake
counts its limits on the bot's `VirtualSleeper`), so nothing waits for real."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.app import BotApp
from bot.clock import FrozenClock, VirtualSleeper
from bot.config import Config
from bot.core import Chat, Role, Sender
from bot.delivery.outbox import NewDelivery
from tests.conftest import shared_content
from tests.fake_telegram import FakeTelegram
from tests.telegram_people import plain

TOKEN = "123456:TEST-TOKEN"
BOSS = 701
START = datetime(2026, 11, 24, 4, 0, tzinfo=UTC)


@dataclass
class Bot:
    tg: FakeTelegram
    app: BotApp
    sleeper: VirtualSleeper

    def refused(self) -> int:
        return sum(1 for c in self.tg.calls_to("sendMessage") if "_result" not in c.params)


@pytest.fixture
async def bot(tmp_path: Path, sqlite_url: str) -> AsyncIterator[Bot]:
    # sqlite_url: <tmp_path>/bot.db starts as a copy of the migrated template
    clock = FrozenClock(START)
    sleeper = VirtualSleeper(clock)
    async with FakeTelegram(token=TOKEN, enforce_limits=True, now=sleeper.monotonic) as tg:
        config = Config.model_validate({
            "database": {"url": f"sqlite+aiosqlite:///{tmp_path}/bot.db"},
            "telegram": {"token": TOKEN, "api_base_url": tg.base_url},
            "web": {"port": 0},
            # Faster than Telegram allows, on purpose: the fake answers 429.
            "outbox": {"per_second": 100, "workers": 2},
        })
        app = BotApp(config, clock=clock, sleeper=sleeper, content=shared_content())
        await app.db.upgrade()
        services = app.context.services
        await services.places.add_ward("HB", "Phường Hòa Bình")
        await services.places.add_group("HB", "TDP01", "Tổ 1")
        await services.access.grant(platform="telegram", user_id=str(BOSS),
                                    role=Role.COORDINATOR, ward_code="HB")
        await app.start()
        try:
            yield Bot(tg, app, sleeper)
        finally:
            await app.stop()


async def settle(bot: Bot, expect: dict[int, int]) -> None:
    """Until every chat has at least what it expects (then a moment more, for doubles)."""
    for _ in range(1500):
        if all(len(bot.tg.sent_to(chat)) >= n for chat, n in expect.items()):
            break
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.2)


async def test_a_burst_of_replies_with_429s_loses_none_and_answers_none_twice(bot: Bot) -> None:
    people = [20_000 + i for i in range(70)]
    groups = [-30_000 - i for i in range(20)]
    for person in people:
        bot.tg.message(person, person, "/start")
    for group in groups:  # a coordinator links each of 20 group chats in the same moment
        bot.tg.message(group, BOSS, "/lienket TDP01", chat_type="group")
    await settle(bot, {chat: 1 for chat in people + groups})
    assert bot.refused() > 0  # the fake did refuse: the test is about 429s
    answered = {chat: [plain(m) for m in bot.tg.sent_to(chat)] for chat in people + groups}
    assert {chat for chat, said in answered.items() if len(said) == 1} == set(people + groups)
    assert all("Chào" in said[0] or "chào" in said[0] for chat, said in answered.items()
               if chat > 0)
    assert all("TDP01" in said[0] for chat, said in answered.items() if chat < 0)


async def test_the_apology_waits_out_a_429_too(bot: Bot) -> None:
    """The answer is refused for good (a bad request), the apology that follows gets a
    429: the person still reads the apology, once."""
    person = 20_500
    bot.tg.fail_next("sendMessage", chat_id=person, error_code=400,
                     description="Bad Request: can't parse entities")
    bot.tg.fail_next("sendMessage", chat_id=person, error_code=429,
                     description="Too Many Requests: retry after 5", retry_after=5)
    slept = sum(bot.sleeper.slept)
    bot.tg.message(person, person, "/start")
    await settle(bot, {person: 1})
    [apology] = [plain(m) for m in bot.tg.sent_to(person)]
    assert apology.startswith("Xin lỗi, mình đang gặp trục trặc")
    assert sum(bot.sleeper.slept) - slept >= 5  # it waited as told before trying again
    assert len(bot.tg.calls_to("sendMessage")) == 3


async def test_a_reply_during_a_broadcast_goes_first(bot: Bot) -> None:
    services = bot.app.context.services
    boss = await services.access.identify("telegram", Sender(str(BOSS), "Cán bộ Hoa"))
    chats = [-40_000 - i for i in range(60)]
    for chat in chats:
        await services.chats.bind(boss, "telegram", Chat(str(chat), "group", "Nhóm"), "TDP01")
    bot.tg.clear()
    await services.outbox.enqueue([
        NewDelivery(kind="notice", ref_id=9, dedupe=f"bulk:{c}", platform="telegram",
                    chat_id=str(c), text="Thông báo họp tổ") for c in chats])
    await asyncio.sleep(0.05)  # the broadcast is under way
    person = 20_700
    bot.tg.message(person, person, "/start")
    await settle(bot, {person: 1, **{c: 1 for c in chats}})
    order = [str(c.params["chat_id"]) for c in bot.tg.calls_to("sendMessage")
             if "_result" in c.params]
    assert order.index(str(person)) < len(chats) // 2  # not behind the whole broadcast
    assert all(len(bot.tg.sent_to(c)) == 1 for c in chats)
