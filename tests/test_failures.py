"""Failures an operator meets, each one clear line and the service going on where it can:
a refused token (never printed), no network at start, PostgreSQL without its role or
database, an export to a missing folder, a full disk; and /healthz telling the truth."""

from __future__ import annotations

import asyncio
import logging
import socket
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import sqlalchemy as sa
from sqlalchemy import make_url

from bot.app import BotApp
from bot.cli.main import main
from bot.config import Config
from bot.core import Role
from tests.conftest import Harness, shared_content
from tests.fake_telegram import FakeTelegram

REAL_LOOKING_TOKEN = "987654321:AAHwrongTOKENwrongTOKENwrongTOKEN12"
SECRET_PART = REAL_LOOKING_TOKEN.split(":")[1]


def write_config(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(body, encoding="utf-8")
    return path


async def run_cli(*args: str, cwd: Path) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", *args, cwd=cwd, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_a_refused_token_is_one_line_and_never_printed(tmp_path: Path) -> None:
    async with FakeTelegram(token="123456:the-right-token-abcdefghijkl") as tg:
        config = write_config(tmp_path, (
            f'[database]\nurl = "sqlite+aiosqlite:///{tmp_path}/bot.db"\n'
            f'[telegram]\ntoken = "{REAL_LOOKING_TOKEN}"\napi_base_url = "{tg.base_url}"\n'
            '[web]\nport = 0\n[bot]\nlog_level = "DEBUG"\n'
        ))
        code, out, err = await run_cli("run", "--config", str(config), cwd=tmp_path)
    assert code == 2
    assert "Traceback" not in err
    assert SECRET_PART not in out + err
    assert err.strip().splitlines()[-1] == (
        "cds-bot: telegram: máy chủ telegram từ chối token (sai, hoặc đã bị thu hồi). Lấy token "
        "mới (Telegram: @BotFather → /token) rồi sửa tệp cấu hình hoặc biến môi trường."
    )


def test_log_records_mask_tokens_even_inside_tracebacks(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from bot.logs import RedactSecrets

    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RedactSecrets(["zalo-secret-token-123456"]))
    handler.setFormatter(logging.Formatter("%(message)s"))
    log = logging.getLogger("test.redact")
    log.addHandler(handler)
    log.propagate = False
    try:
        log.warning("GET https://api.telegram.org/bot%s/getMe failed", REAL_LOOKING_TOKEN)
        try:
            raise RuntimeError("https://bot-api.zaloplatforms.com/botzalo-secret-token-123456/x")
        except RuntimeError:
            log.exception("zalo said no")
    finally:
        log.removeHandler(handler)
    err = capsys.readouterr().err
    assert SECRET_PART not in err and "zalo-secret-token-123456" not in err
    assert "https://api.telegram.org/bot***/getMe failed" in err
    assert "botzalo" not in err or "bot***" in err


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def health(app: BotApp) -> tuple[int, dict[str, Any]]:
    assert app.web is not None
    async with aiohttp.ClientSession() as http, \
            http.get(f"http://127.0.0.1:{app.web.port}/healthz") as response:
        return response.status, await response.json()


async def until(condition: Callable[[], bool]) -> None:
    for _ in range(500):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition never came true")


async def test_no_network_at_start_serves_503_and_retries_until_it_connects(
    tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    port = free_port()  # nothing listens here yet: "no network"
    token = "123456:TEST-TOKEN-abcdefghijklmnop"
    config = Config.model_validate({
        "database": {"url": f"sqlite+aiosqlite:///{tmp_path}/bot.db"},
        "telegram": {"token": token, "api_base_url": f"http://127.0.0.1:{port}/bot"},
        "web": {"port": 0},
    })
    app = BotApp(config, content=shared_content())
    waits: list[float] = []
    gate = asyncio.Event()

    async def sleep(seconds: float) -> None:  # the retry loop waits on the test, not the clock
        waits.append(seconds)
        await gate.wait()
        gate.clear()

    app.sleep = sleep
    caplog.set_level(logging.INFO)
    await app.start()  # starts although Telegram cannot be reached
    try:
        status, body = await health(app)
        assert status == 503
        assert body["platforms"]["telegram"] == {"last_success": None, "problem": "unreachable"}
        for _ in range(3):  # three more failed tries within the minute: no new log line
            gate.set()
            tries = len(waits)
            await until(lambda tries=tries: len(waits) > tries)  # type: ignore[misc]
        assert waits[:4] == [5.0, 10.0, 20.0, 40.0]
        lines = [r for r in caplog.records if "chưa kết nối được" in r.getMessage()]
        assert len(lines) == 1 and lines[0].exc_info is None
        async with FakeTelegram(token=token, port=port):
            gate.set()
            await until(lambda: "telegram" not in app.context.metrics.down)
            status, body = await health(app)
            assert status == 200, body
            assert body["platforms"]["telegram"]["last_success"] is not None
    finally:
        await app.stop()


async def test_an_idle_healthy_bot_has_a_last_success(tmp_path: Path) -> None:
    async with FakeTelegram() as tg:
        app = BotApp(Config.model_validate({
            "database": {"url": f"sqlite+aiosqlite:///{tmp_path}/bot.db"},
            "telegram": {"token": tg.token, "api_base_url": tg.base_url},
            "web": {"port": 0},
        }), content=shared_content())
        await app.start()
        try:
            status, body = await health(app)  # no message has arrived
        finally:
            await app.stop()
    assert status == 200
    assert body["platforms"]["telegram"]["last_success"] is not None


@pytest.mark.postgres
async def test_postgres_without_its_role_or_database_says_what_to_create(
    tmp_path: Path, pg_url: str, capsys: pytest.CaptureFixture[str],
) -> None:
    base = make_url(pg_url)
    no_role = base.set(username="cds_nobody_here", database="cds").render_as_string(False)
    no_db = base.set(database="cds_no_such_db").render_as_string(False)
    for url in (no_role, no_db):
        config = write_config(tmp_path, f'[database]\nurl = "{url}"\n')
        code = await asyncio.to_thread(main, ["db", "upgrade", "--config", str(config)])
        assert code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "cds-bot: PostgreSQL chưa có người dùng (role) «cds_nobody_here». Tạo bằng: sudo -u "
        "postgres createuser --pwprompt cds_nobody_here  rồi: sudo -u postgres createdb -O "
        "cds_nobody_here cds  (xem docs/operations.md).",
        "cds-bot: PostgreSQL chưa có cơ sở dữ liệu «cds_no_such_db». Tạo bằng: sudo -u postgres "
        f"createdb -O {base.username or 'cds'} cds_no_such_db  (xem docs/operations.md).",
    ]


def test_export_to_a_missing_folder_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    config = write_config(tmp_path, f'[database]\nurl = "sqlite+aiosqlite:///{tmp_path}/b.db"\n')
    assert main(["ward", "add", "HB", "Phường Hòa Bình", "--config", str(config)]) == 0
    target = tmp_path / "khong-co" / "tiendo.xlsx"
    assert main(["export", "progress", "--ward", "HB", "-o", str(target),
                 "--config", str(config)]) == 1
    assert capsys.readouterr().err.strip() == (
        f"cds-bot: Thư mục «{target.parent}» không có. Tạo thư mục trước, hoặc chọn chỗ lưu khác "
        "với -o (phường HB)."
    )
    assert main(["export", "progress", "--ward", "HB", "--format", "csv",
                 "-o", str(tmp_path / "ok.csv"), "--config", str(config)]) == 0
    assert "Đã ghi 0 hộ của phường HB vào" in capsys.readouterr().out


def fill_the_disk(url: str) -> Callable[[Any, Any], None]:
    """SQLite refuses to grow past the pages it has: exactly what a full disk looks like."""

    def limit(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA page_count")
        pages = cursor.fetchone()[0]
        cursor.execute(f"PRAGMA max_page_count = {max(pages, 1)}")
        cursor.close()

    return limit


HOUSEHOLDS = "code,group,head_name,address,members,phone\n" + "".join(
    f"TDP01-{n:03d},TDP01,Nguyễn Thị Riêng Tư {n},{n} Đường Bí Mật,3,0912{n:06d}\n"
    for n in range(1, 400)
)


def test_import_on_a_full_disk_is_one_line_without_personal_data(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = write_config(tmp_path, f'[database]\nurl = "sqlite+aiosqlite:///{tmp_path}/b.db"\n')
    assert main(["ward", "add", "HB", "Phường Hòa Bình", "--config", str(config)]) == 0
    assert main(["group", "add", "HB", "TDP01", "Tổ 1", "--config", str(config)]) == 0
    capsys.readouterr()
    import bot.db

    original = bot.db._sqlite_pragmas

    def pragmas(dbapi_connection: Any, record: Any) -> None:
        original(dbapi_connection, record)
        fill_the_disk("")(dbapi_connection, record)

    monkeypatch.setattr(bot.db, "_sqlite_pragmas", pragmas)
    sheet = tmp_path / "ho.csv"
    sheet.write_text(HOUSEHOLDS, encoding="utf-8")
    code = main(["import", "households", str(sheet), "--ward", "HB", "--config", str(config)])
    out, err = capsys.readouterr()
    assert code == 1
    assert err.strip().splitlines() == [
        f"cds-bot: Không ghi được vào cơ sở dữ liệu sqlite+aiosqlite:///{tmp_path}/b.db: ổ đĩa "
        "đã đầy. Giải phóng chỗ trống rồi chạy lại; không dữ liệu nào bị mất."
    ]
    assert "Riêng Tư" not in out + err and "0912" not in out + err


async def test_a_failing_database_turns_healthz_503_and_logs_no_personal_data(
    harness: Harness, caplog: pytest.LogCaptureFixture,
) -> None:
    from bot.metrics import Metrics
    from bot.web.server import WebServer

    await harness.grant("100", Role.COORDINATOR)
    ward = await harness.ctx.services.places.ward_by_code("P1")
    assert ward is not None
    db = harness.ctx.db
    sa.event.listen(db.engine.sync_engine, "connect", fill_the_disk(db.url))
    await db.engine.dispose()  # new connections: the disk is now "full"
    metrics: Metrics = harness.ctx.metrics
    web = WebServer(db, metrics, [], host="127.0.0.1", port=0)
    await web.start()
    try:
        caplog.set_level(logging.INFO)
        text = "/gopy Nhà bà Nguyễn Thị Riêng Tư số 0912345678 ở 5 Đường Bí Mật "
        said = [await harness.say(text + "x" * 1800 + str(n)) for n in range(5)]
        assert "trục trặc" in said[-1] or "Xin lỗi" in said[-1], said[-1]
        async with aiohttp.ClientSession() as http, \
                http.get(f"http://127.0.0.1:{web.port}/healthz") as response:
            assert response.status == 503
            body = await response.json()
        assert body["database_problem"] == "OperationalError"
        logged = "\n".join(
            r.getMessage() + (logging.Formatter().formatException(r.exc_info)
                              if r.exc_info else "")
            for r in caplog.records
        )
        assert "Riêng Tư" not in logged and "0912345678" not in logged
    finally:
        await web.stop()


Starter = Callable[[], Awaitable[None]]


async def test_a_refused_zalo_token_is_one_line_too(tmp_path: Path) -> None:
    from tests.fake_zalo import FakeZalo

    wrong = "1234567890:zalo-wrong-secret-abcdefghijkl"
    async with FakeZalo() as zalo:
        config = write_config(tmp_path, (
            f'[database]\nurl = "sqlite+aiosqlite:///{tmp_path}/bot.db"\n'
            '[telegram]\nenabled = false\n'
            f'[zalo]\nenabled = true\ntoken = "{wrong}"\napi_base_url = "{zalo.base_url}"\n'
            '[web]\nport = 0\n'
        ))
        code, out, err = await run_cli("run", "--config", str(config), cwd=tmp_path)
    assert code == 2
    assert "Traceback" not in err and wrong not in out + err
    assert err.strip().splitlines()[-1].startswith(
        "cds-bot: zalo: máy chủ zalo từ chối token (sai, hoặc đã bị thu hồi).")
