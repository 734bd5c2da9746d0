"""The entry points other parts call: the sandbox console with the bot on the embedded default
(a process of its own: SQLite and PostgreSQL never share a process, see the report), and
publishing slash commands to one guild."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from app.bot.runner import publish_commands
from app.sandbox import SandboxServer
from tests.bot.harness import TOKEN, bot_settings
from tests.bot.processes import REPO

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
UNSET = {
    "DATABASE_URL",
    "REDIS_URL",
    "DISCORD_TOKEN",
    "SHARD_COUNT",
    "SHARD_IDS",
    "SHARDS_PER_POD",
    "POD_INDEX",
}


async def test_sandbox_console_runs_the_bot_on_the_embedded_default(tmp_path: Path) -> None:
    script = tmp_path / "script.txt"
    script.write_text(SCRIPT)
    env = {k: v for k, v in os.environ.items() if k.upper() not in UNSET}
    env["PYTHONPATH"] = str(REPO)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "app",
        "sandbox",
        "--script",
        str(script),
        cwd=tmp_path,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(proc.communicate(), 90)
    text = output.decode(errors="replace")
    assert proc.returncode == 0 and "script passed" in text, text
    assert (tmp_path / "data" / "bot.sqlite3").exists()  # the embedded default database


async def test_publish_commands_to_one_guild(sandbox: SandboxServer, pg_url: str) -> None:
    guild = next(iter(sandbox.world.guilds.values()))
    synced = await publish_commands(bot_settings(sandbox, pg_url, None), TOKEN, guild.id)
    names = {c.name for c in synced}
    assert {"warn", "daily", "modlog-export", "config"} <= names
    assert {name for name, _kind in guild.commands} == names
