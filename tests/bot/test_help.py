"""`help`: only what the caller may use, by area; one command's usage; and the one order of
options that the docs, `help` and the sandbox console all give."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from app.bot.cogs.help import usage
from sandbox.console_parse import usages
from sandbox.records import MessageView
from tests.bot.harness import Harness, is_error

FORMS = ["slash", "prefix"]
DOCS = Path(__file__).resolve().parents[2] / "docs" / "commands.md"


def areas(reply: MessageView) -> dict[str, str]:
    return {f["name"]: f["value"] for f in reply.embeds[0]["fields"]}


@pytest.mark.parametrize("form", FORMS)
async def test_members_see_no_staff_commands(h: Harness, form: str) -> None:
    reply = await h.run(form, "m1", "help")
    listed = areas(reply)
    assert list(listed) == ["Economy", "Levels"]
    assert "`/transfer` Send some of your coins" in listed["Economy"]
    text = reply.text()
    assert not any(f"`/{name}`" in text for name in ("ban", "warn", "give", "config", "help"))


async def test_moderators_and_admins_see_theirs(h: Harness) -> None:
    moderator = areas(await h.run("slash", "mod", "help"))
    assert list(moderator) == ["Economy", "Levels", "Moderation"]
    assert "`/ban`" in moderator["Moderation"] and "`/modlog-export`" in moderator["Moderation"]
    admin = areas(await h.run("prefix", "admin", "help"))
    assert list(admin) == ["Economy", "Levels", "Moderation", "Settings"]
    assert "`/give`" in admin["Economy"] and "`/fine`" in admin["Moderation"]
    assert "`/config` Show this server's settings. (currency, daily" in admin["Settings"]


@pytest.mark.parametrize("form", FORMS)
async def test_help_on_one_command_shows_its_usage(h: Harness, form: str) -> None:
    reply = await h.run(form, "m1", "help", "transfer", command="transfer")
    embed = reply.embeds[0]
    assert embed["title"] == "Help: transfer"
    assert embed["description"].startswith("`/transfer member amount`  or  `!transfer member")
    assert "Send some of your coins to another member." in embed["description"]
    options = areas(reply)["Options"]
    assert "`member` — Who receives the coins" in options and "`amount` — How many" in options
    ban = (await h.run(form, "m1", "help", "ban", command="ban")).embeds[0]
    assert "`/ban user [duration] [delete_days] reason`" in ban["description"]
    fields = {f["name"]: f["value"] for f in ban["fields"]}
    assert fields["Needs"] == "Ban Members" and fields["You"] == "cannot use it here"
    missing = await h.run(form, "m1", "help", "nosuch", command="nosuch")
    assert is_error(missing) and "There is no command `nosuch`" in missing.content


def documented() -> set[str]:
    """The first cell of every command row of docs/commands.md: `name sub options`."""
    rows = re.findall(r"^\| `([^`]+)`", DOCS.read_text(), re.MULTILINE)
    return {row.replace("\\|", "|") for row in rows}


async def test_docs_help_and_console_give_options_in_one_order(h: Harness) -> None:
    """docs/commands.md's tables, `help` (the prefix form) and the console's positional order
    (from the registered slash schema, where Discord puts required options first)."""
    tree = h.bot.tree
    console = {
        line.removeprefix("/")
        for command in tree.get_commands()
        for line, _ in usages(command.to_dict(tree))
    }
    docs = documented()
    for command in h.bot.walk_commands():
        if command.qualified_name in ("help", "config"):  # a group's own row is `config`
            continue
        if not getattr(command, "with_app_command", True):  # prefix-only aliases (config show)
            continue
        if getattr(command, "commands", None):
            continue
        assert usage(command) in docs, usage(command)
        assert usage(command) in console, usage(command)
    assert "help [command]" in docs and "config" in docs
    assert console - {"config show"} == docs - {"config"}
