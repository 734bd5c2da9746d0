"""Durations typed by moderators: "10m", "2h", "7d", "1w2d", "1h 30m"."""

from __future__ import annotations

import re
from datetime import timedelta

from discord.ext import commands

UNITS = {
    "s": 1,
    "sec": 1,
    "secs": 1,
    "second": 1,
    "seconds": 1,
    "m": 60,
    "min": 60,
    "mins": 60,
    "minute": 60,
    "minutes": 60,
    "h": 3_600,
    "hr": 3_600,
    "hrs": 3_600,
    "hour": 3_600,
    "hours": 3_600,
    "d": 86_400,
    "day": 86_400,
    "days": 86_400,
    "w": 604_800,
    "week": 604_800,
    "weeks": 604_800,
}
MAX_TEXT = 64
#: Longer than any cap the domain applies, small enough for timedelta and datetime arithmetic.
MAX_DURATION = timedelta(days=36_500)
HINT = "Use a duration like 10m, 2h, 7d or 1w2d."

_PART = re.compile(r"(\d{1,9})\s*([a-z]+)")
_WHOLE = re.compile(r"(?:\d{1,9}\s*[a-z]+\s*)+")


class DurationError(commands.BadArgument):
    """The text is not a duration."""


def parse_duration(text: str) -> timedelta:
    """Parse "10m", "2h", "7d", "1w2d", "1h 30m" into a timedelta; raise DurationError."""
    cleaned = text.strip().lower().replace(",", " ")
    if not cleaned or len(cleaned) > MAX_TEXT or not _WHOLE.fullmatch(cleaned):
        raise DurationError(f"`{_shown(text)}` is not a duration. {HINT}")
    seconds = 0
    for number, unit in _PART.findall(cleaned):
        if unit not in UNITS:
            raise DurationError(f"`{unit}` is not a time unit. {HINT}")
        seconds += int(number) * UNITS[unit]
    if seconds > MAX_DURATION.total_seconds():
        raise DurationError("That duration is far too long.")
    return timedelta(seconds=seconds)


def looks_like_duration(word: str) -> bool:
    """True for a word that starts with a digit: probably a mistyped duration."""
    return word[:1].isdigit()


def format_duration(delta: timedelta) -> str:
    """A short human form: "1w 2d", "3h 20m", "45s"."""
    seconds = int(delta.total_seconds())
    if seconds <= 0:
        return "0s"
    parts = []
    for name, size in (("w", 604_800), ("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)):
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{name}")
    return " ".join(parts)


def _shown(text: str) -> str:
    clean = text.replace("`", "'")
    return clean if len(clean) <= 32 else clean[:31] + "…"


class Duration(commands.Converter[timedelta]):
    """Command argument converter: a string option in slash commands, a word in prefix ones."""

    async def convert(self, ctx: commands.Context, argument: str) -> timedelta:  # type: ignore[type-arg]
        """Parse the argument or raise DurationError (a BadArgument)."""
        return parse_duration(argument)
