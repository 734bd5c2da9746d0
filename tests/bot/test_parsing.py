"""The argument grammar as units: durations, ban flags, names, filters and how amounts read.

Prefix converters run on discord.py's own StringView, positioned as discord.py leaves it after
reading the argument's first word; the end-to-end forms are in test_arguments.py.
"""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from discord.ext import commands
from discord.ext.commands.view import StringView

from app.bot.converters import (
    ActionFilterConverter,
    BanDurationConverter,
    DeleteDaysConverter,
    DurationConverter,
    NotUnique,
    action_named,
    pick_by_username,
    referenced_id,
)
from app.bot.durations import DurationError, format_duration, parse_duration, read_duration
from app.bot.render import amount
from app.domain.types import CaseAction

MIN = timedelta(minutes=1)


def prefix_ctx(text: str) -> tuple[Any, str]:
    """A context whose view has just read the first word of `text` (as discord.py does)."""
    view = StringView(text)
    view.skip_ws()
    previous = view.index
    first = view.get_quoted_word()
    view.previous = previous
    return SimpleNamespace(view=view, interaction=None), first or ""


def rest(ctx: Any) -> str:
    return str(ctx.view.read_rest().strip())


@pytest.mark.parametrize(
    ("words", "expected", "used"),
    [
        (["1h", "30m", "spamming"], 90 * MIN, 2),
        (["1h30m", "spamming"], 90 * MIN, 1),
        (["1", "day", "12", "hours", "rude"], timedelta(hours=36), 4),
        (["1w2d"], timedelta(days=9), 1),
        (["10", "min", "of", "spam"], 10 * MIN, 2),
        (["3", "days", "raid"], timedelta(days=3), 2),
        (["2h", "m8", "is", "rude"], 120 * MIN, 1),
    ],
)
def test_read_duration_takes_the_longest_readable_run(
    words: list[str], expected: timedelta, used: int
) -> None:
    assert read_duration(words) == (expected, used)


@pytest.mark.parametrize(
    ("words", "message"),
    [
        (["1h", "30", "spamming"], "`30` after `1h`"),
        (["1h", "2h"], "`2h` after `1h`"),
        (["3", "raid"], "`3` is not a duration"),
        (["5q", "spam"], "`q` is not a time unit"),
        (["soon"], "`soon` is not a duration"),
        ([], "Missing the duration"),
    ],
)
def test_read_duration_refuses_what_it_cannot_read_whole(words: list[str], message: str) -> None:
    with pytest.raises(DurationError, match=message):
        read_duration(words)


def test_a_unit_given_twice_is_refused() -> None:
    with pytest.raises(DurationError, match="gives a unit twice"):
        parse_duration("1 hour 2 hours")


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(600, "10m"), (599.4, "10m"), (598, "10m"), (597, "9m 57s"), (45, "45s"), (5400, "1h 30m")],
)
def test_format_duration_rounds_drift_to_the_minute(seconds: float, shown: str) -> None:
    assert format_duration(timedelta(seconds=seconds)) == shown


async def test_duration_converter_consumes_every_word_of_the_duration() -> None:
    ctx, first = prefix_ctx("1h 30m spamming hard")
    assert await DurationConverter().convert(ctx, first) == 90 * MIN
    assert rest(ctx) == "spamming hard"
    ctx, first = prefix_ctx("1 day 12 hours rude")
    assert await DurationConverter().convert(ctx, first) == timedelta(hours=36)
    assert rest(ctx) == "rude"


async def test_ban_duration_is_absent_unless_it_starts_with_a_digit() -> None:
    ctx, first = prefix_ctx("raid 3 times")
    assert await BanDurationConverter().convert(ctx, first) is None
    assert rest(ctx) == "raid 3 times"
    ctx, first = prefix_ctx("3 days raid")
    assert await BanDurationConverter().convert(ctx, first) == timedelta(days=3)
    assert rest(ctx) == "raid"
    ctx, first = prefix_ctx("3 raid")
    with pytest.raises(DurationError, match="write delete:3"):
        await BanDurationConverter().convert(ctx, first)


