"""The demo shows everything: group chats whose posts the terminal shows, messages meant for
other people under a header naming them, polls typed on one line, --reset, Ctrl-C, and a
number typed as the answer to a question rather than a press of an old menu."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest

from bot.core import Capabilities, Role
from tests.conftest import Harness
from tests.test_shell import run_shell


async def test_a_notice_in_the_demo_reaches_the_group_chat_shown_in_the_terminal(
    tmp_path: Path,
) -> None:
    out = await run_shell(tmp_path, Role.LEADER, [
        "/thongbao Họp tổ tối thứ Bảy lúc 19 giờ tại nhà văn hóa", "3"])
    assert "Xin chào Lê Thị Hoa" in out  # the person at the keyboard has a name
    assert "📣 [nhóm TDP01] bot đăng vào nhóm chat của Tổ dân phố 1:" in out
    posted = out.split("📣 [nhóm TDP01]")[1]
    assert "   │ Họp tổ tối thứ Bảy lúc 19 giờ tại nhà văn hóa" in posted


async def test_messages_for_other_people_name_them(tmp_path: Path) -> None:
    # Revoke the TDP01 leader: the bot tells him, and the terminal shows it was for him.
    out = await run_shell(tmp_path, Role.COORDINATOR, ["/thuhoi", "5", "1", "1"])
    assert "[5] Trần Văn Bình · Tổ trưởng" in out
    assert "→ gửi tới Trần Văn Bình (tổ trưởng TDP01):\n   │ Quyền Tổ trưởng tổ TDP01" in out


async def test_poll_options_on_one_line_and_remind_now_reach_the_groups(tmp_path: Path) -> None:
    out = await run_shell(tmp_path, Role.COORDINATOR, [
        "/khaosat Họp tổ vào buổi nào?", "Tối thứ Bảy; Tối Chủ nhật; Sáng Chủ nhật", "1", "8"])
    for code in ("TDP01", "TDP02", "TDP03", "TDP04"):
        posted = out.split(f"📣 [nhóm {code}]")
        assert len(posted) == 2, code
        assert "   │ Họp tổ vào buổi nào?" in posted[1]
    reminded = await run_shell(tmp_path, Role.COORDINATOR, ["/chiendich", "2"])
    assert "[2] 📣 Nhắc ngay #1" in reminded
    assert reminded.count("📣 [nhóm TDP0") == 4


def test_reset_and_ctrl_c(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONFAULTHANDLER": "1"}
    cmd = [sys.executable, "-m", "bot", "--config", str(tmp_path / "none.toml"), "shell",
           "--demo", "--as", "leader"]
    first = subprocess.run(cmd, input="/moi cudan TDP01 5\n/thoat\n", capture_output=True,
                           text=True, timeout=60, check=False, cwd=tmp_path, env=env)
    assert "Dùng được: 5 người" in first.stdout  # an invite, in the demo ward
    assert first.returncode == 0, first.stderr
    assert "INFO" not in first.stdout and "WARNING" not in first.stdout  # logs: data/shell.log
    assert (tmp_path / "data" / "shell.log").exists()
    refused = subprocess.run([*cmd[:5], "shell", "--reset"], capture_output=True, text=True,
                             timeout=60, check=False, cwd=tmp_path, env=env)
    assert refused.returncode == 1
    assert refused.stderr.strip().startswith("cds-bot: --reset chỉ dùng với --demo")
    with subprocess.Popen([*cmd, "--reset"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, cwd=tmp_path, env=env) as process:
        assert process.stdout is not None and process.stderr is not None
        deadline = time.monotonic() + 60
        seen = ""
        while "Lê Thị Hoa" not in seen and time.monotonic() < deadline:
            seen += process.stdout.readline()
        process.send_signal(signal.SIGINT)  # stdin stays open: input() is blocked
        started = time.monotonic()
        try:
            code = process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGABRT)  # faulthandler prints where every thread is
            pytest.fail(f"Ctrl-C did not end the shell: {process.communicate()[1][-4000:]}")
        assert time.monotonic() - started < 10
        stderr = process.stderr.read()
    assert code == 130
    assert "Traceback" not in stderr
    import sqlite3

    demo = sqlite3.connect(tmp_path / "data" / "demo.db")
    try:  # --reset started the demo afresh: the first run's invite is gone
        assert demo.execute("SELECT count(*) FROM invite").fetchone() == (0,)
    finally:
        demo.close()


async def test_a_number_answers_the_open_question_not_an_old_menu(harness: Harness) -> None:
    harness.platform.capabilities = Capabilities(buttons=False, edit=False, documents=False,
                                                 photos=False, max_text=2000, markup="plain")
    await harness.grant("100", Role.LEADER, "TDP01")
    shown = await harness.say("/start")
    assert "1. " in shown  # the greeting's menu, as a numbered list
    harness.clock.advance(timedelta(seconds=5))
    assert "nội dung thông báo" in await harness.say("/thongbao")
    harness.clock.advance(timedelta(seconds=5))
    answered = await harness.say("2")
    assert "Bước" in answered or "2" in answered
    assert "nội dung thông báo" not in answered  # taken as the notice's text, not a press
