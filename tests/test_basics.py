"""Greeting, help by role, who-am-I: what each kind of person sees."""

from __future__ import annotations

from bot.roles import Role
from tests.conftest import Harness
from tests.recording import message, press


async def test_guest_greeting_explains_how_to_join(harness: Harness) -> None:
    await harness.send(message("/start", name="Trần Thị Bình"))
    said = harness.platform.last
    assert "Xin chào Trần Thị Bình" in said.text
    assert "đường link mời" in said.text
    assert said.labels == ["📖 Hỏi đáp", "✍️ Góp ý, phản ánh", "❓ Trợ giúp"]


async def test_leader_greeting_names_role_and_group_with_menu(harness: Harness) -> None:
    await harness.grant("100", Role.LEADER, "TDP01")
    await harness.send(message("/start"))
    said = harness.platform.last
    assert "Bạn là Tổ trưởng của tổ TDP01" in said.text
    assert said.payloads == ["menu:thongbao", "menu:tiendo", "menu:moi", "menu:trogiup"]


async def test_menu_button_runs_its_command(harness: Harness) -> None:
    await harness.grant("100", Role.LEADER, "TDP01")
    await harness.send(press("menu:trogiup"))
    assert "Các lệnh bạn dùng được (Tổ trưởng)" in harness.platform.last.text


async def test_help_lists_exactly_the_commands_of_the_role(harness: Harness) -> None:
    resident = await harness.say("/trogiup", user="201")
    await harness.grant("202", Role.LEADER, "TDP01")
    leader = await harness.say("/trogiup", user="202")
    assert "/moi" not in resident and "/moi — Tạo đường link" in leader
    assert "/quyen — Xem bạn là ai" in resident
    assert "/lienket —" not in leader  # a group-chat command is not offered in private
    assert "/lienket — Gắn nhóm chat" in await harness.say("/trogiup", user="202", group=True)
    assert "/start" not in resident


async def test_whoami_shows_roles_and_scopes(harness: Harness) -> None:
    await harness.grant("100", Role.HELPER, "TDP02")
    await harness.grant("100", Role.LEADER, "TDP01")
    said = await harness.say("/quyen")
    assert "Thành viên tổ công nghệ số — tổ TDP02, phường P1" in said
    assert "Tổ trưởng — tổ TDP01, phường P1" in said
    assert "/moi" in said


async def test_whoami_for_admin_from_config(harness: Harness) -> None:
    said = await harness.say("/whoami", user="999")
    assert "Bạn là quản trị hệ thống" in said


async def test_user_text_is_escaped_in_html(harness: Harness) -> None:
    await harness.send(message("/start", name="<b>Hacker</b> & co"))
    html = harness.platform.last.message.text
    assert "&lt;b&gt;Hacker&lt;/b&gt; &amp; co" in html
