"""Typed configuration: `config.toml` parsed once, secrets overridable by environment.

Every mistake an operator can make in the file ends in a `ConfigError` whose message is one
line naming the key, so `cds-bot` can print it and stop instead of showing a traceback.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import time
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlparse
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

DEFAULT_CONFIG_PATH = Path("config.toml")
DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./data/bot.db"
TELEGRAM_API = "https://api.telegram.org/bot"
ZALO_API = "https://bot-api.zaloplatforms.com/bot"

# Environment variables that override secrets, so tokens need not sit in the file.
ENV_OVERRIDES: dict[str, tuple[str, str]] = {
    "CDS_TELEGRAM_TOKEN": ("telegram", "token"),
    "CDS_TELEGRAM_WEBHOOK_SECRET": ("telegram", "webhook_secret"),
    "CDS_ZALO_TOKEN": ("zalo", "token"),
    "CDS_ZALO_WEBHOOK_SECRET": ("zalo", "webhook_secret"),
    "CDS_ZALO_OA_SECRET_KEY": ("zalo_oa", "secret_key"),
    "CDS_ZALO_OA_ACCESS_TOKEN": ("zalo_oa", "access_token"),
    "CDS_ZALO_OA_REFRESH_TOKEN": ("zalo_oa", "refresh_token"),
    "CDS_ZALO_OA_OA_SECRET_KEY": ("zalo_oa", "oa_secret_key"),
    "CDS_DATABASE_URL": ("database", "url"),
    "CDS_WEB_SECRET": ("web", "secret"),
}

_QUIET_RE = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)$")
_SECRET_RE = re.compile(r"^[A-Za-z0-9_-]{8,256}$")


class ConfigError(Exception):
    """A configuration mistake, worded as one line for the operator."""


def _http_url(value: str) -> str:
    parsed = urlparse(value)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ValueError(f"must be an http(s) URL, got {value!r}")
    return value


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class BotSection(_Section):
    locale: Literal["vi", "en"] = "vi"
    timezone: str = "Asia/Ho_Chi_Minh"
    quiet_hours: str = "21:00-07:00"
    name: str = Field(default="", max_length=64)
    conversation_timeout_minutes: int = Field(default=30, ge=1, le=1440)
    invite_days: int = Field(default=14, ge=1, le=365)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # Updates handled at the same time (each chat's own stay in order), and how many may
    # wait before fetching new ones pauses (docs/performance.md).
    concurrent_updates: int = Field(default=16, ge=1, le=256)
    max_queued_updates: int = Field(default=10_000, ge=100, le=1_000_000)
    # How long who someone is (their roles) is reused without reading the database; a
    # change made anywhere is heard at once, these seconds bound what is not (0: off).
    identity_cache_seconds: float = Field(default=5.0, ge=0, le=60)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (e.g. Asia/Ho_Chi_Minh)") from None
        return value

    @field_validator("quiet_hours")
    @classmethod
    def _quiet_format(cls, value: str) -> str:
        if value and not _QUIET_RE.match(value):
            raise ValueError(f'must look like "21:00-07:00" or be "", got {value!r}')
        return value

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def quiet_window(self) -> tuple[time, time] | None:
        match = _QUIET_RE.match(self.quiet_hours)
        if not match:
            return None
        h1, m1, h2, m2 = (int(g) for g in match.groups())
        return time(h1, m1), time(h2, m2)


class DatabaseSection(_Section):
    url: str = DEFAULT_DATABASE_URL

    @field_validator("url")
    @classmethod
    def _supported(cls, value: str) -> str:
        return normalize_database_url(value)


def normalize_database_url(value: str) -> str:
    """Accept the plain driver names operators know and pick the async driver for them."""
    for plain, async_ in (
        ("sqlite:", "sqlite+aiosqlite:"),
        ("postgresql:", "postgresql+asyncpg:"),
        ("postgres:", "postgresql+asyncpg:"),
    ):
        if value.startswith(plain):
            value = async_ + value[len(plain) :]
    if not (value.startswith("sqlite+aiosqlite:///") or value.startswith("postgresql+asyncpg://")):
        scheme = value.split(":", 1)[0] if ":" in value else value[:20]
        raise ValueError(
            "must be sqlite+aiosqlite:///path.db or postgresql+asyncpg://user@host/db, "
            f"got a {scheme!r} URL"  # never the whole URL: it may carry a password
        )
    return value


class TelegramSection(_Section):
    enabled: bool = True
    token: SecretStr = SecretStr("")
    api_base_url: str = TELEGRAM_API
    mode: Literal["polling", "webhook"] = "polling"
    webhook_url: str = ""
    webhook_secret: SecretStr = SecretStr("")

    @field_validator("api_base_url")
    @classmethod
    def _api_url(cls, value: str) -> str:
        return _http_url(value)

    @field_validator("webhook_url")
    @classmethod
    def _webhook_url(cls, value: str) -> str:
        return _http_url(value) if value else value


class ZaloSection(_Section):
    enabled: bool = False
    token: SecretStr = SecretStr("")
    api_base_url: str = ZALO_API
    mode: Literal["polling", "webhook"] = "polling"
    webhook_url: str = ""
    webhook_secret: SecretStr = SecretStr("")
    # Zalo publishes no rate limits for bots: bulk messages are paced conservatively.
    per_second: float = Field(default=5.0, gt=0, le=100)
    group_per_minute: int = Field(default=10, ge=1, le=600)
    # The bot's name as Zalo shows it in a group's @ list (getMe returns only account_name);
    # a leading "@<display_name>" is dropped before a command is read.
    display_name: str = Field(default="", max_length=100)
    # Polling only: at least this long between two getUpdates calls.
    poll_interval_seconds: float = Field(default=0.5, ge=0, le=60)

    @field_validator("api_base_url")
    @classmethod
    def _api_url(cls, value: str) -> str:
        return _http_url(value)

    @field_validator("webhook_url")
    @classmethod
    def _webhook_url(cls, value: str) -> str:
        return _http_url(value) if value else value


class ZaloOASection(_Section):
    enabled: bool = False
    app_id: str = ""
    secret_key: SecretStr = SecretStr("")
    access_token: SecretStr = SecretStr("")
    refresh_token: SecretStr = SecretStr("")
    oa_secret_key: SecretStr = SecretStr("")
    api_base_url: str = "https://openapi.zalo.me"
    oauth_base_url: str = "https://oauth.zaloapp.com"
    # One-to-one messages outside the free window (8 replies within 48 h of the resident's
    # message) are proactive: quota or paid. At most this many a month; 0: none.
    proactive_per_month: int = Field(default=0, ge=0, le=1_000_000)

    @field_validator("api_base_url", "oauth_base_url")
    @classmethod
    def _urls(cls, value: str) -> str:
        return _http_url(value)


class WebSection(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    public_url: str = ""
    secret: SecretStr = SecretStr("")

    @field_validator("public_url")
    @classmethod
    def _public(cls, value: str) -> str:
        return _http_url(value) if value else value


class AdminsSection(_Section):
    telegram: list[int] = Field(default_factory=list)
    zalo: list[str] = Field(default_factory=list)
    zalo_oa: list[str] = Field(default_factory=list)


class OnboardingStepConfig(_Section):
    key: str = Field(pattern=r"^[a-z][a-z0-9_]{1,31}$")
    title: str = Field(min_length=1, max_length=80)
    per: Literal["household", "adult"] = "household"
    guide: str = Field(default="", max_length=40)  # explanation topic shown to residents
    short: str = Field(default="", max_length=24)  # on buttons; empty: the title

    @property
    def label(self) -> str:
        return self.short or self.title


def default_steps() -> list[OnboardingStepConfig]:
    """The design's default checklist, titled in messages/vi/onboarding_steps.toml."""
    path = Path(__file__).resolve().parent.parent / "messages" / "vi" / "onboarding_steps.toml"
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    return [OnboardingStepConfig.model_validate(step) for step in data["steps"]]


