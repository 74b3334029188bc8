"""Masking of personal numbers in free text residents write.

National ID numbers (12-digit CCCD, 9-digit CMND when a word nearby says so) are masked before
anything is stored: the bot never keeps them. Phone and bank card numbers are kept for the
reporter but masked wherever staff read the text.
"""

from __future__ import annotations

import re

from bot.services.explanations import fold

# A run of digits, possibly grouped by spaces, dots or dashes, possibly with a +84 or (+84)
# prefix; letters may touch it ("CCCD001099012345", "sdt0912345678"), other digits not.
_NUMBER = re.compile(r"(?<!\d)((?:\(\+84\)\s?|\+)?\d(?:[ .\-]?\d){7,22})(?!\d)")
_ID_WORDS = re.compile(r"(cccd|cmnd|can cuoc|chung minh|dinh danh|so cmt|cmt)\W*$")
_MASK = "*"


def _digits(text: str) -> str:
    return re.sub(r"\D", "", text)


def _folded_before(text: str, end: int) -> str:
    return fold(text[max(0, end - 30) : end])


def mask_national_ids(text: str) -> str:
    """Hide CCCD/CMND numbers entirely; used before a text is stored."""

    def repl(match: re.Match[str]) -> str:
        raw = match.group(1)
        digits = _digits(raw)
        is_id = len(digits) == 12 and not raw.startswith(("+", "(")) or (
            len(digits) == 9 and _ID_WORDS.search(_folded_before(text, match.start()) + " ")
            is not None
        )
        return _MASK * len(digits) if is_id else raw

    return _NUMBER.sub(repl, text)


def mask_contacts(text: str) -> str:
    """Hide phone and card numbers but their last three digits; used for staff views."""

    def repl(match: re.Match[str]) -> str:
        raw = match.group(1)
        digits = _digits(raw)
        phone = (len(digits) == 10 and digits.startswith("0")) or (
            len(digits) == 11 and digits.startswith("84")
        )
        card = 13 <= len(digits) <= 19
        if not (phone or card):
            return raw
        return digits[:2] + _MASK * (len(digits) - 5) + digits[-3:]

    return _NUMBER.sub(repl, text)
