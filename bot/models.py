"""Database tables (SQLModel). Services read and write them; nothing else does.

Chat and user ids are strings so Telegram's integers and Zalo's opaque ids share one column.
Times are stored as naive UTC and read back as aware UTC (see `UTCDateTime`), identically on
SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out, on every backend."""

    impl = sa.DateTime(timezone=False)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; use aware UTC")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


def _when(*, nullable: bool = False, index: bool = False) -> Any:
    return Field(
        default=None,
        sa_column=sa.Column(UTCDateTime(), nullable=nullable, index=index),
    )


def _json_list() -> Any:
    return Field(default_factory=list, sa_column=sa.Column(sa.JSON(), nullable=False))


def _json() -> Any:
    return Field(default_factory=dict, sa_column=sa.Column(sa.JSON(), nullable=False))


class Ward(SQLModel, table=True):
    __tablename__ = "ward"
    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=32, unique=True, index=True)
    name: str = Field(max_length=200)
    office_address: str = Field(default="", max_length=300)
    office_hours: str = Field(default="", max_length=200)
    office_phone: str = Field(default="", max_length=40)
    created_at: datetime = _when()


class ResidentialGroup(SQLModel, table=True):
    __tablename__ = "residential_group"
    __table_args__ = (sa.UniqueConstraint("ward_id", "code", name="uq_group_ward_code"),)
    id: int | None = Field(default=None, primary_key=True)
    ward_id: int = Field(foreign_key="ward.id", index=True)
    code: str = Field(max_length=32)
    name: str = Field(max_length=200)
    created_at: datetime = _when()


class Member(SQLModel, table=True):
    """A person as one platform knows them; `person_id` joins one person's accounts."""

    __tablename__ = "member"
    __table_args__ = (
        sa.UniqueConstraint("platform", "platform_user_id", name="uq_member_platform_user"),
    )
    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=16)
    platform_user_id: str = Field(max_length=64)
    display_name: str = Field(default="", max_length=200)
    username: str = Field(default="", max_length=64)
    locale: str = Field(default="", max_length=8)
    person_id: int | None = Field(default=None, index=True)
    created_at: datetime = _when()
    last_seen_at: datetime = _when()


class RoleGrant(SQLModel, table=True):
    """A role over a scope: the ward (group_id empty), one group, or everything (admin)."""

    __tablename__ = "role_grant"
    id: int | None = Field(default=None, primary_key=True)
    member_id: int = Field(foreign_key="member.id", index=True)
    role: str = Field(max_length=16)
    ward_id: int | None = Field(default=None, foreign_key="ward.id", index=True)
    group_id: int | None = Field(default=None, foreign_key="residential_group.id")
    granted_by: int | None = Field(default=None, foreign_key="member.id")
    created_at: datetime = _when()
    revoked_at: datetime | None = _when(nullable=True)


class ChatBinding(SQLModel, table=True):
    """A group chat the bot is in, and the residential group it speaks for (once bound)."""

    __tablename__ = "chat_binding"
    __table_args__ = (sa.UniqueConstraint("platform", "chat_id", name="uq_chat_platform_chat"),)
    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=16)
    chat_id: str = Field(max_length=64)
    chat_type: str = Field(default="group", max_length=16)
    title: str = Field(default="", max_length=255)
    ward_id: int | None = Field(default=None, foreign_key="ward.id", index=True)
    group_id: int | None = Field(default=None, foreign_key="residential_group.id", index=True)
    active: bool = Field(default=True)
    can_post: bool = Field(default=True)
    bound_by: int | None = Field(default=None, foreign_key="member.id")
    created_at: datetime = _when()
    updated_at: datetime = _when()


class Invite(SQLModel, table=True):
    __tablename__ = "invite"
    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=32, unique=True, index=True)
    role: str = Field(max_length=16)
    ward_id: int = Field(foreign_key="ward.id")
    group_id: int | None = Field(default=None, foreign_key="residential_group.id")
    created_by: int | None = Field(default=None, foreign_key="member.id")
    created_at: datetime = _when()
    expires_at: datetime = _when()
    max_uses: int | None = Field(default=None)
    uses: int = Field(default=0)
    revoked: bool = Field(default=False)


