"""What the console makes of a line (options, buttons) and how it draws the bot's text."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from sandbox.console_markdown import discord_markdown, relative, timestamps
from sandbox.console_parse import find_button, parse_slash, typing_order, usages

USER, STRING, INTEGER = 6, 3, 4
#: /ban as Discord requires it registered: required options first.
BAN: dict[str, Any] = {
    "name": "ban",
    "description": "Ban a user",
    "options": [
        {"name": "user", "type": USER, "required": True},
        {"name": "reason", "type": STRING, "required": True},
        {"name": "duration", "type": STRING},
        {"name": "delete_days", "type": INTEGER},
    ],
}
CONFIG: dict[str, Any] = {
    "name": "config",
    "description": "Settings",
    "options": [
        {"name": "show", "type": 1, "description": "Show them"},
        {
            "name": "levelup",
            "type": 1,
            "description": "Where level-ups go",
            "options": [
                {
                    "name": "where",
                    "type": STRING,
                    "required": True,
                    "choices": [{"name": n, "value": n} for n in ("here", "dm", "channel")],
                },
                {"name": "channel", "type": 7},
            ],
        },
    ],
}


def options(command: dict[str, Any], line: str) -> dict[str, Any]:
    return parse_slash(command, line.split()).options


def test_the_free_text_is_typed_last() -> None:
    assert [o["name"] for o in typing_order(BAN["options"])] == [
        "user",
        "duration",
        "delete_days",
        "reason",
    ]
    assert usages(BAN) == [("/ban user [duration] [delete_days] reason", "Ban a user")]
    assert usages(CONFIG) == [
        ("/config show", "Show them"),
        ("/config levelup here|dm|channel [channel]", "Where level-ups go"),
    ]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        # by name, in any order; a named text option takes the plain words after it
        (
            "user:@carol duration:7d reason:raid",
            {"user": "@carol", "duration": "7d", "reason": "raid"},
        ),
        (
            "reason:raid from elsewhere user:@carol duration=7d",
            {"reason": "raid from elsewhere", "user": "@carol", "duration": "7d"},
        ),
        # positionally, in the documented order; the free text takes the rest
        (
            "@carol 7d 1 raid from afar",
            {"user": "@carol", "duration": "7d", "delete_days": "1", "reason": "raid from afar"},
        ),
        # optional options are skipped when the words left are needed, or do not fit
        ("@carol raid", {"user": "@carol", "reason": "raid"}),
        ("@carol 7d raid", {"user": "@carol", "duration": "7d", "reason": "raid"}),
        ("@carol 7d spam bot", {"user": "@carol", "duration": "7d", "reason": "spam bot"}),
        # mixed: names first, then positional words fill what is left
        ("@carol duration:2h spam", {"user": "@carol", "duration": "2h", "reason": "spam"}),
    ],
)
def test_options_by_name_or_position(line: str, expected: dict[str, Any]) -> None:
    assert options(BAN, line) == expected


def test_subcommands_choices_and_mistakes() -> None:
    call = parse_slash(CONFIG, ["levelup", "channel", "#levels"])
    assert (call.sub, call.options) == ("levelup", {"where": "channel", "channel": "#levels"})
    assert options(CONFIG, "levelup dm") == {"where": "dm"}
    with pytest.raises(ValueError, match="needs a subcommand: show, levelup"):
        parse_slash(CONFIG, ["nope"])
    with pytest.raises(ValueError, match="too many arguments: extra"):
        parse_slash(CONFIG, ["show", "extra"])


PAGES = [
    {
        "type": 1,
        "components": [
            {"type": 2, "label": "◀ Previous", "custom_id": "a" * 32},
            {"type": 2, "label": "Next ▶", "custom_id": "b" * 32},
            {"type": 2, "label": "Next", "custom_id": "c" * 32},
            {"type": 2, "label": "Close", "custom_id": "shop:close"},
        ],
    }
]


def test_buttons_are_found_by_id_or_label() -> None:
    assert find_button(PAGES, "shop:close") == "shop:close"
    assert find_button(PAGES, "previous") == "a" * 32  # any case, emoji ignored
    assert find_button(PAGES, "PREV") == "a" * 32  # the start of a label
    assert find_button(PAGES, "clo") == "shop:close"
    with pytest.raises(LookupError, match="matches several buttons: 'Next ▶' \\(bbbb"):
        find_button(PAGES, "next")
    with pytest.raises(LookupError, match=r"no button 'buy'.*'Close'"):
        find_button(PAGES, "buy")


def test_markdown_is_drawn_as_discord_does() -> None:
    text = discord_markdown(
        "**1.** alice — *50* `code *x*`\n- one\n> quoted __under__\n```\n**raw**\n```\nend"
    )
    assert text.plain == "1. alice — 50 code *x*\n  • one\n▌ quoted under\n**raw**\nend"
    styled = {text.plain[s.start : s.end]: str(s.style) for s in text.spans}
    assert styled["1."] == "bold" and styled["50"] == "italic"
    assert styled["code *x*"] == "cyan" and styled["under"] == "underline"
    assert styled["**raw**"] == "cyan"


def test_timestamps_relative_and_absolute() -> None:
    now = datetime(2026, 12, 3, 5, 41, 7).astimezone()
    soon = int((now + timedelta(hours=2)).timestamp())
    past = int((now - timedelta(minutes=5)).timestamp())
    shown = timestamps(f"ends <t:{soon}:R>, began <t:{past}:R>; at <t:{soon}:t> <t:{soon}>", now)
    assert shown == "ends in 2 h, began 5 min ago; at 07:41 3 December 2026 07:41"
    assert timestamps(f"<t:{soon}:d> <t:{soon}:D>", now) == "2026-12-03 3 December 2026"
    assert [relative(s) for s in (0.4, 30, -90, 86_400 * 3, -86_400 * 400)] == [
        "now",
        "in 30 s",
        "2 min ago",
        "in 3 days",
        "1 year ago",
    ]