@pytest.mark.parametrize(
    ("text", "days", "left"),
    [
        ("delete:3 raid", 3, "raid"),
        ("DELETE=0 raid", 0, "raid"),
        ("--delete 2 raid", 2, "raid"),
        ("--delete=7 raid", 7, "raid"),
        ("raid delete:3", None, "raid delete:3"),
    ],
)
async def test_delete_days_only_as_a_flag(text: str, days: int | None, left: str) -> None:
    ctx, first = prefix_ctx(text)
    assert await DeleteDaysConverter().convert(ctx, first) == days
    assert rest(ctx) == left


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("delete:8 raid", "0 to 7 days"),
        ("--delete raid", "Write the days after --delete"),
        ("delete:1 7d raid", "put the duration before delete"),
    ],
)
async def test_delete_days_refusals(text: str, message: str) -> None:
    ctx, first = prefix_ctx(text)
    with pytest.raises(commands.BadArgument, match=message):
        await DeleteDaysConverter().convert(ctx, first)


@pytest.mark.parametrize(
    ("word", "action"),
    [
        ("ban", CaseAction.BAN),
        ("bans", CaseAction.BAN),
        ("Tempbans", CaseAction.TEMPBAN),
        ("warnings", CaseAction.WARN),
        ("untimeouts", CaseAction.UNTIMEOUT),
        ("notes", CaseAction.NOTE),
        ("bnas", None),
        ("", None),
    ],
)
def test_action_names_singular_and_plural(word: str, action: CaseAction | None) -> None:
    assert action_named(word) is action


async def test_action_filter_leaves_a_mention_for_the_moderator_and_refuses_the_rest() -> None:
    ctx, first = prefix_ctx("<@123456789012345678>")
    assert await ActionFilterConverter().convert(ctx, first) is None
    assert rest(ctx) == "<@123456789012345678>"
    ctx, first = prefix_ctx("bnas")
    with pytest.raises(commands.BadArgument, match="`bnas` is not a kind of case"):
        await ActionFilterConverter().convert(ctx, first)


def test_referenced_id_reads_mentions_and_ids_only() -> None:
    assert referenced_id("<@123456789012345678>") == 123456789012345678
    assert referenced_id("<@!123456789012345678>") == 123456789012345678
    assert referenced_id("123456789012345678") == 123456789012345678
    assert referenced_id("bob") is None and referenced_id("12345") is None
    assert referenced_id("<@&123456789012345678>") is None  # a role mention


def person(name: str, nick: str | None = None, global_name: str | None = None) -> Any:
    return SimpleNamespace(name=name, nick=nick, global_name=global_name)


def test_a_name_picks_a_member_by_username_only() -> None:
    helper, bob = person("helper", nick="bob"), person("bob")
    assert pick_by_username("bob", [helper, bob]) is bob
    assert pick_by_username("BOB", [helper, bob]) is bob
    with pytest.raises(NotUnique, match=r"No member has the username `bob`\. Did you mean "):
        pick_by_username("bob", [helper])
    with pytest.raises(NotUnique, match="`helper` \\(shown as “bob”\\)"):
        pick_by_username("bob", [helper, person("carol", global_name="bob")])
    with pytest.raises(NotUnique, match="Several members have the username"):
        pick_by_username("old", [person("old"), person("Old")])


def test_candidates_are_few() -> None:
    many = [person(f"m{i}") for i in range(30)]
    with pytest.raises(NotUnique) as refused:
        pick_by_username("m", many)
    assert "Did you mean `m0`, `m1`, `m2`, `m3`? Use" in str(refused.value)


@pytest.mark.parametrize(
    ("value", "currency", "shown"),
    [
        (1, "coins", "1 coin"),
        (1, "gems", "1 gem"),
        (2, "gems", "2 gems"),
        (1, "gold", "1 gold"),
        (1, "moss", "1 moss"),
        (1_234_567, "coins", "1,234,567 coins"),
        (0, "coins", "0 coins"),
    ],
)
def test_amounts_use_the_currency_name(value: int, currency: str, shown: str) -> None:
    assert amount(value, currency) == shown
