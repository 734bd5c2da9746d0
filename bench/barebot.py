"""`python -m bench.barebot`: a bare discord.py AutoShardedBot, the baselines' bot.

Configured by the environment, like the real bot: DISCORD_TOKEN, DISCORD_API_BASE,
DISCORD_GATEWAY_URL, SHARD_COUNT and SHARD_IDS (a JSON list), plus

- BARE_MODE=ping: default intents with message content; answers the `/ping` slash command
  with "pong" (an interaction response) and a guild message "ping" with a reply "pong". The
  ceiling of the sandbox + discord.py pipeline, with no database, no Redis and no cogs.
- BARE_MODE=defaults: nothing but discord.py's defaults (`Intents.default()`, caches,
  `chunk_guilds_at_startup`, `max_messages=1000`) plus the members intent when BARE_MEMBERS=1:
  what a bot holds in memory when nobody configured its caches.
- BARE_SYNC=1: publish the bot's slash commands (replacing the application's) once logged in.
- IDENTIFY_WINDOW_S (the bot's own setting): seconds between this process's shards'
  IDENTIFYs (discord.py's default hook waits 5 s; the sandbox's window is shorter).

It prints `bare bot ready: {"guilds": N, "members": M, ...}` on stderr once every shard is
ready (on_ready).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
from typing import Any

import discord
from discord.ext import commands

from app.bot.discord_internals import point_discord


class BareBot(commands.AutoShardedBot):
    """A plain AutoShardedBot; with `ping` it answers /ping and "ping"."""

    def __init__(self, ping: bool, members: bool, window: float, **options: Any) -> None:
        intents = discord.Intents.default()
        intents.members = members
        intents.message_content = ping
        super().__init__(command_prefix="!", intents=intents, **options)
        self.ping = ping
        self.window = window
        if ping:

            @self.tree.command(name="ping", description="Answer pong")
            async def ping_command(interaction: discord.Interaction) -> None:
                await interaction.response.send_message("pong")

    async def setup_hook(self) -> None:
        """Publish /ping when asked to."""
        if os.environ.get("BARE_SYNC") == "1":
            await self.tree.sync()

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        """Space this process's IDENTIFYs by the sandbox's window instead of 5 s."""
        if not initial:
            await asyncio.sleep(self.window)

    async def on_ready(self) -> None:
        """Every shard is ready: say so once, with what the caches hold."""
        cached = {
            "guilds": len(self.guilds),
            "members": sum(len(g.members) for g in self.guilds),
            "channels": sum(len(g.channels) for g in self.guilds),
            "roles": sum(len(g.roles) for g in self.guilds),
        }
        print(f"bare bot ready: {json.dumps(cached)}", file=sys.stderr, flush=True)

    async def on_message(self, message: discord.Message) -> None:
        """Reply "pong" to "ping" (ping mode)."""
        if self.ping and message.guild is not None and message.content == "ping":
            await message.reply("pong", mention_author=False)


async def main() -> None:
    """Run until killed."""
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    point_discord(os.environ["DISCORD_API_BASE"], os.environ["DISCORD_GATEWAY_URL"])
    options: dict[str, object] = {}
    if os.environ.get("SHARD_COUNT"):
        options["shard_count"] = int(os.environ["SHARD_COUNT"])
    if os.environ.get("SHARD_IDS"):
        options["shard_ids"] = json.loads(os.environ["SHARD_IDS"])
    if os.environ.get("GUILD_READY_TIMEOUT"):
        options["guild_ready_timeout"] = float(os.environ["GUILD_READY_TIMEOUT"])
    bot = BareBot(
        ping=os.environ.get("BARE_MODE", "ping") == "ping",
        members=os.environ.get("BARE_MEMBERS") == "1",
        window=float(os.environ.get("IDENTIFY_WINDOW_S", "5")),
        **options,
    )
    async with bot:
        await bot.start(os.environ["DISCORD_TOKEN"])


if __name__ == "__main__":
    asyncio.run(main())
