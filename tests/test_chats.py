"""Binding group chats to residential groups, and following the bot's membership."""

from __future__ import annotations

from bot.core import Chat, ChatEvent, Sender
from bot.roles import Role
from tests.conftest import Harness


async def test_leader_links_his_group_chat(harness: Harness) -> None:
    await harness.grant("100", Role.LEADER, "TDP01")
    said = await harness.say("/lienket tdp01", group=True, chat="-500")
    assert "Đã gắn nhóm này với Tổ dân phố 1 (TDP01)" in said
    binding = await harness.ctx.services.chats.binding("telegram", "-500")
    assert binding is not None and binding.group_code == "TDP01"


async def test_leader_cannot_link_another_group(harness: Harness) -> None:
    await harness.grant("100", Role.LEADER, "TDP01")
    said = await harness.say("/lienket TDP02", group=True, chat="-500")
    assert "chỉ tổ trưởng của tổ TDP02 hoặc cán bộ phường" in said
    assert await harness.ctx.services.chats.binding("telegram", "-500") is None


async def test_resident_is_refused(harness: Harness) -> None:
    await harness.grant("100", Role.RESIDENT, "TDP01")
    said = await harness.say("/lienket TDP01", group=True, chat="-500")
    assert "chỉ dành cho Tổ trưởng trở lên" in said


async def test_coordinator_relinks_and_unknown_group(harness: Harness) -> None:
    await harness.grant("100", Role.COORDINATOR)
    await harness.say("/lienket TDP01", group=True, chat="-500")
    said = await harness.say("/lienket TDP02", group=True, chat="-500")
    assert "thay cho tổ TDP01" in said
    assert "không tìm thấy tổ TDP77" in await harness.say("/link TDP77", group=True, chat="-500")
    usage = await harness.say("/lienket", group=True, chat="-500")
    assert "đang gắn với tổ TDP02" in usage


async def test_bot_added_removed_and_migrated(harness: Harness) -> None:
    chats = harness.ctx.services.chats
    chat = Chat("-600", "group", "Nhóm tổ 1")
    actor = Sender("100", "An")
    await harness.router.dispatch_chat_event(
        harness.platform, ChatEvent("telegram", chat, "added", actor=actor)
    )
    assert "/lienket MÃ_TỔ" in harness.platform.last.text
    await harness.grant("100", Role.LEADER, "TDP01")
    await harness.say("/lienket TDP01", group=True, chat="-600")
    await harness.router.dispatch_chat_event(
        harness.platform, ChatEvent("telegram", chat, "migrated", new_chat_id="-100600")
    )
    moved = await chats.binding("telegram", "-100600")
    assert moved is not None and moved.group_code == "TDP01" and moved.active
    assert await chats.binding("telegram", "-600") is None
    await harness.router.dispatch_chat_event(
        harness.platform,
        ChatEvent("telegram", Chat("-100600", "group"), "removed", actor=actor),
    )
    gone = await chats.binding("telegram", "-100600")
    assert gone is not None and not gone.active and gone.group_code == "TDP01"


async def test_another_groups_leader_cannot_take_a_bound_chat(harness: Harness) -> None:
    await harness.grant("100", Role.LEADER, "TDP01")
    await harness.grant("200", Role.LEADER, "TDP02")
    await harness.say("/lienket TDP01", group=True, chat="-500", user="100")
    refused = await harness.say("/lienket TDP02", group=True, chat="-500", user="200")
    assert "thay cho" not in refused and "Đã gắn" not in refused
    binding = await harness.ctx.services.chats.binding("telegram", "-500")
    assert binding is not None and binding.group_code == "TDP01"
