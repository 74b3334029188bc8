"""The terminal chat goes through the real router: type, read, press buttons by number."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.cli.shell import Shell
from bot.roles import Role
from tests.conftest import make_config, shared_content

# Each test's <tmp_path>/bot.db starts as a copy of the migrated template (conftest).
pytestmark = pytest.mark.usefixtures("sqlite_url")


def scripted(lines: list[str]) -> tuple[Iterator[str], list[str]]:
    return iter(lines), []


async def run_shell(tmp_path: Path, role: Role, lines: list[str]) -> str:
    feed = iter(lines)
    out: list[str] = []

    def read() -> str:
        try:
            return next(feed)
        except StopIteration:
            raise EOFError from None

    shell = Shell(
        make_config(f"sqlite+aiosqlite:///{tmp_path}/bot.db"), role=role, demo=True,
        read_line=read, write=out.append, files_dir=tmp_path / "files",
        content=shared_content(),
    )
    assert await shell.run() == 0
    return "\n".join(out)


async def test_leader_makes_an_invite_by_pressing_numbers(tmp_path: Path) -> None:
    out = await run_shell(tmp_path, Role.LEADER, ["/moi", "2", "1", "10", "/thoat", "never read"])
    assert "bạn đang là Tổ trưởng ở DEMO" in out
    assert "[1] Cư dân" in out and "[2] Thành viên tổ công nghệ số" in out
    assert "Vai trò: Thành viên tổ công nghệ số — tổ TDP01 (Tổ dân phố 1)" in out
    assert "Dùng được: 10 người" in out
    qr = list((tmp_path / "files").glob("moi-*.png"))
    assert len(qr) == 1 and qr[0].read_bytes().startswith(b"\x89PNG")
    assert "Tạm biệt" in out


async def test_resident_sees_resident_help_and_is_refused_invites(tmp_path: Path) -> None:
    out = await run_shell(tmp_path, Role.RESIDENT, ["/trogiup", "/moi"])
    assert "Các lệnh bạn dùng được (Cư dân)" in out
    assert "/moi —" not in out
    assert "chỉ dành cho Tổ trưởng trở lên" in out


async def test_demo_seeding_is_idempotent(tmp_path: Path) -> None:
    await run_shell(tmp_path, Role.COORDINATOR, [])
    out = await run_shell(tmp_path, Role.COORDINATOR, ["/moi totruong TDP04"])
    assert "tổ TDP04 (Tổ dân phố 4)" in out


def test_shell_command_line_with_piped_input(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bot", "--config", str(tmp_path / "none.toml"), "shell", "--demo",
         "--as", "coordinator"],
        input="/quyen\n/thoat\n", capture_output=True, text=True, timeout=60, check=False,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert "Cán bộ phường, phường DEMO" in result.stdout
    assert (tmp_path / "data" / "demo.db").exists()
    assert not (tmp_path / "data" / "bot.db").exists()


async def test_demo_ward_has_households_progress_and_a_campaign(tmp_path: Path) -> None:
    out = await run_shell(tmp_path, Role.COORDINATOR, ["/tiendo", "/chiendich", "/ho nguyen"])
    assert "Tiến độ cả phường" in out
    for code in ("TDP01", "TDP02", "TDP03", "TDP04"):
        assert f"{code} ▓" in out or f"{code} ░" in out
    assert "#1 Đợt 1: kích hoạt VNeID mức 2 — đang chạy" in out
    # 25 households of the demo ward match (names and addresses): 20 a page, then ▶
    assert "Có 25 hộ khớp với «nguyen» (gõ thêm chữ để tìm đúng hơn) · trang 1/2" in out
    again = await run_shell(tmp_path, Role.COORDINATOR, ["/chiendich"])
    assert again.count("Đợt 1: kích hoạt VNeID mức 2") == 1  # seeded once
