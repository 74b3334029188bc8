"""People and roles: /canbo lists the ward's staff, /thuhoi takes a role away (person, role,
confirm), a revoked person loses it at their next message, admins pick a ward, and the
operator's `cds-bot revoke` / `cds-bot invite`."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlmodel import col, select

from bot.cli.main import main
from bot.cli.shell import Shell
from bot.core import Role
from bot.models import AuditLog, Member, RoleGrant
from tests.conftest import Harness, make_config, shared_content
from tests.recording import message, press


async def audit_actions(harness: Harness) -> list[str]:
    async with harness.ctx.db.session() as session:
        return [a.action for a in (await session.exec(select(AuditLog))).all()]


async def staff_team(harness: Harness) -> None:
    await harness.grant("100", Role.COORDINATOR)
    await harness.say("/start", user="100")  # Nguyễn Văn An
    await harness.grant("200", Role.LEADER, "TDP01")
    await harness.say("/start", user="200", name="Trần Văn Bình")
    await harness.grant("300", Role.HELPER, "TDP02")
    await harness.grant("300", Role.LEADER, "TDP02")
    await harness.say("/start", user="300", name="Lê Thị Cúc")
    await harness.grant("400", Role.COORDINATOR, ward="P2")  # another ward: never listed


async def test_staff_list_shows_the_wards_people_with_their_roles(harness: Harness) -> None:
    await staff_team(harness)
    said = await harness.say("/canbo")
    assert "Cán bộ phường P1 — 3 người" in said
    assert "1. Nguyễn Văn An: Cán bộ phường\n" in said
    assert "Lê Thị Cúc: Thành viên tổ công nghệ số TDP02, Tổ trưởng TDP02" in said
    assert "Trần Văn Bình: Tổ trưởng TDP01" in said
    assert "400" not in said
    assert "chỉ dành cho Cán bộ phường" in await harness.say("/canbo", user="200")


async def test_coordinator_revokes_a_leader_who_loses_the_role_at_once(harness: Harness) -> None:
    await staff_team(harness)
    # A leader can broadcast...
    assert "nội dung thông báo" in await harness.say("/thongbao", user="200",
                                                      name="Trần Văn Bình")
    await harness.say("/thuhoi")
    labels = harness.platform.last.labels
    assert labels[:2] == ["Lê Thị Cúc · Tổ trưởng (+1)", "Trần Văn Bình · Tổ trưởng"]
    assert "Nguyễn Văn An" not in " ".join(labels)  # never yourself
    person = harness.platform.last.payloads[1]
    await harness.send(press(person))
    assert harness.platform.last.labels[0] == "Tổ trưởng · TDP01"
    await harness.send(press(harness.platform.last.payloads[0]))
    assert "Thu hồi quyền Tổ trưởng tổ TDP01 của Trần Văn Bình?" in harness.platform.last.text
    confirm = harness.platform.last.payloads[0]
    before = len(harness.platform.said)
    await harness.send(press(confirm))
    said = harness.platform.said[before:]
    assert any("Đã thu hồi quyền Tổ trưởng tổ TDP01 của Trần Văn Bình" in s.text for s in said)
    told = [s for s in said if s.chat_id == "200"]
    assert told and "Quyền Tổ trưởng tổ TDP01 của bạn ở Phường Hòa Bình đã được thu hồi" in \
        told[0].text
    # The very next message runs without the role.
    assert "Việc này dành cho người đã tham gia tổ" in await harness.say("/thongbao", user="200",
                                                                         name="Trần Văn Bình")
    assert "Trần Văn Bình" not in await harness.say("/canbo")
    assert (await audit_actions(harness)).count("role.revoke") == 1
    assert "role.grant" in await audit_actions(harness)
    # Pressing the old confirm button again changes nothing.
    assert "không còn nữa" in await _press_text(harness, confirm)
    assert (await audit_actions(harness)).count("role.revoke") == 1


async def _press_text(harness: Harness, payload: str, user: str = "100") -> str:
    before = len(harness.platform.said)
    await harness.send(press(payload, user=user))
    return "\n".join(s.text for s in harness.platform.said[before:])


async def test_revoke_is_scoped_to_the_ward_and_never_yourself(harness: Harness) -> None:
    await staff_team(harness)
    async with harness.ctx.db.session() as session:
        grants = {
            (m.platform_user_id, g.role): g.id
            for g, m in (await session.exec(
                select(RoleGrant, Member).join(Member, col(Member.id) == col(RoleGrant.member_id))
            )).all()
        }
    other_ward = grants[("400", "coordinator")]
    own = grants[("100", "coordinator")]
    assert "không còn nữa" in await _press_text(harness, f"st:y:{other_ward}")
    assert "không tự thu hồi" in await _press_text(harness, f"st:y:{own}")
    # A leader forging the press is refused by the route guard.
    leader_grant = grants[("200", "leader")]
    assert "chỉ dành cho Cán bộ phường" in await _press_text(
        harness, f"st:y:{leader_grant}", user="300"
    )
    assert "nội dung thông báo" in await harness.say("/thongbao", user="200",
                                                      name="Trần Văn Bình")  # still a leader
    assert "role.revoke" not in await audit_actions(harness)


async def test_long_staff_lists_page_within_platform_limits(harness: Harness) -> None:
    await harness.grant("100", Role.COORDINATOR)
    for n in range(30):
        await harness.grant(str(500 + n), Role.HELPER, "TDP01")
    await harness.say("/thuhoi")
    first = harness.platform.last
    rows = first.message.buttons
    assert len(first.payloads) == 8 + 1 + 1  # eight people, "next", "stop"
    assert all(len(r) <= 8 for r in rows)
    assert all(len(p.encode()) <= 64 for p in first.payloads)
    assert "trang 1/4" in first.text
    await harness.send(press("st:r:3"))
    assert "trang 4/4" in harness.platform.last.text
    assert len(harness.platform.last.payloads) == 6 + 1 + 1  # six people, "back", "stop"
    listed = await harness.say("/canbo")
    assert "31 người (trang 1/2)" in listed
    await harness.send(press("st:l:1"))
    assert "21. " in harness.platform.last.text and "31. " in harness.platform.last.text


async def test_admin_from_config_picks_a_ward_instead_of_being_told_no_ward(
    harness: Harness,
) -> None:
    # 999 is in [admins] (see the harness) and holds no grant; there are two wards.
    said = await harness.say("/tiendo", user="999")
    assert "Bạn chưa thuộc phường nào" not in said
    assert "Bạn đang làm việc với phường nào?" in said
    assert harness.platform.last.labels == ["P1 · Phường Hòa Bình", "P2 · Phường Bên Cạnh"]
    before = len(harness.platform.said)
    await harness.send(press(harness.platform.last.payloads[0], user="999"))
    shown = "\n".join(s.text for s in harness.platform.said[before:])
    assert "Bạn đang làm việc với Phường Hòa Bình (P1)" in shown
    assert "Tiến độ cả phường" in shown  # /tiendo ran again, in P1
    # The choice is remembered: /moi and /ghi work straight away.
    assert "Bước 1" in await harness.say("/moi", user="999")
    assert "Bạn chưa thuộc phường nào" not in await harness.say("/ghi", user="999")
    assert "Phường Bên Cạnh" in await harness.say("/phuong P2", user="999")
    assert "Cán bộ phường P2" in await harness.say("/canbo", user="999")


async def test_admin_with_one_ward_needs_no_choice(tmp_path: Path, harness: Harness) -> None:
    from bot.context import build_context
    from bot.db import Database
    from bot.router import Router
    from handlers import register_all
    from tests.recording import RecordingPlatform

    db = Database(f"sqlite+aiosqlite:///{tmp_path}/one.db")
    await db.upgrade()
    try:
        ctx = build_context(make_config(db.url, telegram=[999]), db, harness.clock)
        router = Router(ctx)
        register_all(router)
        platform = RecordingPlatform()
        router.attach(platform)
        await ctx.services.places.add_ward("SOLO", "Phường Duy Nhất")
        await router.dispatch(platform, message("/tiendo", user="999"))
        assert "Tiến độ cả phường" in platform.last.text
    finally:
        await db.dispose()


# --- the operator's command line ---------------------------------------------------------


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(f'[database]\nurl = "sqlite+aiosqlite:///{tmp_path}/bot.db"\n',
                    encoding="utf-8")
    return path


def test_cli_revoke_and_config_after_the_subcommand(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["ward", "add", "HB", "Phường Hòa Bình", "--config", str(config)]) == 0
    assert main(["group", "add", "HB", "TDP01", "Tổ 1", f"--config={config}"]) == 0
    assert main(["grant", "leader", "--user", "42", "--ward", "HB", "--group", "TDP01",
                 "--config", str(config)]) == 0
    capsys.readouterr()
    assert main(["revoke", "leader", "--user", "42", "--ward", "hb", "--config", str(config)]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert out == ["Đã thu hồi quyền Tổ trưởng tổ TDP01 của telegram 42 (telegram 42) ở phường "
                   "HB. Người này không dùng được quyền đó nữa, ngay từ tin nhắn tiếp theo."]
    assert main(["--config", str(config), "revoke", "leader", "--user", "42", "--ward", "HB"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["cds-bot: telegram 42 không có quyền Tổ trưởng ở phường HB, nên không có gì "
                   "để thu hồi."]
    assert main(["revoke", "leader", "--user", "42", "--ward", "NOPE",
                 "--config", str(config)]) == 1
    assert capsys.readouterr().err.strip() == (
        "cds-bot: không có phường NOPE (xem: cds-bot ward list).")


async def test_cli_revoke_is_audited_and_applies_at_once(
    config: Path, tmp_path: Path, harness: Harness
) -> None:
    await harness.grant("42", Role.COORDINATOR)
    assert "Cán bộ phường" in await harness.say("/quyen", user="42")
    cfg = tmp_path / "h.toml"
    cfg.write_text(f'[database]\nurl = "{harness.ctx.db.url}"\n', encoding="utf-8")
    import asyncio

    code = await asyncio.to_thread(main, ["revoke", "coordinator", "--user", "42", "--ward", "P1",
                                          "--config", str(cfg)])
    assert code == 0
    assert "dành cho người đã tham gia tổ" in await harness.say("/canbo", user="42")
    assert "role.revoke" in await audit_actions(harness)


def test_cli_invite_prints_a_one_time_link_and_qr(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--config", str(config), "ward", "add", "HB", "Phường Hòa Bình"]) == 0
    capsys.readouterr()
    assert main(["invite", "coordinator", "--ward", "HB", "--bot-username", "@phuong_hb_bot",
                 "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "Mã mời Cán bộ phường phường HB (Phường Hòa Bình)" in out
    match = re.search(r"https://t\.me/phuong_hb_bot\?start=([A-Z0-9]{8})", out)
    assert match, out
    assert "█" in out or "▀" in out  # the QR code, drawn in the terminal
    assert main(["invite", "coordinator", "--ward", "HB", "--config", str(config)]) == 0
    assert "gõ: /start" in capsys.readouterr().out
    assert main(["invite", "leader", "--ward", "HB", "--config", str(config)]) == 1
    assert capsys.readouterr().err.strip() == (
        "cds-bot: Mời tổ trưởng thì cần --group (mã tổ, ví dụ --group TDP01)."
    )


async def test_cli_invite_code_makes_a_coordinator(tmp_path: Path, harness: Harness) -> None:
    import asyncio

    cfg = tmp_path / "h.toml"
    cfg.write_text(f'[database]\nurl = "{harness.ctx.db.url}"\n', encoding="utf-8")
    out: list[str] = []

    def run() -> int:
        import contextlib
        import io

        buffer = io.StringIO()
        with contextlib.redirect_stdout(buffer):
            code = main(["invite", "coordinator", "--ward", "P1", "--config", str(cfg)])
        out.append(buffer.getvalue())
        return code

    assert await asyncio.to_thread(run) == 0
    code = re.search(r"/start ([A-Z0-9]{8})", out[0])
    assert code, out[0]
    joined = await harness.say(f"/start {code.group(1)}", user="77", name="Ngô Văn Mới")
    assert "Cán bộ phường" in joined
    assert "Cán bộ phường P1 — 1 người" in await harness.say("/canbo", user="77")


async def test_shell_on_a_real_database_leaves_no_role_behind(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/real.db"
    lines = iter(["/quyen"])

    def read() -> str:
        try:
            return next(lines)
        except StopIteration:
            raise EOFError from None

    out: list[str] = []
    shell = Shell(make_config(url), role=Role.COORDINATOR, demo=False, read_line=read,
                  write=out.append, files_dir=tmp_path / "f", content=shared_content())
    await shell.db.upgrade()
    await shell.context.services.places.add_ward("HB", "Phường Hòa Bình")
    assert await shell.run() == 0
    assert "Cán bộ phường" in "\n".join(out)
    from bot.db import Database

    db = Database(url)
    try:
        async with db.session() as session:
            active = (await session.exec(
                select(RoleGrant).where(col(RoleGrant.revoked_at).is_(None))
            )).all()
        assert active == []
    finally:
        await db.dispose()


async def test_staff_list_is_never_shown_in_a_group_chat(harness: Harness) -> None:
    await staff_team(harness)
    said = await harness.say("/canbo@cds_test_bot", group=True)
    assert "Trần Văn Bình" not in said and "chỉ dùng khi nhắn riêng với mình" in said


async def test_an_admin_signs_in_to_the_dashboard_of_the_chosen_ward(harness: Harness) -> None:
    from aiohttp import web
    from aiohttp.test_utils import TestClient, TestServer

    from bot.web.dashboard.routes import Dashboard

    config = harness.ctx.config
    web_config = config.web.model_copy(update={"public_url": "https://bot.example.vn"})
    object.__setattr__(harness.ctx, "config", config.model_copy(update={"web": web_config}))
    await harness.say("/phuong P2", user="999")
    said = await harness.say("/dashboard", user="999")
    path = re.search(r"https://bot\.example\.vn(/login/[\w-]+)", said)
    assert path, said
    app = web.Application()
    Dashboard(harness.ctx, secret="test-secret", secure_cookie=False).install(app)
    async with TestClient(TestServer(app)) as client:
        page = await client.get(path.group(1))
        form = re.search(r'name="login" value="([^"]+)"', await page.text())
        assert form
        signed = await client.post(path.group(1), data={"login": form.group(1)})
        assert signed.status == 200
        assert "Phường Bên Cạnh" in await signed.text()
