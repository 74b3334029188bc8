"""One module per feature; each ends with `register(router)`."""

from __future__ import annotations

from bot.router import Router
from handlers import (
    accounts,
    basics,
    campaigns,
    chats,
    contests,
    dashboard,
    explanations,
    feedback,
    feedback_followup,
    guides,
    households,
    invites,
    notices,
    polls,
    progress,
    reminders,
    series,
    staff,
)


def register_all(router: Router) -> None:
    """Registration order is the order of /trogiup and the platform's command menu."""
    basics.register(router)
    explanations.register(router)
    feedback.register(router)
    feedback_followup.register(router)
    households.register(router)
    reminders.register(router)
    progress.register(router)
    notices.register(router)
    polls.register(router)
    contests.register(router)
    campaigns.register(router)
    guides.register(router)
    series.register(router)
    invites.register(router)
    chats.register(router)
    accounts.register(router)
    dashboard.register(router)
    staff.register(router)
