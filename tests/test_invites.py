"""Invites: who may invite whom, the link and QR code, joining, limits and expiry."""

from __future__ import annotations

import re
from datetime import timedelta

from bot.roles import Role
from tests.conftest import Harness
from tests.recording import message, press


def code_of(text: str) -> str:
    match = re.search(r"start=([A-Z0-9]{8})", text)
    assert match, text
    return match.group(1)


async def test_leader_invites_a_helper_step_by_step_and_gets_link_and_qr(
    harness: Harness,
) -> None:
    await harness.grant("100", Role.LEADER, "TDP01")
    await harness.say("/moi")
    assert harness.platform.last.labels == ["Cư dân", "Thành viên tổ công nghệ số"]
    await harness.send(press("invr:helper"))
    assert harness.platform.last.labels == ["TDP01"]  # only the groups he leads
    await harness.send(press("inv:group:1"))
    assert "Bước 3/3" in harness.platform.last.text
    said = await harness.say("3")
    assert "Vai trò: Thành viên tổ công nghệ số — tổ TDP01 (Tổ dân phố 1)" in said
    assert "Dùng được: 3 người" in said
    qr = harness.platform.last.message.attachment
    assert qr is not None and qr.kind == "photo" and qr.data is not None
    assert qr.data.startswith(b"\x89PNG")
    code = code_of(said)

    joined = await harness.say(f"/start {code}", user="300", name="Lê Văn Cường")
    assert "Bạn đã tham gia với vai trò Thành viên tổ công nghệ số của Tổ dân phố 1" in joined
    assert "Thành viên tổ công nghệ số — tổ TDP01" in await harness.say("/quyen", user="300")


async def test_one_line_invite_with_limit_and_used_up(harness: Harness) -> None:
    await harness.grant("100", Role.COORDINATOR)
    said = await harness.say("/moi cudan TDP02 1")
    code = code_of(said)
    assert "Cư dân" in await harness.say(f"/start {code}", user="301")
    assert "đã dùng hết lượt" in await harness.say(f"/start {code}", user="302")
    # The same person opening the link again is told, and uses nothing.
    assert "rồi" in await harness.say(f"/start {code}", user="301")


async def test_invite_expires(harness: Harness) -> None:
    await harness.grant("100", Role.COORDINATOR)
    code = code_of(await harness.say("/moi totruong TDP01"))
    harness.clock.advance(timedelta(days=15))
    assert "đã hết hạn" in await harness.say(f"/start {code}", user="303")


async def test_unknown_code(harness: Harness) -> None:
    assert "không đúng" in await harness.say("/start ZZZZZZZZ", user="304")


async def test_leader_cannot_invite_a_coordinator_or_into_another_group(harness: Harness) -> None:
    await harness.grant("100", Role.LEADER, "TDP01")
    assert "Cách dùng" in await harness.say("/moi canbo")
    said = await harness.say("/moi tocds TDP02")
    assert "không mời được vai trò này cho tổ đó" in said
    # A forged button for a group he does not lead is refused too.
    await harness.say("/moi")
    await harness.send(press("invr:resident"))
    await harness.send(press("inv:group:2"))
    assert "không mời được" in await harness.say("5")


async def test_coordinator_invites_another_coordinator(harness: Harness) -> None:
    await harness.grant("100", Role.COORDINATOR)
    await harness.say("/moi")
    assert harness.platform.last.labels == ["Cư dân", "Thành viên tổ công nghệ số", "Tổ trưởng", "Cán bộ phường"]
    await harness.send(press("invr:coordinator"))
    assert harness.platform.last.labels == ["Chỉ 1 người"]
    await harness.send(press("inv:uses:0"))
    said = "\n".join(harness.platform.texts()[-2:])
    assert "Vai trò: Cán bộ phường, Phường Hòa Bình" in said
    assert "Dùng được: 1 người" in said  # a link that makes ward staff is for one person


async def test_an_invite_dies_with_its_makers_power(harness: Harness) -> None:
    await harness.grant("100", Role.LEADER, "TDP01")
    said = await harness.say("/moi tocds TDP01 5", user="100")
    code = re.search(r"start=([A-Z0-9]{8})", said)
    assert code, said
    await harness.say("/xoadulieu", user="100")
    await harness.send(press("fbd:yes", user="100"))  # the leader gives up his data and role
    joined = await harness.say(f"/start {code.group(1)}", user="777")
    assert "Thành viên tổ công nghệ số" not in await harness.say("/quyen", user="777")
    assert "Mã mời này không đúng hoặc đã bị hủy" in joined


async def test_bad_number_of_uses_is_asked_again(harness: Harness) -> None:
    await harness.grant("100", Role.COORDINATOR)
    await harness.say("/moi")
    await harness.send(press("invr:leader"))
    assert "gõ mã tổ" in harness.platform.last.text
    await harness.say("TDP09")
    assert "không tìm thấy tổ" in harness.platform.last.text
    await harness.say("tdp02")
    assert "Bước 3/3" in harness.platform.last.text
    assert "từ 1 đến 10.000" in await harness.say("nhiều lắm")
    assert "Dùng được: 40 người" in await harness.say("40")


async def test_every_invite_and_join_is_audited(harness: Harness) -> None:
    from sqlmodel import select

    from bot.models import AuditLog

    await harness.grant("100", Role.COORDINATOR)
    code = code_of(await harness.say("/moi cudan TDP01"))
    await harness.say(f"/start {code}", user="305")
    async with harness.ctx.db.session() as session:
        actions = [a.action for a in (await session.exec(select(AuditLog))).all()]
    assert actions.count("invite.create") == 1
    assert actions.count("invite.redeem") == 1
    assert actions.count("role.grant") == 2  # the coordinator (CLI) and the resident


async def test_inviting_in_a_group_chat_is_refused(harness: Harness) -> None:
    await harness.grant("100", Role.LEADER, "TDP01")
    await harness.send(message("/moi", group=True))
    assert "nhắn riêng" in harness.platform.last.text


async def test_revoking_an_invite(harness: Harness) -> None:
    await harness.grant("100", Role.LEADER, "TDP01")
    await harness.grant("200", Role.LEADER, "TDP02")
    said = await harness.say("/moi cudan TDP01", user="100")
    code = re.search(r"start=([A-Z0-9]{8})", said)
    assert code, said
    assert "Chỉ người tạo mã" in await harness.say(f"/moi huy {code.group(1)}", user="200")
    assert "Đã hủy mã mời" in await harness.say(f"/moi huy {code.group(1)}", user="100")
    assert "Mã mời này không đúng hoặc đã bị hủy" in await harness.say(
        f"/start {code.group(1)}", user="777")