class OnboardingSection(_Section):
    steps: list[OnboardingStepConfig] = Field(default_factory=default_steps)

    @field_validator("steps")
    @classmethod
    def _unique(cls, value: list[OnboardingStepConfig]) -> list[OnboardingStepConfig]:
        keys = [s.key for s in value]
        dupes = sorted({k for k in keys if keys.count(k) > 1})
        if dupes:
            raise ValueError(f"duplicate step key {dupes[0]!r}")
        if not value:
            raise ValueError("needs at least one step")
        return value


class CitizenAppSection(_Section):
    """The province's citizen app, named in explanations (e.g. iHanoi, YenBai-S)."""

    # Empty: the label `citizen_app.default_name` (messages/) names it.
    name: str = Field(default="", max_length=60)
    android_url: str = ""
    ios_url: str = ""
    hotline: str = Field(default="", max_length=40)

    @field_validator("android_url", "ios_url")
    @classmethod
    def _store_url(cls, value: str) -> str:
        return _http_url(value) if value else value


class OfficeSection(_Section):
    """The ward office as residents should find it; a ward's own record overrides it."""

    name: str = Field(default="", max_length=120)
    address: str = Field(default="", max_length=300)
    hours: str = Field(default="", max_length=200)
    phone: str = Field(default="", max_length=40)
    # What residents call the unit: "phường", or "xã" (many units are xã since 7/2025).
    unit: str = Field(default="phường", min_length=1, max_length=20)


