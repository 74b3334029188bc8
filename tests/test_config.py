"""Config mistakes stop the bot with one line naming the key; never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bot.config import ConfigError, MissingTokenError, load_config


def load(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> None:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    load_config(path, env or {}).config.check_runnable()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[telegram]\ntokne = "1:abc"\n', "telegram.tokne: unknown key"),
        ("[nonsense]\na = 1\n", "nonsense: unknown key"),
        ('[web]\nport = "8080"\n', "web.port: wrong type"),
        ("[telegram]\nenabled = 1\n", "telegram.enabled: wrong type"),
        ('[telegram]\napi_base_url = "api.telegram.org"\n', "telegram.api_base_url: must be an http(s) URL"),
        ('[bot]\ntimezone = "Asia/Hanoi_City"\n', "bot.timezone: unknown time zone"),
        ('[bot]\nquiet_hours = "9pm-7am"\n', 'bot.quiet_hours: must look like "21:00-07:00"'),
        ('[database]\nurl = "mysql://x/y"\n', "database.url: must be sqlite+aiosqlite"),
        ('[[onboarding.steps]]\nkey = "Bad Key"\ntitle = "x"\n', "onboarding.steps[1].key"),
        ('[[onboarding.steps]]\nkey = "a1"\ntitle = "x"\n[[onboarding.steps]]\nkey = "a1"\ntitle = "y"\n',
         "onboarding.steps: duplicate step key 'a1'"),
        ('[[onboarding.steps]]\nkey = "vneid"\ntitle = "x"\nper = "person"\n', "onboarding.steps[1].per"),
        ("[bot\n", "not valid TOML"),
        ('[telegram]\ntoken = "not-a-token"\n', "telegram.token: does not look like"),
        ('[telegram]\ntoken = "123:abcdefghij"\nmode = "webhook"\n', "telegram.webhook_url: required"),
        ('[telegram]\ntoken = "123:abcdefghij"\nmode = "webhook"\nwebhook_url = "https://x.vn/h"\n',
         "telegram.webhook_secret: required in webhook mode"),
        ("[telegram]\nenabled = false\n", "no chat platform is enabled"),
    ],
)
def test_each_mistake_is_one_line_naming_the_key(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, text)
    message = str(info.value)
    assert expected in message
    assert "\n" not in message


def test_missing_token_is_its_own_error(tmp_path: Path) -> None:
    with pytest.raises(MissingTokenError, match="telegram.token: missing"):
        load(tmp_path, "[bot]\n")


def test_environment_overrides_secrets(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[telegram]\ntoken = ""\n', encoding="utf-8")
    loaded = load_config(
        path, {"CDS_TELEGRAM_TOKEN": "42:secret-token", "CDS_DATABASE_URL": "postgresql://u@h/db"}
    )
    assert loaded.config.telegram.token.get_secret_value() == "42:secret-token"
    assert loaded.config.database.url == "postgresql+asyncpg://u@h/db"
    assert "42:secret-token" not in repr(loaded.config)


def test_example_config_is_valid_and_documents_every_key() -> None:
    example = Path(__file__).parent.parent / "config.example.toml"
    config = load_config(example, {}).config
    text = example.read_text(encoding="utf-8")
    for section_name, section in config:
        for key in type(section).model_fields:
            if section_name == "onboarding":
                continue
            documented = f"\n{key} =" in text or f"[{section_name}.{key}]" in text
            assert documented, f"{section_name}.{key} missing from config.example.toml"
    assert [s.key for s in config.onboarding.steps] == [
        "smartphone", "group_chat", "vneid", "citizen_app", "epayment", "public_services",
    ]


def test_cli_prints_one_line_and_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[web]\nport = "x"\n', encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "bot", "--config", str(path), "run"],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"cds-bot: {path}: web.port: wrong type (input should be a valid integer)"]
    assert "Traceback" not in result.stderr
