"""Ward-level digital-transformation outreach bot for Telegram and Zalo."""

__version__ = "0.1.0"