FEEDBACK_CATEGORIES = (
    "infrastructure", "environment", "security", "procedures", "digital_support", "other",
)


class FeedbackSection(_Section):
    max_per_hour: int = Field(default=3, ge=1, le=100)
    due_hours: dict[str, int] = Field(
        default_factory=lambda: {
            "infrastructure": 72, "environment": 72, "security": 24,
            "procedures": 120, "digital_support": 48, "other": 120,
        }
    )
    nudge_every_hours: int = Field(default=24, ge=1, le=720)
    # Days after "resolved" before the reporter is asked "is it really fixed?"; days during
    # which the reporter may still say "not fixed" and reopen the ticket.
    ask_fixed_after_days: int = Field(default=3, ge=1, le=60)
    reopen_days: int = Field(default=14, ge=1, le=180)

    @field_validator("due_hours")
    @classmethod
    def _known_categories(cls, value: dict[str, int]) -> dict[str, int]:
        for key, hours in value.items():
            if key not in FEEDBACK_CATEGORIES:
                raise ValueError(
                    f"unknown category {key!r} (known: {', '.join(FEEDBACK_CATEGORIES)})"
                )
            if not 1 <= hours <= 24 * 90:
                raise ValueError(f"{key}: hours must be between 1 and 2160")
        return {**{c: 120 for c in FEEDBACK_CATEGORIES}, **value}


class RemindersSection(_Section):
    """Personal reminders to households that still miss a running campaign's step."""

    enabled: bool = True
    every_days: int = Field(default=7, ge=1, le=60)


class ContestSection(_Section):
    """The ward's knowledge contest: questions drawn per player, attempts allowed."""

    questions_per_player: int = Field(default=10, ge=1, le=50)
    attempts: int = Field(default=1, ge=1, le=10)


class OutboxSection(_Section):
    """Pacing of bulk messages (notices, reminders, polls). Telegram allows about 30
    messages a second overall and 20 a minute per group; the default leaves room for the
    direct replies that never wait behind a broadcast."""

    per_second: float = Field(default=28.0, gt=0, le=1000)
    group_per_minute: int = Field(default=20, ge=1, le=600)
    # Messages a second to one person's private chat, on every app (Telegram asks for about
    # one a second per chat; a reply split in parts or a reply and a notice keep this pace).
    private_per_second: float = Field(default=1.0, gt=0, le=1000)
    workers: int = Field(default=4, ge=1, le=64)
    max_attempts: int = Field(default=8, ge=1, le=50)


class RelaySection(_Section):
    """Groups the bot cannot post to get messages through a person who forwards them."""

    # Remind a relay person who has not confirmed after this many hours (never at night),
    # once; as long again later, tell the sender which groups still wait.
    remind_after_hours: float = Field(default=3, gt=0, le=168)


