"""The console runs a scripted session against the tiny bot (as a subprocess)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from sandbox_helpers import HERE, PYTHON, subprocess_env

pytestmark = pytest.mark.slow

SESSION = """\
# economy
/balance
expect "Alice has 100 coins"
/daily
expect "claimed 50"
/daily
expect-error "already claimed"
/transfer @bob 30
expect "Sent 30 coins to Bob"
/transfer bob amount:5000
expect-error "not enough"
as bob /balance
expect "130 coins"
# prefix commands, DMs and permissions
!echo hello there
expect "hello there"
!warn @carol spamming links
expect "warned Carol"
expect-dm carol "spamming links"
!kick @moderator
expect-error "50013"
# components, defer, followups
/buttons
click click ME
expect "clicked by alice"
/buttons
click tiny:click
expect "clicked by alice"
/roll 6 count:2
expect "total: 12"
/roll count:3 sides:4
expect "total: 12"
/slow
expect "done after defer"
# a moderator acts by hand; the bot logs the audit entry
as moderator
mod ban carol spam bot
expect "audit: ban"
hello everyone
expect-no-reply
dms carol
"""


async def run_console(script: Path, *args: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        PYTHON,
        "console_entry.py",
        "--script",
        str(script),
        "--settle",
        "0.15",
        "--log-file",
        str(script.with_suffix(".log")),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env=subprocess_env(),
        cwd=HERE,
    )
    output, _ = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode or 0, output.decode()


async def test_scripted_console_session(tmp_path: Path) -> None:
    script = tmp_path / "session.txt"
    script.write_text(SESSION)
    code, output = await run_console(script)
    assert code == 0, output
    assert "you are alice in #general" in output
    assert "╭─ Balance" in output and "Alice has 100 coins" in output
    assert "[ephemeral] [response] [error]" in output
    assert "GuildBot DM to carol" in output and "You were warned in Demo" in output
    assert "[button] Click me\n" in output and "(id tiny:click)" not in output  # a label
    assert "[update]" in output and "[followup]" in output
    assert "GuildBot #modlog" in output
    assert "(no reply)" in output and "script passed" in output


async def test_console_script_fails_on_unexpected_errors(tmp_path: Path) -> None:
    script = tmp_path / "bad.txt"
    script.write_text('/daily\n/daily\n/balance\nexpect "999 coins"\n/nosuchcommand\n')
    code, output = await run_console(script)
    assert code == 1, output
    assert "bad.txt:2: unexpected error reply" in output
    assert "bad.txt:3: expected '999 coins'" in output
    assert "the bot has no command 'nosuchcommand'" in output
    assert "3 failure(s)" in output


async def test_unknown_commands_are_answered_at_once(tmp_path: Path) -> None:
    """Not after the reply timeout (here 30 s): the bot registered no such command."""
    script = tmp_path / "unknown.txt"
    script.write_text('/rol 6\n!nosuchcmd\n!echo still here\nexpect "still here"\n')
    started = time.monotonic()
    code, output = await run_console(script, "--reply-timeout", "30")
    assert time.monotonic() - started < 25, output
    assert "the bot has no command 'rol'. Did you mean roll?" in output
    assert "(no reply: the bot has no command 'nosuchcmd'." in output
    assert code == 1 and "1 failure(s)" in output  # /rol is an error, !nosuchcmd only chat
