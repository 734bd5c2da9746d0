"""Pure pieces of the bot layer: durations, Discord limits, error messages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import discord
import pytest
from discord.ext import commands

from app.bot import render
from app.bot.client import shard_options
from app.bot.durations import DurationError, format_duration, parse_duration
from app.bot.errors import GENERIC, Refusal, describe, unwrap
from app.bot.runner import run_bot
from app.config import Settings
from app.coord.shard_plan import OutsidePlan
from app.domain.errors import DailyNotReady, InsufficientFunds


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10m", timedelta(minutes=10)),
        ("2h", timedelta(hours=2)),
        ("7d", timedelta(days=7)),
        ("1w2d", timedelta(days=9)),
        ("1h 30m", timedelta(minutes=90)),
        ("45S", timedelta(seconds=45)),
        ("3 days", timedelta(days=3)),
        ("0s", timedelta(0)),
    ],
)
def test_parse_duration(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "10",
        "m",
        "5q",
        "1h30",
        "-5m",
        "1.5h",
        "99999999999d",
        "999999999w",
        "x" * 100,
        "10m; drop table",
    ],
)
def test_parse_duration_refuses(text: str) -> None:
    with pytest.raises(DurationError):
        parse_duration(text)


def test_format_duration() -> None:
    assert format_duration(timedelta(days=9, hours=3)) == "1w 2d 3h"
    assert format_duration(timedelta(seconds=45)) == "45s"
    assert format_duration(timedelta(0)) == "0s"


def test_clip_keeps_limits_with_an_ellipsis() -> None:
    assert render.clip("abcdef", 4) == "abc…"
    assert render.clip("abc", 4) == "abc"
    assert render.one_line("a\n\nb   c", 10) == "a b c"


def test_make_embed_respects_every_limit() -> None:
    fields = [render.Field("n" * 300, "v" * 2000) for _ in range(40)]
    embed = render.make_embed("t" * 500, "d" * 9000, fields=fields, footer="f" * 3000)
    assert len(embed.title or "") == render.TITLE and (embed.title or "").endswith("…")
    assert len(embed.description or "") <= render.DESCRIPTION
    assert len(embed.fields) <= render.FIELDS
    assert all(len(f.value or "") <= render.FIELD_VALUE for f in embed.fields)
    assert all(len(f.name or "") <= render.FIELD_NAME for f in embed.fields)
    assert render.embed_size(embed) <= render.TOTAL
    assert "more not shown" in (embed.footer.text or "")


def test_fill_lines_takes_whole_lines_that_fit() -> None:
    text, used = render.fill_lines(["a" * 10, "b" * 10, "c" * 10], limit=25)
    assert (text, used) == ("a" * 10 + "\n" + "b" * 10, 2)
    text, used = render.fill_lines(["x" * 50], limit=20)
    assert used == 1 and len(text) == 20 and text.endswith("…")


def test_describe_expected_errors() -> None:
    assert describe(InsufficientFunds(1, 1200), currency="gems") == (
        "Not enough gems: the balance is 1 gem, 1,200 gems needed."
    )
    assert describe(Refusal("No.")) == "No."
    missing = commands.MissingPermissions(["ban_members"])
    assert describe(missing) == "You need the Ban Members permission to do that."
    later = datetime(2030, 1, 1, tzinfo=UTC)
    assert "<t:1893456000:R>" in (describe(DailyNotReady(later)) or "")
    assert describe(RuntimeError("boom")) is None and GENERIC


def test_unwrap_reaches_the_original_error() -> None:
    original = InsufficientFunds(1, 2)
    command = SimpleNamespace(name="transfer")
    wrapped = commands.HybridCommandError(
        discord.app_commands.CommandInvokeError(command, original)  # type: ignore[arg-type]  # a stand-in
    )
    assert unwrap(wrapped) is original


def test_shard_options_follow_the_shard_plan() -> None:
    def plain(**values: Any) -> Settings:
        unset = {"shard_count": None, "shard_ids": None, "shards_per_pod": None, "pod_index": None}
        return Settings(_env_file=None, **{**unset, **values})

    assert shard_options(plain()) == (None, None)
    assert shard_options(plain(shard_count="auto")) == (None, None)
    assert shard_options(plain(shard_count=2, shard_ids=[1])) == (2, [1])
    assert shard_options(plain(shard_count=8, shards_per_pod=4, pod_index=1)) == (8, [4, 5, 6, 7])
    with pytest.raises(OutsidePlan):
        shard_options(plain(shard_count=8, shards_per_pod=4, pod_index=2))


def test_run_bot_exits_with_one_line_outside_the_plan() -> None:
    settings = Settings(
        _env_file=None,
        discord_token="x",
        shard_count=4,
        shards_per_pod=2,
        pod_index=3,
    )
    assert run_bot(settings) == 2
    assert run_bot(Settings(_env_file=None, discord_token=None)) == 2
