"""The command line: `guildbot --help` and `python -m app --help` list every command."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import app.__main__ as cli
from testsupport.bots import bot_env

ROOT = Path(__file__).resolve().parents[2]


def help_text(*command: str) -> str:
    result = subprocess.run(
        [*command, "--help"], capture_output=True, text=True, timeout=60, check=True, cwd=ROOT
    )
    return result.stdout


def assert_lists_every_command(text: str) -> None:
    """Each command on a line of its own with its help beside it (or below, for long names)."""
    for name in cli.COMMANDS:
        line = rf"^    {re.escape(name)}(  +|\n {{6,}})\S"
        assert re.search(line, text, re.MULTILINE), f"no help line for {name}:\n{text}"


def test_module_help_lists_every_command() -> None:
    text = help_text(sys.executable, "-m", "app")
    assert text.startswith("usage: python -m app ")
    assert_lists_every_command(text)


def test_docstring_names_every_command() -> None:
    assert cli.__doc__ is not None
    lines = [line.split() for line in cli.__doc__.splitlines()]
    documented = {words[1] for words in lines if len(words) > 1 and words[0] == "guildbot"}
    assert set(cli.COMMANDS) <= documented


def test_console_script_is_the_same_command_line() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["scripts"] == {"guildbot": "app.__main__:main"}
    script = Path(sys.executable).parent / "guildbot"
    if not script.exists():
        pytest.skip("the guildbot console script is not installed here (`make deps` installs it)")
    text = help_text(str(script))
    assert text.startswith("usage: guildbot ")
    assert_lists_every_command(text)


def test_web_without_its_settings_says_what_it_needs() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "app", "web"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env=bot_env(),  # no token, no client id
    )
    assert done.returncode == 2
    assert "needs DISCORD_TOKEN and DISCORD_CLIENT_ID" in done.stderr