class ConversationState(SQLModel, table=True):
    """One open form per person per chat, so a restart in the middle of it loses nothing."""

    __tablename__ = "conversation_state"
    __table_args__ = (
        sa.UniqueConstraint("platform", "chat_id", "user_id", name="uq_conversation_who"),
    )
    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=16)
    chat_id: str = Field(max_length=64)
    user_id: str = Field(max_length=64)
    flow: str = Field(max_length=64)
    step: str = Field(max_length=64)
    data: dict[str, Any] = _json()
    updated_at: datetime = _when()
    expires_at: datetime = _when(index=True)


class AuditLog(SQLModel, table=True):
    __tablename__ = "audit_log"
    id: int | None = Field(default=None, primary_key=True)
    at: datetime = _when(index=True)
    actor_member_id: int | None = Field(default=None, foreign_key="member.id")
    ward_id: int | None = Field(default=None, foreign_key="ward.id", index=True)
    action: str = Field(max_length=64)
    target: str = Field(default="", max_length=200)
    details: dict[str, Any] = _json()


class LinkCode(SQLModel, table=True):
    """A short-lived code that joins one person's accounts on two platforms."""

    __tablename__ = "link_code"
    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=16, unique=True, index=True)
    member_id: int = Field(foreign_key="member.id")
    created_at: datetime = _when()
    expires_at: datetime = _when()
    used: bool = Field(default=False)


class DashboardLogin(SQLModel, table=True):
    """A one-time sign-in link for the web dashboard; only the token's hash is stored."""

    __tablename__ = "dashboard_login"
    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(max_length=64, unique=True, index=True)
    member_id: int = Field(foreign_key="member.id")
    created_at: datetime = _when()
    expires_at: datetime = _when()
    used_at: datetime | None = _when(nullable=True)


class OAToken(SQLModel, table=True):
    """The Zalo OA's rotating tokens: each refresh uses up the refresh token, so it is kept
    here (never in logs) and every instance reads the newest."""

    __tablename__ = "oa_token"
    id: int | None = Field(default=None, primary_key=True)
    app_id: str = Field(max_length=64, unique=True)
    access_token: str = Field(max_length=2048)
    refresh_token: str = Field(max_length=2048)
    expires_at: datetime = _when()
    updated_at: datetime = _when()


class TopicVote(SQLModel, table=True):
    """One 👍/👎 per person per explanation topic; pressing again changes the vote."""

    __tablename__ = "topic_vote"
    __table_args__ = (sa.UniqueConstraint("topic_key", "member_id", name="uq_topic_vote"),)
    id: int | None = Field(default=None, primary_key=True)
    topic_key: str = Field(max_length=64, index=True)
    member_id: int = Field(foreign_key="member.id")
    helpful: bool
    at: datetime = _when()


class TopicRead(SQLModel, table=True):
    """How often a topic was opened, per day (what residents look for most)."""

    __tablename__ = "topic_read"
    __table_args__ = (sa.UniqueConstraint("topic_key", "day", name="uq_topic_read_day"),)
    id: int | None = Field(default=None, primary_key=True)
    topic_key: str = Field(max_length=64, index=True)
    day: date
    count: int = Field(default=0)


class Feedback(SQLModel, table=True):
    """A resident's report, suggestion or question; its number is shown as PA-<id>."""

    __tablename__ = "feedback"
    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(default="report", max_length=16)
    category: str = Field(max_length=32)
    text: str = Field(max_length=4000)
    text_hash: str = Field(max_length=64, index=True)
    location: str = Field(default="", max_length=300)
    photos: list[Any] = _json_list()
    topic_key: str = Field(default="", max_length=64)
    anonymous: bool = Field(default=False)
    reporter_member_id: int | None = Field(default=None, foreign_key="member.id", index=True)
    ward_id: int = Field(foreign_key="ward.id", index=True)
    group_id: int | None = Field(default=None, foreign_key="residential_group.id", index=True)
    state: str = Field(default="new", max_length=16, index=True)
    assignee_member_id: int | None = Field(default=None, foreign_key="member.id")
    created_at: datetime = _when(index=True)
    due_at: datetime = _when()
    acknowledged_at: datetime | None = _when(nullable=True)
    resolved_at: datetime | None = _when(nullable=True)
    last_nudged_at: datetime | None = _when(nullable=True)
    # --- closing the loop (issue 15): "is it fixed?" asked once, the reporter's answer ---
    fixed_asked_at: datetime | None = _when(nullable=True)
    fixed_answer: str = Field(default="", max_length=16)
    satisfaction: int | None = Field(default=None)
    reopen_count: int = Field(default=0)


