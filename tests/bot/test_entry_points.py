"""The entry points other parts call: the sandbox console with the bot on the embedded default
(a process of its own: SQLite and PostgreSQL never share a process, see the report), and
publishing slash commands to one guild."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from app.bot.runner import publish_commands
from sandbox import SandboxServer
from tests.bot.harness import bot_settings
from testsupport.bots import bot_env

SCRIPT = """\
/daily
expect "You claimed 100 coins"
!balance
expect "You hold 100 coins"
as moderator /warn member:bob reason:spamming
expect "Case #1: Warning"
expect-dm bob "spamming"
as alice /warn member:bob reason:nope
expect-error "Moderate Members"
"""


async def test_sandbox_console_runs_the_bot_on_the_embedded_default(tmp_path: Path) -> None:
    script = tmp_path / "script.txt"
    script.write_text(SCRIPT)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "app",
        "sandbox",
        "--script",
        str(script),
        cwd=tmp_path,
        env=bot_env(),  # no DISCORD_TOKEN, DATABASE_URL or REDIS_URL: the embedded default
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(proc.communicate(), 90)
    text = output.decode(errors="replace")
    assert proc.returncode == 0 and "script passed" in text, text
    assert (tmp_path / "data" / "sandbox.sqlite3").exists()  # the console's own SQLite file


async def test_publish_commands_to_one_guild(sandbox: SandboxServer, pg_url: str) -> None:
    guild = next(iter(sandbox.world.guilds.values()))
    settings = bot_settings(sandbox, pg_url, None)
    synced = await publish_commands(settings, sandbox.bot_token, guild.id)
    names = {c.name for c in synced}
    assert {"warn", "daily", "modlog-export", "config"} <= names
    assert {name for name, _kind in guild.commands} == names
