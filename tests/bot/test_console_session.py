"""The newcomer's console with this bot (`python -m app sandbox`, as `make run` starts it):
scripted sessions for what a person types, and one at a terminal for what a person sees."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

import pytest

from testsupport.bots import bot_env
from testsupport.terminal import PseudoTerminal

pytestmark = pytest.mark.slow

FIRST_RUN = """\
/daily
expect "You claimed 100 coins"
/leaderboard
expect "1. @alice — 100 coins"
commands
as moderator
/ban user:@carol duration:7d reason:raid
expect "Temporary ban (1w) for @carol. Ends in 7 days."
/ban @bob 7d 1 spamming links
expect "Temporary ban (1w) for @bob"
!unban @bob
expect "Unban for @bob"
/warn @alice 1
/warn @alice 2
/warn @alice 3
/warn @alice 4
/warn @alice 5
/warn @alice 6
/warn @alice 7
/warn @alice 8
/warn @alice 9
/warn @alice 10
/warn @alice 11
/modlog @alice
expect "Page 1"
click next
expect "Page 2"
click PREV
expect "Page 1"
"""


async def console(workdir: Path, script: str, *args: str) -> tuple[int, str]:
    """`python -m app sandbox --script` in `workdir` (no bot settings: the embedded default)."""
    path = workdir / "script.txt"
    path.write_text(script)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "app",
        "sandbox",
        "--script",
        str(path),
        "--settle",
        "0.15",
        *args,
        cwd=workdir,
        env=bot_env(),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(proc.communicate(), 120)
    return proc.returncode or 0, output.decode(errors="replace")


async def test_a_session_as_the_readme_describes_it(tmp_path: Path) -> None:
    code, output = await console(tmp_path, FIRST_RUN)
    assert code == 0 and "script passed" in output, output
    assert "**" not in output and "<t:" not in output and "<@" not in output
    assert "/ban user [duration] [delete_days] reason" in output  # `commands`
    assert "/config levelup here|dm|channel [channel]" in output
    assert "[button] Next" in output and "(id " not in output
    # The console's own database, beside the bot's (which it never touches), and its log.
    assert (tmp_path / "data" / "sandbox.sqlite3").exists()
    assert not (tmp_path / "data" / "bot.sqlite3").exists()
    log = (tmp_path / "data" / "sandbox.log").read_text()
    assert "has connected to Gateway" in log and "has connected" not in output


async def test_the_database_starts_with_the_world_unless_kept(tmp_path: Path) -> None:
    claim = '/daily\nexpect "You claimed 100 coins"\n'
    assert (await console(tmp_path, claim))[0] == 0
    kept = '/daily\nexpect-error "already claimed"\n!nosuchcmd\n'
    started = time.monotonic()
    code, output = await console(tmp_path, kept, "--keep", "--reply-timeout", "30")
    assert code == 0, output
    assert time.monotonic() - started < 25, output  # !nosuchcmd did not wait 30 s
    assert "(no reply: the bot has no command 'nosuchcmd'." in output
    assert "the bot keeps its data from the last run" in output
    code, output = await console(tmp_path, claim)  # --fresh, the default
    assert code == 0, output


async def test_at_a_terminal_only_the_session_shows(tmp_path: Path) -> None:
    term = PseudoTerminal([sys.executable, "-m", "app", "sandbox"], cwd=tmp_path, env=bot_env())
    try:
        await term.start()
        await term.expect(r"alice #general › ", within=90)
        term.type("/balance")
        term.press("enter")
        await term.expect("You hold 0 coins")
        await term.expect(r"alice #general › ")
        term.press("ctrl-d")
        assert await term.exit_code() == 0
    finally:
        term.close()
    shown = term.output
    assert [w for w in ("Shard ID", "PyNaCl", "davey", "INFO", "Traceback") if w in shown] == []
    log = (tmp_path / "data" / "sandbox.log").read_text()
    assert "Shard ID 0 has connected" in log and "PyNaCl" not in log
