"""The frozen bundle of dependencies every handler receives; built once in `bot.app`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta

from bot.clock import Clock, Sleeper
from bot.config import Config
from bot.core import Chat, Platform
from bot.db import Database
from bot.delivery.courier import Courier
from bot.delivery.outbox import ChatHooks, Limits, Outbox, Pacing
from bot.delivery.quiet import QuietHours
from bot.jobs.campaigns import CampaignJobs
from bot.jobs.feedback import FeedbackJobs
from bot.jobs.housekeeping import Housekeeping
from bot.jobs.notices import NoticeJobs
from bot.jobs.polls import PollJobs
from bot.jobs.relay import RelayJobs
from bot.metrics import Metrics
from bot.services.access import Access
from bot.services.accounts import Accounts
from bot.services.campaigns import Campaigns
from bot.services.chats import Chats
from bot.services.contests import Bank, Contests, load_banks
from bot.services.conversations import Conversations
from bot.services.dashboard_login import DashboardLogins
from bot.services.downloads import Downloads
from bot.services.explanations import Explanations, Library, load_library
from bot.services.feedback import Feedbacks
from bot.services.guides import Guides
from bot.services.households import Households
from bot.services.invites import Invites
from bot.services.notices import Notices
from bot.services.places import Places
from bot.services.polls import Polls
from bot.services.progress import Progress
from bot.services.registry import Registry
from bot.services.relay import Relays
from bot.services.relay_delivery import RelayDelivery
from bot.services.reminders import PersonalReminders
from bot.services.reports import Reports
from bot.services.series import Series
from bot.services.staff import Staff
from bot.services.staff_alerts import StaffAlerts
from bot.services.understanding import Intents, Understanding, load_intents
from bot.services.vietnamese import Reader, load_glossary
from bot.services.zalo_status import ZaloStatus
from bot.texts import Texts


@dataclass(frozen=True)
class Content:
    """What the bot knows and says that is read from `messages/` and indexed: the guides, what
    a message is (intents), the contest question banks, the glossary. Nothing changes it after
    loading, so one copy serves every context built in a process (the CLI builds one per
    command; the tests build hundreds)."""

    library: Library
    intents: Intents
    banks: Mapping[str, Bank]
    glossary: Mapping[str, str]


def load_content(locale: str) -> Content:
    """Read and index the content of one locale (a fraction of a second: 50 guides)."""
    library = load_library(locale)
    return Content(
        library=library,
        intents=load_intents(Reader(library.words), locale),
        banks=load_banks(locale),
        glossary=load_glossary(locale),
    )


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
    outbox: Outbox
    courier: Courier  # the one way out: replies, messages to people (delivery room)
    notices: Notices
    campaigns: Campaigns
    polls: Polls
    downloads: Downloads
    # Relay through the group leaders, and Zalo's state (issue #13).
    relays: Relays
    relay_delivery: RelayDelivery
    alerts: StaffAlerts
    zalo_status: ZaloStatus
    guides: Guides
    series: Series
    staff: Staff
    reminders: PersonalReminders
    contests: Contests
    understanding: Understanding  # what a free-text message is, before guides are matched
    reports: Reports


@dataclass(frozen=True)
class Jobs:
    """The bodies of the scheduled work (bot/jobs/); handlers may run one at once
    ("remind now", "close the poll")."""

    campaigns: CampaignJobs
    polls: PollJobs
    feedback: FeedbackJobs
    notices: NoticeJobs
    housekeeping: Housekeeping
    relay: RelayJobs  # relay persons who did not confirm: remind, then tell the sender


@dataclass(frozen=True)
class AppContext:
    config: Config
    db: Database
    clock: Clock
    texts: Texts
    services: Services
    metrics: Metrics
    jobs: Jobs
    # The running chat platforms by name, filled as they start; the router and the outbox
    # reach people through it.
    platforms: dict[str, Platform] = field(default_factory=dict)


def admins_of(config: Config, console_admins: list[str] | None = None) -> dict[str, list[str]]:
    """The admins from `[admins]` by platform (the terminal chat's own user as well)."""
    return {
        "telegram": [str(i) for i in config.admins.telegram],
        "zalo": list(config.admins.zalo),
        "zalo_oa": list(config.admins.zalo_oa),
        "console": list(console_admins or []),
    }


def build_services(
    config: Config, db: Database, clock: Clock, *, metrics: Metrics,
    platforms: dict[str, Platform], console_admins: list[str] | None = None,
    texts: Texts | None = None,
    sleeper: Sleeper | None = None,
    content: Content | None = None,
) -> Services:
    admins = admins_of(config, console_admins)
    access = Access(db, clock, admins, sleeper=sleeper,
                    ttl=timedelta(seconds=config.bot.identity_cache_seconds))
    steps = config.onboarding.steps
    places = Places(db, clock)
    chats = Chats(db, clock)
    pacing = Pacing(
        per_second=config.outbox.per_second, group_per_minute=config.outbox.group_per_minute,
        workers=config.outbox.workers, max_attempts=config.outbox.max_attempts,
        private_per_second=config.outbox.private_per_second,
    )
    zalo = Limits(per_second=config.zalo.per_second,
                  group_per_minute=config.zalo.group_per_minute,
                  private_per_second=config.outbox.private_per_second)
    quiet = QuietHours(config.bot.quiet_window, config.bot.tz)
    outbox = Outbox(db, clock, platforms, metrics, pacing=pacing,
                    limits={"zalo": zalo, "zalo_oa": zalo}, quiet=quiet, sleeper=sleeper)

    async def chat_gone(platform: str, chat_id: str) -> None:
        await chats.bot_removed(platform, Chat(chat_id, "group"), None)

    outbox.watch_chats(ChatHooks(moved=chats.migrated, gone=chat_gone))
    conversations = Conversations(
        db, clock, timeout=timedelta(minutes=config.bot.conversation_timeout_minutes)
    )
    relays = Relays(db, clock)
    relay_delivery = RelayDelivery(
        relays, outbox, texts or Texts(locale=config.bot.locale, timezone=config.bot.tz),
        conversations, platforms, clock, quiet, config.bot.locale)
    content = content or load_content(config.bot.locale)
    explanations = Explanations(db, clock, content.library)
    progress = Progress(db, clock, steps)
    registry = Registry(db, clock, steps)
    return Services(
        places=places,
        access=access,
        invites=Invites(db, clock, access, default_days=config.bot.invite_days),
        chats=chats,
        conversations=conversations,
        explanations=explanations,
        accounts=Accounts(db, clock),
        dashboard_logins=DashboardLogins(db, clock),
        feedback=Feedbacks(db, clock, config.feedback),
        households=Households(db, clock, steps),
        registry=registry,
        progress=progress,
        outbox=outbox,
        courier=Courier(outbox, metrics),
        notices=Notices(db, clock, outbox, chats, places, relays=relays,
                        relay=relay_delivery),
        campaigns=Campaigns(db, clock, config.bot.tz,
                            timedelta(hours=config.schedule.grace_hours)),
        polls=Polls(db, clock),
        downloads=Downloads(db, clock),
        relays=relays,
        relay_delivery=relay_delivery,
        alerts=StaffAlerts(db, clock, outbox, admins),
        zalo_status=ZaloStatus(db, clock, timezone=config.bot.tz,
                               bot_enabled=config.zalo.enabled,
                               oa_enabled=config.zalo_oa.enabled,
                               proactive_limit=config.zalo_oa.proactive_per_month),
        guides=Guides(db, clock),
        series=Series(db, clock, config.bot.tz,
                      QuietHours(config.bot.quiet_window, config.bot.tz),
                      timedelta(hours=config.schedule.grace_hours)),
        staff=Staff(db, clock),
        reminders=PersonalReminders(db, clock, steps, every_days=config.reminders.every_days),
        contests=Contests(db, clock, per_player=config.contest.questions_per_player,
                          attempts=config.contest.attempts,
                          banks=dict(content.banks)),
        understanding=Understanding(explanations.matcher, content.intents),
        reports=Reports(places, progress, registry, clock, config.bot.tz),
    )


def build_context(
    config: Config, db: Database, clock: Clock, *, console_admins: list[str] | None = None,
    sleeper: Sleeper | None = None, content: Content | None = None,
) -> AppContext:
    """Everything a running bot needs. `content` is the already-loaded `messages/` content,
    shared when a process builds several contexts; read from disk when not given."""
    content = content or load_content(config.bot.locale)
    texts = Texts(locale=config.bot.locale, timezone=config.bot.tz)
    if config.bot.name:
        texts.set_global("bot_name", config.bot.name)
    # One glossary for every text (messages/<locale>/glossary.toml), and the unit's own word.
    texts.set_global("term", dict(content.glossary))
    texts.set_global("unit", config.office.unit)
    metrics = Metrics(clock)
    metrics.watch_database(db)
    platforms: dict[str, Platform] = {}
    services = build_services(config, db, clock, metrics=metrics, platforms=platforms,
                              console_admins=console_admins, sleeper=sleeper, texts=texts,
                              content=content)
    return AppContext(
        config=config, db=db, clock=clock, texts=texts, services=services,
        metrics=metrics, jobs=build_jobs(config, clock, texts, services, platforms),
        platforms=platforms,
    )


def build_jobs(config: Config, clock: Clock, texts: Texts, services: Services,
               platforms: dict[str, Platform]) -> Jobs:
    """Each job gets the services it uses, the texts and the outbox; nothing more (the
    notice report also sees which running platforms show buttons)."""
    locale, s = config.bot.locale, services
    return Jobs(
        campaigns=CampaignJobs(
            campaigns=s.campaigns, progress=s.progress, chats=s.chats, access=s.access,
            feedback=s.feedback, places=s.places, explanations=s.explanations,
            reminders=s.reminders, outbox=s.outbox, relays=s.relays,
            relay_delivery=s.relay_delivery, texts=texts, clock=clock, locale=locale,
            tz=config.bot.tz, digest_time=config.schedule.digest_time,
        ),
        polls=PollJobs(polls=s.polls, access=s.access, chats=s.chats, outbox=s.outbox,
                       texts=texts, locale=locale),
        feedback=FeedbackJobs(feedback=s.feedback, outbox=s.outbox, texts=texts, clock=clock,
                              locale=locale),
        notices=NoticeJobs(notices=s.notices, access=s.access, outbox=s.outbox, texts=texts,
                           locale=locale, relays=s.relays, relay_delivery=s.relay_delivery,
                           platforms=platforms,
                           remind_after_hours=config.relay.remind_after_hours),
        relay=RelayJobs(relays=s.relays, relay_delivery=s.relay_delivery, access=s.access,
                        outbox=s.outbox, texts=texts, clock=clock, locale=locale,
                        remind_after_hours=config.relay.remind_after_hours),
        housekeeping=Housekeeping(s.conversations),
    )