class FeedbackEvent(SQLModel, table=True):
    """The history of a ticket: every change, reply and nudge, in order."""

    __tablename__ = "feedback_event"
    id: int | None = Field(default=None, primary_key=True)
    feedback_id: int = Field(foreign_key="feedback.id", index=True)
    at: datetime = _when()
    actor_member_id: int | None = Field(default=None, foreign_key="member.id")
    action: str = Field(max_length=32)
    from_state: str = Field(default="", max_length=16)
    to_state: str = Field(default="", max_length=16)
    message: str = Field(default="", max_length=4000)


class Household(SQLModel, table=True):
    """A household from the ward's list. `search` holds code, head and address folded
    (no diacritics, lower case) so "nguyen van an" finds "Nguyễn Văn An"."""

    __tablename__ = "household"
    __table_args__ = (sa.UniqueConstraint("ward_id", "code", name="uq_household_ward_code"),)
    id: int | None = Field(default=None, primary_key=True)
    ward_id: int = Field(foreign_key="ward.id")
    group_id: int = Field(foreign_key="residential_group.id", index=True)
    code: str = Field(max_length=32)
    head_name: str = Field(max_length=200)
    address: str = Field(default="", max_length=300)
    members: int = Field(default=1)
    adults: int = Field(default=1)
    phone: str = Field(default="", max_length=40)
    search: str = Field(default="", max_length=600)
    created_at: datetime = _when()
    updated_at: datetime = _when()


class HouseholdStep(SQLModel, table=True):
    """The current state of one step for one household (the progress events are the
    history). `units` is 0/1 for a household step and the number of adults done for an
    adult step; `reported_at` marks a resident's self-report waiting for a helper."""

    __tablename__ = "household_step"
    household_id: int = Field(foreign_key="household.id", primary_key=True)
    step_key: str = Field(max_length=32, primary_key=True)
    group_id: int = Field(foreign_key="residential_group.id", index=True)
    units: int = Field(default=0)
    complete: bool = Field(default=False)
    reported_at: datetime | None = _when(nullable=True)
    reported_by: int | None = Field(default=None, foreign_key="member.id")
    updated_at: datetime = _when()
    updated_by: int | None = Field(default=None, foreign_key="member.id")


class GroupStepCount(SQLModel, table=True):
    """Running totals per group and step, changed in the same transaction as every
    household step, so the ward-wide `/tiendo` reads a few hundred rows, not 100,000."""

    __tablename__ = "group_step_count"
    group_id: int = Field(foreign_key="residential_group.id", primary_key=True)
    step_key: str = Field(max_length=32, primary_key=True)
    units: int = Field(default=0)
    households: int = Field(default=0)


class ProgressEvent(SQLModel, table=True):
    """Append-only: who changed which step of which household, when, how and from what."""

    __tablename__ = "progress_event"
    __table_args__ = (sa.Index("ix_progress_event_group_at", "group_id", "at"),)
    id: int | None = Field(default=None, primary_key=True)
    household_id: int = Field(foreign_key="household.id", index=True)
    group_id: int = Field(foreign_key="residential_group.id")
    step_key: str = Field(max_length=32)
    action: str = Field(max_length=16)
    before_units: int = Field(default=0)
    after_units: int = Field(default=0)
    actor_member_id: int | None = Field(default=None, foreign_key="member.id")
    source: str = Field(max_length=16)
    batch: str = Field(default="", max_length=32, index=True)
    note: str = Field(default="", max_length=300)
    at: datetime = _when()


class HouseholdResident(SQLModel, table=True):
    """A resident who linked himself to his household (`/cuaho`); one household each."""

    __tablename__ = "household_resident"
    member_id: int = Field(foreign_key="member.id", primary_key=True)
    household_id: int = Field(foreign_key="household.id", index=True)
    linked_at: datetime = _when()


