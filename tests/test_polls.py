"""Polls over Telegram: the leader's form, the poll in the group chat with one button per
option, votes and changed votes, the author's results, closing on time and the results
posted to the group. Time moves only when the test moves the clock."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from tests.telegram_people import Ward, labels, plain, until
from tests.test_campaigns import (
    BOSS,
    CHATS,
    LEADER,
    OTHER_LEADER,
    START,
    chat,
    create_campaign,
)
from tests.test_campaigns import ward as ward  # the same seeded ward and bot  # noqa: F401

VOTER_A, VOTER_B = 951, 952


async def vote(ward: Ward, user: int, label: str) -> str:
    message = ward.tg.sent_to(CHATS["TDP01"])[0]
    rows = message["reply_markup"]["inline_keyboard"]
    data = next(b["callback_data"] for row in rows for b in row if b["text"] == label)
    before = len(ward.tg.calls_to("answerCallbackQuery"))
    ward.tg.callback(CHATS["TDP01"], user, int(message["message_id"]), data, chat_type="group")
    await until(lambda: len(ward.tg.calls_to("answerCallbackQuery")) > before, "an answer")
    return str(ward.tg.calls_to("answerCallbackQuery")[-1].params.get("text", ""))


async def test_poll_votes_change_close_and_results(ward: Ward) -> None:
    [ask] = await ward.say(LEADER, "/khaosat Tổ mình họp tối nào tiện nhất?")
    assert "mỗi dòng một lựa chọn" in ask
    [few] = await ward.say(LEADER, "Tối thứ Bảy")
    assert "Cần từ 2 đến 10 lựa chọn" in few
    [choices] = await ward.say(LEADER, "Tối thứ Bảy\nTối Chủ nhật\n- Tối thứ Bảy")
    assert "1. Tối thứ Bảy\n2. Tối Chủ nhật\n" in choices and "Gửi tới: TDP01" in choices
    assert "Đóng: 11:00 25/11/2026" in choices
    sent = await ward.press(LEADER, "📤 Gửi khảo sát", edit=True)
    assert "Khảo sát #1 đang được gửi tới 1 nhóm chat (TDP01)" in sent
    [poll] = await ward.tg.wait_sent(CHATS["TDP01"], 1)
    assert "Tổ mình họp tối nào tiện nhất?" in plain(poll)
    assert labels(poll) == ["1. Tối thứ Bảy", "2. Tối Chủ nhật"]
    assert not ward.tg.sent_to(CHATS["TDP02"])
    assert await vote(ward, VOTER_A, "1. Tối thứ Bảy") == "✅ Đã ghi: Tối thứ Bảy"
    assert await vote(ward, VOTER_A, "2. Tối Chủ nhật") == "🔄 Đã đổi sang: Tối Chủ nhật"
    assert await vote(ward, VOTER_A, "2. Tối Chủ nhật") == "Bạn đã chọn «Tối Chủ nhật» rồi."
    assert await vote(ward, VOTER_B, "2. Tối Chủ nhật") == "✅ Đã ghi: Tối Chủ nhật"
    results = await ward.press(LEADER, "📊 Kết quả #1")
    assert "0% Tối thứ Bảy (0)" in results and "100% Tối Chủ nhật (2)" in results
    assert "Tổng: 2 phiếu" in results
    [fresh] = await ward.say(OTHER_LEADER, "/khaosat")
    assert "Tạo khảo sát" in fresh  # no list: the other leader has no polls of his own
    message = ward.tg.sent_to(LEADER)[-1]
    ward.tg.callback(OTHER_LEADER, OTHER_LEADER, int(message["message_id"]), "pl:c:1")
    await until(lambda: "không phải khảo sát của bạn" in ward.inbox(OTHER_LEADER)[-1], "refusal")
    ward.clock.set(START + timedelta(days=1, minutes=1))  # type: ignore[attr-defined]
    await ward.app.scheduler.run_now("close-polls")
    await ward.app.context.services.outbox.drain(within=10)
    posted = chat(ward, "TDP01")[-1]
    assert "Kết quả khảo sát #1 (đã đóng)" in posted and "100% Tối Chủ nhật (2)" in posted
    await until(lambda: "Kết quả khảo sát #1 (đã đóng)" in ward.inbox(LEADER)[-1], "results")
    assert await vote(ward, VOTER_B, "1. Tối thứ Bảy") == "Khảo sát đã đóng."
    await asyncio.sleep(0)


async def test_relay_groups_get_polls_and_the_final_ranking_through_their_leader(
    ward: Ward,
) -> None:
    await ward.say(BOSS, "/chuyentiep TDP02 chuyentiep")
    [_] = await ward.say(OTHER_LEADER, "/khaosat Tổ mình họp tối nào?")
    [_] = await ward.say(OTHER_LEADER, "Thứ Bảy\nChủ nhật")
    sent = await ward.press(OTHER_LEADER, "📤 Gửi khảo sát", edit=True)
    assert "tới 0 nhóm chat và qua người chuyển tin của 1 tổ (TDP02)" in sent
    await until(lambda: len(ward.inbox(OTHER_LEADER)) >= 4, "the poll to forward")
    forward = next(t for t in ward.inbox(OTHER_LEADER) if t.startswith("Phường Hòa Bình"))
    assert "KHẢO SÁT #1" in forward and "/binhchon 1 1" in forward
    assert "nhắn riêng cho trợ lý tự động của phường" in forward
    assert not ward.tg.sent_to(CHATS["TDP02"])  # the bound chat is not used
    [voted] = await ward.say(VOTER_A, "/binhchon 1 2")  # a resident, in private
    assert voted == "✅ Đã ghi: Chủ nhật"

    await create_campaign(ward)
    before = len(ward.inbox(OTHER_LEADER))
    [_] = await ward.say(BOSS, "/chiendich")
    await ward.press(BOSS, "⏹ Kết thúc #1", edit=True)
    await until(lambda: any("Kết thúc đợt" in t for t in ward.inbox(OTHER_LEADER)[before:]),
                "the ranking to forward")
    await until(lambda: any("Kết thúc đợt" in t for t in chat(ward, "TDP01")), "TDP01's")
    await ward.app.context.services.outbox.drain(within=10)
    assert not any("Kết thúc đợt" in t for t in chat(ward, "TDP02"))
