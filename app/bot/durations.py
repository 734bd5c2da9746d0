"""Durations typed by moderators: "10m", "2h", "7d", "1w2d", "1h 30m", "1 day 12 hours".

A duration is one or more parts, each a number and a unit, written together or apart; each
unit at most once. In a prefix command a duration may span several words: `read_duration`
takes the longest run of words that reads as one duration and refuses a digit right after it,
so "1h 30m spamming" is 1 h 30 min with the reason "spamming", and "1h 30 spamming" is refused
rather than guessed.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
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
#: Most words one duration may span in a prefix command ("1 week 2 days 3 hours 4 minutes").
MAX_WORDS = 8
#: Longer than any cap the domain applies, small enough for timedelta and datetime arithmetic.
MAX_DURATION = timedelta(days=36_500)
HINT = "Use a duration like 10m, 2h, 7d, 1w2d or 1h 30m."
#: A shown duration this close to a whole minute is shown as that minute (clock drift).
ROUND_TO_MINUTE_WITHIN_S = 2

_PART = re.compile(r"(\d{1,9})\s*([a-z]+)")
_WHOLE = re.compile(r"(?:\d{1,9}\s*[a-z]+\s*)+")
_SHOWN_UNITS = (("w", 604_800), ("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1))


class DurationError(commands.BadArgument):
    """The text is not a duration."""


def parse_duration(text: str, hint: str = HINT) -> timedelta:
    """Parse "10m", "2h", "7d", "1w2d", "1h 30m" into a timedelta; raise DurationError."""
    cleaned = text.strip().lower().replace(",", " ")
    if not cleaned or len(cleaned) > MAX_TEXT or not _WHOLE.fullmatch(cleaned):
        raise DurationError(f"`{shown(text)}` is not a duration. {hint}")
    seconds = 0
    seen: set[int] = set()
    for number, unit in _PART.findall(cleaned):
        size = UNITS.get(unit)
        if size is None:
            raise DurationError(f"`{shown(unit)}` is not a time unit. {hint}")
        if size in seen:
            raise DurationError(f"`{shown(text)}` gives a unit twice. {hint}")
        seen.add(size)
        seconds += int(number) * size
    if seconds > MAX_DURATION.total_seconds():
        raise DurationError("That duration is far too long.")
    return timedelta(seconds=seconds)


def read_duration(words: Sequence[str], hint: str = HINT) -> tuple[timedelta, int]:
    """The duration at the start of `words` and how many words it spans.

    Takes the longest run of words (at most MAX_WORDS) that reads as one duration. Refuses when
    no run does (with the first word's own error), and when the word after it starts with a
    digit: "1h 30 spamming" could mean 1 h 30 min, so it is not guessed.
    """
    if not words:
        raise DurationError(f"Missing the duration. {hint}")
    used, duration = 1, None
    for count in range(min(len(words), MAX_WORDS), 1, -1):
        try:
            used, duration = count, parse_duration(" ".join(words[:count]), hint)
            break
        except DurationError:
            continue
    if duration is None:
        used, duration = 1, parse_duration(words[0], hint)  # raises the first word's own error
    if used < len(words) and looks_like_duration(words[used]):
        raise DurationError(
            f"`{shown(words[used])}` after `{shown(' '.join(words[:used]))}` is not part of "
            f"a duration I can read. {hint} Start the reason with a word."
        )
    return duration, used


def looks_like_duration(word: str) -> bool:
    """True for a word that starts with a digit: probably a (mistyped) duration."""
    return word[:1].isdigit()


def format_duration(delta: timedelta) -> str:
    """A short human form: "1w 2d", "3h 20m", "45s".

    A duration of a minute or more within ROUND_TO_MINUTE_WITHIN_S of a whole minute is shown
    as that minute: a 600 s timeout measured as 599.4 s is "10m", not "9m 59s".
    """
    seconds = round(delta.total_seconds())
    minutes = round(seconds / 60)
    if minutes and abs(seconds - minutes * 60) <= ROUND_TO_MINUTE_WITHIN_S:
        seconds = minutes * 60
    if seconds <= 0:
        return "0s"
    parts = []
    for name, size in _SHOWN_UNITS:
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{name}")
    return " ".join(parts)


def shown(text: str) -> str:
    """User text fit to quote in a one-line reply (no backticks, at most 32 characters)."""
    clean = " ".join(text.replace("`", "'").split())
    return clean if len(clean) <= 32 else clean[:31] + "…"