class Delivery(SQLModel, table=True):
    """One message to one chat, written before anything is sent (the outbox). Workers claim
    due rows; a claim older than the lease is taken over, so a crash loses nothing.
    `dedupe` makes enqueueing idempotent: the same reminder run is never queued twice."""

    __tablename__ = "delivery"
    __table_args__ = (
        sa.Index("ix_delivery_due", "state", "not_before"),
        sa.Index("ix_delivery_claim", "platform", "state", "priority", "id"),  # delivery room
        sa.UniqueConstraint("dedupe", name="uq_delivery_dedupe"),
    )
    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=16)
    ref_id: int | None = Field(default=None, index=True)
    dedupe: str = Field(max_length=160)
    ward_id: int | None = Field(default=None, foreign_key="ward.id")
    group_id: int | None = Field(default=None, foreign_key="residential_group.id")
    platform: str = Field(max_length=16)
    chat_id: str = Field(max_length=64)
    is_group: bool = Field(default=True)
    text: str = Field(sa_column=sa.Column(sa.Text(), nullable=False))
    buttons: list[Any] = _json_list()
    attachment: dict[str, Any] = _json()
    pin: bool = Field(default=False)
    priority: int = Field(default=5)
    state: str = Field(default="pending", max_length=12)
    attempts: int = Field(default=0)
    parts_sent: int = Field(default=0)
    not_before: datetime = _when()
    claimed_by: str = Field(default="", max_length=40)
    claimed_at: datetime | None = _when(nullable=True)
    sent_at: datetime | None = _when(nullable=True)
    message_id: str = Field(default="", max_length=40)
    error: str = Field(default="", max_length=300)
    created_at: datetime = _when()
    # --- delivery room (0007): a reply handed to the sending instance may edit a message
    edit_of: str = Field(default="", max_length=40)


class Notice(SQLModel, table=True):
    """A leader's or coordinator's notice to group chats, now or at a set time."""

    __tablename__ = "notice"
    id: int | None = Field(default=None, primary_key=True)
    ward_id: int = Field(foreign_key="ward.id", index=True)
    author_member_id: int = Field(foreign_key="member.id")
    text: str = Field(sa_column=sa.Column(sa.Text(), nullable=False))
    attachment: dict[str, Any] = _json()
    group_ids: list[Any] = _json_list()
    pin: bool = Field(default=False)
    send_at: datetime = _when()
    state: str = Field(default="scheduled", max_length=12)
    reported: bool = Field(default=False)
    created_at: datetime = _when()


class Campaign(SQLModel, table=True):
    """An emulation drive: a step, a target share, a period, groups, a reminder schedule."""

    __tablename__ = "campaign"
    id: int | None = Field(default=None, primary_key=True)
    ward_id: int = Field(foreign_key="ward.id", index=True)
    title: str = Field(max_length=200)
    step_key: str = Field(max_length=32)
    target_percent: int = Field(default=80)
    starts_on: date
    ends_on: date
    group_ids: list[Any] = _json_list()
    days: str = Field(default="mon,wed,fri", max_length=40)
    at_time: str = Field(default="19:00", max_length=5)
    state: str = Field(default="active", max_length=12)
    congratulated: list[Any] = _json_list()
    created_by: int | None = Field(default=None, foreign_key="member.id")
    created_at: datetime = _when()
    last_run_at: datetime | None = _when(nullable=True)
    ended_at: datetime | None = _when(nullable=True)


class Poll(SQLModel, table=True):
    __tablename__ = "poll"
    id: int | None = Field(default=None, primary_key=True)
    ward_id: int = Field(foreign_key="ward.id", index=True)
    author_member_id: int = Field(foreign_key="member.id")
    question: str = Field(max_length=300)
    options: list[Any] = _json_list()
    group_ids: list[Any] = _json_list()
    closes_at: datetime | None = _when(nullable=True, index=True)
    post_results: bool = Field(default=False)
    closed_at: datetime | None = _when(nullable=True)
    created_at: datetime = _when()


class PollVote(SQLModel, table=True):
    """One vote per person per poll; pressing another option changes it until it closes."""

    __tablename__ = "poll_vote"
    __table_args__ = (sa.UniqueConstraint("poll_id", "member_id", name="uq_poll_vote"),)
    id: int | None = Field(default=None, primary_key=True)
    poll_id: int = Field(foreign_key="poll.id", index=True)
    member_id: int = Field(foreign_key="member.id")
    option: int
    group_id: int | None = Field(default=None, foreign_key="residential_group.id")
    at: datetime = _when()


class ScheduleRun(SQLModel, table=True):
    """When a scheduled job (a campaign's reminders, a ward's digest) last ran, so a run
    missed while the bot was down is made up once, not once per missed slot."""

    __tablename__ = "schedule_run"
    key: str = Field(max_length=64, primary_key=True)
    last_run_at: datetime = _when()


