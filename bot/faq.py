"""The guide button's payload: drawn by `/hoidap` (handlers/explanations.py, which handles the
press) and under the scheduled reminders (bot/jobs/), so it lives in bot/, which never imports
handlers/."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from bot.payloads import Payload


@dataclass(frozen=True)
class FaqPress(Payload, prefix="faq"):
    """`home`; `cat` category `key` (page `value`); `t` topic `key`; `steps` of topic `key`;
    `v` vote on topic `key`: `value` 1 helpful, 0 not."""

    action: Literal["home", "cat", "t", "steps", "v"]
    key: str = ""
    value: int = 0