class ScheduleSection(_Section):
    digest_time: str = Field(default="17:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    grace_hours: int = Field(default=6, ge=0, le=72)


class Config(_Section):
    bot: BotSection = Field(default_factory=BotSection)
    database: DatabaseSection = Field(default_factory=DatabaseSection)
    telegram: TelegramSection = Field(default_factory=TelegramSection)
    zalo: ZaloSection = Field(default_factory=ZaloSection)
    zalo_oa: ZaloOASection = Field(default_factory=ZaloOASection)
    web: WebSection = Field(default_factory=WebSection)
    admins: AdminsSection = Field(default_factory=AdminsSection)
    onboarding: OnboardingSection = Field(default_factory=OnboardingSection)
    citizen_app: CitizenAppSection = Field(default_factory=CitizenAppSection)
    office: OfficeSection = Field(default_factory=OfficeSection)
    feedback: FeedbackSection = Field(default_factory=FeedbackSection)
    reminders: RemindersSection = Field(default_factory=RemindersSection)
    contest: ContestSection = Field(default_factory=ContestSection)
    outbox: OutboxSection = Field(default_factory=OutboxSection)
    schedule: ScheduleSection = Field(default_factory=ScheduleSection)
    relay: RelaySection = Field(default_factory=RelaySection)

    def check_runnable(self) -> None:
        """Refuse to start a platform that cannot work, naming the key to fix."""
        if not (self.telegram.enabled or self.zalo.enabled or self.zalo_oa.enabled):
            raise ConfigError(
                "telegram.enabled / zalo.enabled / zalo_oa.enabled: no chat platform is enabled"
            )
        if self.zalo_oa.enabled:
            for key in ("app_id", "secret_key", "access_token", "refresh_token", "oa_secret_key"):
                value = getattr(self.zalo_oa, key)
                if not (value.get_secret_value() if isinstance(value, SecretStr) else value):
                    raise ConfigError(f"zalo_oa.{key}: required when zalo_oa.enabled = true")
        for name, section in (("telegram", self.telegram), ("zalo", self.zalo)):
            if not section.enabled:
                continue
            token = section.token.get_secret_value()
            if not token:
                raise MissingTokenError(f"{name}.token: missing", platform=name)
            if not re.match(r"^\d+:[A-Za-z0-9_-]{8,}$", token):
                raise ConfigError(f"{name}.token: does not look like <bot id>:<secret>")
            if section.mode == "webhook":
                if not section.webhook_url:
                    raise ConfigError(f"{name}.webhook_url: required when {name}.mode = webhook")
                secret = section.webhook_secret.get_secret_value()
                if not _SECRET_RE.match(secret):
                    raise ConfigError(
                        f"{name}.webhook_secret: required in webhook mode, 8-256 characters "
                        "of A-Z, a-z, 0-9, _ and -"
                    )


class MissingTokenError(ConfigError):
    """No token for an enabled platform: the CLI explains how to get one."""

    def __init__(self, message: str, *, platform: str) -> None:
        super().__init__(message)
        self.platform = platform


@dataclass(frozen=True)
class LoadedConfig:
    config: Config
    path: Path
    from_file: bool


def resolve_path(cli_path: str | None, env: Mapping[str, str] | None = None) -> Path:
    """`--config`, else `CDS_CONFIG`, else `./config.toml`."""
    env = os.environ if env is None else env
    if cli_path:
        return Path(cli_path)
    if env.get("CDS_CONFIG"):
        return Path(env["CDS_CONFIG"])
    return DEFAULT_CONFIG_PATH


def load_config(
    path: Path, env: Mapping[str, str] | None = None, *, required: bool = False
) -> LoadedConfig:
    """Read, override from the environment and validate; every failure is a `ConfigError`."""
    env = os.environ if env is None else env
    raw: dict[str, Any] = {}
    from_file = path.exists()
    if from_file:
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML ({exc})") from None
        except OSError as exc:
            raise ConfigError(f"{path}: cannot be read ({exc.strerror})") from None
    elif required:
        raise ConfigError(f"{path}: file not found (copy config.example.toml to start)")
    for var, (section, key) in ENV_OVERRIDES.items():
        if env.get(var):
            target = raw.setdefault(section, {})
            if not isinstance(target, dict):
                raise ConfigError(f"{path}: {section}: must be a table")
            target[key] = env[var]
    try:
        config = Config.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"{path}: {_first_error(exc)}") from None
    return LoadedConfig(config=config, path=path, from_file=from_file)


def _first_error(exc: ValidationError) -> str:
    errors = exc.errors()
    first = errors[0]
    key = ""
    for part in first["loc"]:
        key += f"[{part + 1}]" if isinstance(part, int) else (f".{part}" if key else str(part))
    kind = first["type"]
    if kind == "extra_forbidden":
        text = "unknown key"
    elif kind == "missing":
        text = "required"
    elif kind.endswith("_type") or kind in ("is_instance_of", "model_type"):
        text = f"wrong type ({first['msg'].lower()})"
    else:
        text = str(first["msg"]).removeprefix("Value error, ")
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{key}: {text}{more}"