class DownloadLink(SQLModel, table=True):
    """A one-time link to a file the chat cannot carry (an Excel export on Zalo); only the
    token's hash is stored, and the file is made when the link is opened."""

    __tablename__ = "download_link"
    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(max_length=64, unique=True, index=True)
    member_id: int = Field(foreign_key="member.id")
    kind: str = Field(max_length=32)
    ward_id: int = Field(foreign_key="ward.id")
    created_at: datetime = _when()
    expires_at: datetime = _when()
    used_at: datetime | None = _when(nullable=True)


# --- Guides in the group chats (#17): posts, reads per group, numbers, series ----------------
class GuidePost(SQLModel, table=True):
    """One guide posted to one group chat, by the share button (a notice) or by a series.
    `dedupe` is the outbox row's key: "posts sent" counts the rows really delivered."""

    __tablename__ = "guide_post"
    id: int | None = Field(default=None, primary_key=True)
    ward_id: int = Field(foreign_key="ward.id", index=True)
    topic_key: str = Field(max_length=64, index=True)
    group_id: int = Field(foreign_key="residential_group.id")
    platform: str = Field(max_length=16)
    chat_id: str = Field(max_length=64)
    source: str = Field(max_length=12)  # "share" (a notice) or "series"
    source_id: int
    dedupe: str = Field(max_length=160, unique=True)
    created_at: datetime = _when()


class GuideRead(SQLModel, table=True):
    """A person opened a guide's steps from a group post: one row per person, guide and
    group (opening it again is not a new read)."""

    __tablename__ = "guide_read"
    __table_args__ = (
        sa.UniqueConstraint("topic_key", "member_id", "group_id", name="uq_guide_read"),
    )
    id: int | None = Field(default=None, primary_key=True)
    ward_id: int | None = Field(default=None, foreign_key="ward.id", index=True)
    group_id: int | None = Field(default=None, foreign_key="residential_group.id")
    topic_key: str = Field(max_length=64, index=True)
    member_id: int = Field(foreign_key="member.id")
    via: str = Field(max_length=12)  # "link" (Telegram deep link) or "code" ("hd 3")
    at: datetime = _when()


class GuideNumber(SQLModel, table=True):
    """A short, stable number per guide for platforms without links: "hd 3"."""

    __tablename__ = "guide_number"
    number: int | None = Field(default=None, primary_key=True)
    topic_key: str = Field(max_length=64, unique=True)


class GuideSeries(SQLModel, table=True):
    """A series (chuyên đề): guides in order, posted one per slot of its rhythm to its
    groups between its first and last day. `next_index` is the next guide to post; a run
    claims it by moving it on, so one slot never posts twice."""

    __tablename__ = "guide_series"
    id: int | None = Field(default=None, primary_key=True)
    ward_id: int = Field(foreign_key="ward.id", index=True)
    title: str = Field(max_length=200)
    topic_keys: list[Any] = _json_list()
    group_ids: list[Any] = _json_list()
    days: str = Field(max_length=40)
    at_time: str = Field(max_length=5)
    starts_on: date
    ends_on: date | None = None
    campaign_id: int | None = Field(default=None, foreign_key="campaign.id")
    state: str = Field(default="active", max_length=12)  # active, paused, ended
    next_index: int = Field(default=0)
    sent_at: list[Any] = _json_list()  # ISO time each guide went out, in order
    created_by: int | None = Field(default=None, foreign_key="member.id")
    created_at: datetime = _when()
    last_run_at: datetime | None = _when(nullable=True)


# --- closing the loops (issue 15): personal reminders, mutes, visit requests ------------------
class PersonalReminder(SQLModel, table=True):
    """One nudge to one household about a campaign's step it still misses. Planned as a row,
    sent to the household's linked residents when due; dropped (`cancelled`) in the same
    transaction as the step is logged, so it never reaches a household that is done.
    `done_at` records when the step was done after the reminder went: the reminders' effect."""

    __tablename__ = "personal_reminder"
    __table_args__ = (sa.Index("ix_personal_reminder_due", "state", "due_at"),)
    id: int | None = Field(default=None, primary_key=True)
    household_id: int = Field(foreign_key="household.id", index=True)
    campaign_id: int = Field(foreign_key="campaign.id", index=True)
    group_id: int = Field(foreign_key="residential_group.id")
    step_key: str = Field(max_length=32)
    state: str = Field(default="pending", max_length=12)
    due_at: datetime = _when()
    created_at: datetime = _when()
    sent_at: datetime | None = _when(nullable=True)
    done_at: datetime | None = _when(nullable=True)


