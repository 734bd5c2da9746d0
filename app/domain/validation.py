"""Checks on raw input shared by the domain functions. Each raises a typed error."""

from __future__ import annotations

import unicodedata
from datetime import timedelta
from typing import Any

from app.domain.errors import InvalidAmount, InvalidDuration, InvalidId, InvalidReason

MAX_SNOWFLAKE = 2**63 - 1
MAX_REASON = 1024
MAX_BALANCE = 10**15


def snowflake(value: Any, what: str = "id") -> int:
    """A positive 64-bit id (guild, user, channel)."""
    if not isinstance(value, int) or isinstance(value, bool) or not 0 < value <= MAX_SNOWFLAKE:
        raise InvalidId(f"That is not a valid {what}.")
    return value


def amount(value: Any, maximum: int) -> int:
    """A whole number of coins, at least 1 and at most `maximum`."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidAmount("The amount must be a whole number of coins.")
    if value <= 0:
        raise InvalidAmount("The amount must be at least 1.")
    if value > maximum:
        raise InvalidAmount(f"The amount may be at most {maximum:,}.")
    return value


def reason(value: Any, required: bool) -> str:
    """A reason of at most 1024 characters; empty is refused when `required`."""
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise InvalidReason("The reason must be text.")
    text = value.strip()
    if required and not text:
        raise InvalidReason("A reason is required.")
    if len(text) > MAX_REASON:
        raise InvalidReason(f"The reason may be at most {MAX_REASON} characters.")
    if "\x00" in text:
        raise InvalidReason("The reason contains a character that cannot be stored.")
    return text


def clean_text(value: str | None, limit: int = MAX_REASON) -> str:
    """Text that came from Discord (an audit-log reason), made storable rather than refused.

    Control characters other than newline and tab (NUL among them) are dropped, surrounding
    space stripped, and the result clipped to `limit` characters with an ellipsis.
    """
    text = "".join(
        c for c in value or "" if c in "\n\t" or unicodedata.category(c) not in ("Cc", "Cs")
    ).strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def duration(value: Any, maximum: timedelta) -> timedelta:
    """A positive duration no longer than `maximum`."""
    if not isinstance(value, timedelta):
        raise InvalidDuration("The duration is missing or not understood.")
    if value <= timedelta(0):
        raise InvalidDuration("The duration must be positive.")
    if value > maximum:
        raise InvalidDuration(f"The duration may be at most {_human(maximum)}.")
    return value


def case_number(value: Any) -> int:
    """A positive case number."""
    if not isinstance(value, int) or isinstance(value, bool) or not 0 < value < 2**31:
        raise InvalidId("That is not a valid case number.")
    return value


def _human(delta: timedelta) -> str:
    days, seconds = delta.days, delta.seconds
    if days and not seconds:
        return f"{days} days"
    return str(delta)
