"""The router: commands, aliases, guard, forms, errors, group manners."""

from __future__ import annotations

from datetime import timedelta

from bot.roles import Role
from bot.router import Ctx
from bot.services.tables import read_table
from tests.conftest import Harness
from tests.recording import message, press


async def test_unknown_command_gets_a_hint(harness: Harness) -> None:
    said = await harness.say("/khongco")
    assert "chưa hiểu lệnh /khongco" in said
    assert "/trogiup" in said


async def test_english_alias_runs_the_same_command(harness: Harness) -> None:
    assert await harness.say("/help") == await harness.say("/trogiup")


async def test_group_chatter_is_ignored(harness: Harness) -> None:
    await harness.say("chào cả nhà, mai họp tổ nhé", group=True)
    await harness.say("/trogiup@other_bot", group=True)
    assert harness.platform.said == []


async def test_group_command_addressed_to_us_is_answered(harness: Harness) -> None:
    said = await harness.say("/trogiup@cds_test_bot", group=True)
    assert "Các lệnh bạn dùng được" in said


async def test_unknown_command_in_group_is_silent_unless_addressed(harness: Harness) -> None:
    assert await harness.say("/abc", group=True) == ""
    assert "chưa hiểu lệnh /abc" in await harness.say("/abc@cds_test_bot", group=True)


async def test_guard_refuses_a_resident_and_says_why(harness: Harness) -> None:
    await harness.grant("100", Role.RESIDENT, "TDP01")
    said = await harness.say("/moi")
    assert "chỉ dành cho Tổ trưởng trở lên" in said
    assert "Cư dân" in said


async def test_guest_is_told_how_to_join(harness: Harness) -> None:
    said = await harness.say("/moi")
    assert "đường link mời" in said


async def test_private_only_command_in_group(harness: Harness) -> None:
    await harness.grant("100", Role.LEADER, "TDP01")
    said = await harness.say("/moi", group=True)
    assert "chỉ dùng khi nhắn riêng" in said


async def test_group_only_command_in_private(harness: Harness) -> None:
    await harness.grant("100", Role.LEADER, "TDP01")
    said = await harness.say("/lienket TDP01")
    assert "dùng trong nhóm chat" in said


async def test_a_failing_handler_is_answered_politely_and_the_bot_goes_on(
    harness: Harness, caplog: object
) -> None:
    async def boom(ctx: Ctx) -> None:
        raise RuntimeError("database on fire")

    harness.router.command("hong", boom, menu=False)
    said = await harness.say("/hong")
    assert "Xin lỗi, mình đang gặp trục trặc" in said
    assert "database on fire" not in said
    assert "Các lệnh bạn dùng được" in await harness.say("/trogiup")


async def test_stale_button_is_answered(harness: Harness) -> None:
    await harness.send(press("gone:1"))
    assert harness.platform.answered == [("cb-gone:1", "Nút này đã cũ. Bạn gõ lại lệnh nhé.")]


async def test_form_expires_and_the_person_is_told(harness: Harness) -> None:
    await harness.grant("100", Role.LEADER, "TDP01")
    await harness.say("/moi")
    await harness.send(press("invr:helper"))
    harness.clock.advance(timedelta(minutes=31))
    said = await harness.say("TDP01")
    assert "đã quá lâu" in said
    # The expired form is gone: the next text is an ordinary question again.
    assert "chưa có hướng dẫn nào đúng" in await harness.say("TDP01")


async def test_cancel_drops_the_form(harness: Harness) -> None:
    await harness.grant("100", Role.LEADER, "TDP01")
    await harness.say("/moi")
    assert "Đã hủy" in await harness.say("/huy")
    assert "Không có việc gì đang làm dở" in await harness.say("/cancel")


async def test_free_text_without_form_is_a_question(harness: Harness) -> None:
    await harness.send(message("con mèo nhà tôi bị lạc"))  # "xin chào" is small talk now
    assert "Hỏi cán bộ" in harness.platform.last.text
    assert "fb:ask" in harness.platform.last.payloads


async def test_odd_digits_and_huge_numbers_get_answers_not_crashes(harness: Harness) -> None:
    await harness.grant("300", Role.COORDINATOR)
    ward = await harness.ctx.services.places.ward_by_code("P1")
    assert ward is not None
    await harness.ctx.services.registry.import_table(ward.id, read_table(
        "code,group,head_name\nTDP01-001,TDP01,Nguyễn Văn An\n".encode()))
    answer = await harness.say("/ghi TDP01-001 vneid=²", user="300")
    assert "«²» không phải là số người" in answer
    huge = await harness.say("/theodoi PA-3000000000", user="300")
    assert "trục trặc" not in huge and huge