class ReminderMute(SQLModel, table=True):
    """A person who said /tatnhac: no personal reminders in this ward until /batnhac."""

    __tablename__ = "reminder_mute"
    member_id: int = Field(foreign_key="member.id", primary_key=True)
    ward_id: int = Field(foreign_key="ward.id", primary_key=True)
    muted_at: datetime = _when()


class VisitRequest(SQLModel, table=True):
    """"Nhờ tổ công nghệ số đến giúp": a household asks the group's helpers to come by."""

    __tablename__ = "visit_request"
    id: int | None = Field(default=None, primary_key=True)
    household_id: int = Field(foreign_key="household.id", index=True)
    group_id: int = Field(foreign_key="residential_group.id", index=True)
    step_key: str = Field(default="", max_length=32)
    requested_by: int | None = Field(default=None, foreign_key="member.id")
    requested_at: datetime = _when()
    done_at: datetime | None = _when(nullable=True)


class Contest(SQLModel, table=True):
    """The ward's knowledge contest: questions copied from a bank when created (so editing the
    bank never changes a running contest), a period, the groups taking part, and which of
    its group posts (announcement, mid-contest standing, final result) went out."""

    __tablename__ = "contest"
    id: int | None = Field(default=None, primary_key=True)
    ward_id: int = Field(foreign_key="ward.id", index=True)
    title: str = Field(max_length=200)
    questions: list[Any] = _json_list()
    per_player: int = Field(default=10)
    attempts: int = Field(default=1)
    starts_at: datetime = _when()
    ends_at: datetime = _when()
    group_ids: list[Any] = _json_list()
    state: str = Field(default="active", max_length=12)
    announced: bool = Field(default=False)
    mid_posted: bool = Field(default=False)
    final_posted: bool = Field(default=False)
    created_by: int | None = Field(default=None, foreign_key="member.id")
    created_at: datetime = _when()


class ContestPlay(SQLModel, table=True):
    """One attempt of one person: the questions drawn for him, his answers so far, the score."""

    __tablename__ = "contest_play"
    id: int | None = Field(default=None, primary_key=True)
    contest_id: int = Field(foreign_key="contest.id", index=True)
    member_id: int = Field(foreign_key="member.id", index=True)
    group_id: int | None = Field(default=None, foreign_key="residential_group.id")
    household_id: int | None = Field(default=None, foreign_key="household.id")
    attempt: int = Field(default=1)
    drawn: list[Any] = _json_list()
    answers: list[Any] = _json_list()
    score: int = Field(default=0)
    started_at: datetime = _when()
    finished_at: datetime | None = _when(nullable=True)


# --- delivery room (migration 0007) -------------------------------------------------------
class SendLease(SQLModel, table=True):
    """Who sends for a platform token right now. Telegram's budget is per token, so on a
    shared PostgreSQL one instance at a time holds the lease (renewed every few seconds);
    when it stops renewing, another takes over once `expires_at` has passed."""

    __tablename__ = "send_lease"
    name: str = Field(max_length=32, primary_key=True)
    holder: str = Field(default="", max_length=64)
    expires_at: datetime = _when()
    acquired_at: datetime = _when()


# --- ops (#14): admins' chosen ward, revocable dashboard sessions --------------------------


class AdminWard(SQLModel, table=True):
    """The ward an admin from `[admins]` is working in (they hold no grant that names one)."""

    __tablename__ = "admin_ward"
    member_id: int = Field(foreign_key="member.id", primary_key=True)
    ward_id: int = Field(foreign_key="ward.id")
    chosen_at: datetime = _when()


class DashboardSession(SQLModel, table=True):
    """A signed-in dashboard session; "Đăng xuất" ends it here, so a copied cookie dies too.
    Only a hash of the session id is stored."""

    __tablename__ = "dashboard_session"
    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(max_length=64, unique=True, index=True)
    member_id: int = Field(foreign_key="member.id", index=True)
    created_at: datetime = _when()
    ended_at: datetime | None = _when(nullable=True)
