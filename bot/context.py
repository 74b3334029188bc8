"""The frozen bundle of dependencies every handler receives; built once in `bot.app`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from bot.clock import Clock
from bot.config import Config
from bot.db import Database
from bot.metrics import Metrics
from bot.services.access import Access
from bot.services.accounts import Accounts
from bot.services.chats import Chats
from bot.services.conversations import Conversations
from bot.services.dashboard_login import DashboardLogins
from bot.services.explanations import Explanations, load_library
from bot.services.feedback import Feedbacks
from bot.services.households import Households
from bot.services.invites import Invites
from bot.services.places import Places
from bot.services.progress import Progress
from bot.services.registry import Registry
from bot.texts import Texts


@dataclass(frozen=True)
class Services:
    places: Places
    access: Access
    invites: Invites
    chats: Chats
    conversations: Conversations
    explanations: Explanations
    accounts: Accounts
    dashboard_logins: DashboardLogins
    feedback: Feedbacks
    households: Households
    registry: Registry
    progress: Progress


@dataclass(frozen=True)
class AppContext:
    config: Config
    db: Database
    clock: Clock
    texts: Texts
    services: Services
    metrics: Metrics


def build_services(
    config: Config, db: Database, clock: Clock, *, console_admins: list[str] | None = None
) -> Services:
    admins = {
        "telegram": [str(i) for i in config.admins.telegram],
        "zalo": list(config.admins.zalo),
        "console": list(console_admins or []),
    }
    access = Access(db, clock, admins)
    steps = config.onboarding.steps
    return Services(
        places=Places(db, clock),
        access=access,
        invites=Invites(db, clock, access, default_days=config.bot.invite_days),
        chats=Chats(db, clock),
        conversations=Conversations(
            db, clock, timeout=timedelta(minutes=config.bot.conversation_timeout_minutes)
        ),
        explanations=Explanations(db, clock, load_library(config.bot.locale)),
        accounts=Accounts(db, clock),
        dashboard_logins=DashboardLogins(db, clock),
        feedback=Feedbacks(db, clock, config.feedback),
        households=Households(db, clock, steps),
        registry=Registry(db, clock, steps),
        progress=Progress(db, clock, steps),
    )


def build_context(
    config: Config, db: Database, clock: Clock, *, console_admins: list[str] | None = None
) -> AppContext:
    texts = Texts(locale=config.bot.locale, timezone=config.bot.tz)
    if config.bot.name:
        texts.set_global("bot_name", config.bot.name)
    return AppContext(
        config=config, db=db, clock=clock, texts=texts,
        services=build_services(config, db, clock, console_admins=console_admins),
        metrics=Metrics(clock),
    )
