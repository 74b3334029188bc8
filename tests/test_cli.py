"""The operator's command line: wards, groups, grants, and the first run without a token."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bot.cli.main import main


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(f'[database]\nurl = "sqlite+aiosqlite:///{tmp_path}/bot.db"\n', encoding="utf-8")
    return path


def cli(config: Path, *args: str) -> int:
    return main(["--config", str(config), *args])


def test_ward_group_grant_and_list(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(config, "db", "upgrade") == 0
    assert cli(config, "ward", "add", "hb", "Phường Hòa Bình") == 0
    assert cli(config, "group", "add", "HB", "TDP01", "Tổ dân phố 1") == 0
    assert cli(config, "grant", "leader", "--user", "42", "--ward", "HB", "--group", "tdp01") == 0
    assert cli(config, "grant", "coordinator", "--user", "43", "--ward", "HB") == 0
    assert cli(config, "grant", "coordinator", "--platform", "zalo_oa", "--user", "oa-77",
               "--ward", "HB") == 0
    assert cli(config, "ward", "list") == 0
    out = capsys.readouterr().out
    # The command line speaks Vietnamese, like the bot, and names the ward every time.
    assert "Đã thêm phường HB: Phường Hòa Bình." in out
    assert "Đã thêm tổ TDP01 vào phường HB: Tổ dân phố 1." in out
    assert "telegram 42 giờ là Tổ trưởng tổ TDP01 ở phường HB." in out
    assert "telegram 43 giờ là Cán bộ phường cả phường ở phường HB." in out
    assert "zalo_oa oa-77 giờ là Cán bộ phường cả phường ở phường HB." in out
    assert "HB\tPhường Hòa Bình\t1 tổ: TDP01" in out


def test_operator_mistakes_are_one_line(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(config, "group", "add", "NOPE", "TDP01", "x") == 1
    assert cli(config, "ward", "add", "HB", "Phường") == 0
    assert cli(config, "ward", "add", "HB", "Phường") == 1
    assert cli(config, "grant", "helper", "--user", "1", "--ward", "HB") == 1
    assert cli(config, "ward", "add", "bad code!", "x") == 1
    assert cli(config, "grant", "coordinator", "--user", "@lan", "--ward", "HB") == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "cds-bot: không có phường NOPE (xem: cds-bot ward list).",
        "cds-bot: phường HB đã có rồi.",
        "cds-bot: vai trò Thành viên tổ công nghệ số cần --group (cấp theo từng tổ).",
        "cds-bot: mã «BAD CODE!» chỉ gồm chữ, số, dấu - hoặc _ (tối đa 32 ký tự).",
        "cds-bot: --user phải là mã người dùng telegram của người đó (trên Telegram là một dãy "
        "số, người đó gõ /quyen để xem), không phải tên. Dễ hơn: cds-bot invite coordinator "
        "--ward MÃ_PHƯỜNG.",
    ]


def test_run_without_token_explains_botfather_and_the_terminal_chat(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bot", "run"], capture_output=True, text=True, timeout=60,
        check=False, cwd=tmp_path, stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 2
    assert "config.toml: telegram.token: missing" in result.stderr
    assert "@BotFather" in result.stderr
    assert "cds-bot shell --demo" in result.stderr
    assert "Traceback" not in result.stderr


def test_console_script_is_installed() -> None:
    script = Path(sys.executable).parent / "cds-bot"
    result = subprocess.run([str(script), "--help"], capture_output=True, text=True, check=False)
    assert result.returncode == 0
    assert "shell" in result.stdout and "grant" in result.stdout


def test_help_loads_no_heavy_module() -> None:
    """`cds-bot --help` stays instant: the app, SQLAlchemy, alembic, Jinja2 and openpyxl are
    imported by the subcommands that use them, not by the command line itself."""
    probe = (
        "import sys\n"
        "from bot.cli.main import main\n"
        "try:\n"
        "    main(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = ('bot.app', 'sqlalchemy', 'alembic', 'jinja2', 'openpyxl', 'telegram', 'aiohttp')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy or m == 'bot.app'))\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            check=False)
    assert result.returncode == 0, result.stderr
    assert "shell" in result.stdout
    assert result.stdout.strip().splitlines()[-1] == "[]"
