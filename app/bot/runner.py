"""Starting the bot: against Discord (`run_bot`), inside a sandbox (`sandbox_bot_factory`),
and publishing its slash commands (`sync_commands`)."""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import Any

import discord
import discord.gateway
import discord.http
import yarl

from app.bot.client import GuildBot
from app.bot.health import probes_for
from app.config import Settings, get_settings
from app.coord.shard_plan import OutsidePlan
from app.ops.http import OpsServer

log = logging.getLogger(__name__)

SANDBOX_TOKEN = "sandbox-token"


def point_discord(api_base: str, gateway_url: str) -> None:
    """Send discord.py's REST calls and gateway connections to a Discord-compatible server.

    The same two assignments as app.sandbox's point_discord_at; done only when they differ.
    """
    base = api_base.rstrip("/")
    if base != discord.http.Route.BASE:
        discord.http.Route.BASE = base
    if str(discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY) != gateway_url:
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway_url)


async def start_bot(
    settings: Settings, token: str, *, sync: bool = False, **options: Any
) -> GuildBot:
    """Log in and start connecting, in a task of its own; returns once logged in.

    setup_hook runs in that task, so the bot's database context is inherited by its shards
    but not by the caller (a test keeps its own). Wait with `bot.wait_until_ready()`.
    """
    point_discord(settings.discord_api_base, settings.discord_gateway_url)
    bot = GuildBot(settings, **options)

    async def boot() -> None:
        await bot.login(token)
        if sync:
            await bot.tree.sync()
        bot.gateway_task = asyncio.create_task(bot.connect(reconnect=True), name="gateway")

    await asyncio.create_task(boot())
    return bot


async def sandbox_bot_factory(server: Any) -> GuildBot:
    """A bot for `console_main`: in-process, pointed at `server`, commands synced.

    The database is the configured one (the embedded SQLite file by default); Redis only if
    REDIS_URL is set.
    """
    settings = get_settings().model_copy(
        update={
            "discord_api_base": server.rest_base,
            "discord_gateway_url": server.gateway_url,
            "shard_count": None,
            "shard_ids": None,
        }
    )
    token = getattr(server.settings, "token", None) or SANDBOX_TOKEN
    return await start_bot(settings, token, sync=True, guild_ready_timeout=0.2)


async def serve(settings: Settings, token: str) -> int:
    """Run until the gateway closes or SIGTERM/SIGINT; then drain and close cleanly."""
    point_discord(settings.discord_api_base, settings.discord_gateway_url)
    try:
        bot = GuildBot(settings)
    except (OutsidePlan, ValueError) as error:
        log.error("%s", error)
        return 2
    loop = asyncio.get_running_loop()
    draining: list[asyncio.Task[None]] = []
    probes = probes_for(bot)
    ops = OpsServer(probes, port=settings.ops_port)
    await ops.start()

    def on_signal(name: str) -> None:
        log.info("%s: finishing commands in flight, then stopping", name)
        probes.stopping = True
        if not draining:
            draining.append(asyncio.create_task(bot.close()))

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal, sig.name)
    try:
        async with bot:
            await bot.start(token)
    except discord.LoginFailure:
        log.error("Discord refused the token (DISCORD_TOKEN)")
        return 1
    except discord.PrivilegedIntentsRequired:
        log.error("enable the Message Content intent for the bot, or set MESSAGE_CONTENT_INTENT=0")
        return 1
    finally:
        if draining:
            await draining[0]
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        await ops.stop()
    return 0


def run_bot(settings: Settings) -> int:
    """`python -m app run`: the bot against Discord (or DISCORD_API_BASE); an exit code."""
    if not settings.discord_token:
        log.error("DISCORD_TOKEN is not set")
        return 2
    return asyncio.run(serve(settings, settings.discord_token))


async def publish_commands(
    settings: Settings, token: str, guild_id: int | None = None
) -> list[discord.app_commands.AppCommand]:
    """Upload the slash commands: globally, or to one guild (instant, for testing)."""
    point_discord(settings.discord_api_base, settings.discord_gateway_url)
    bot = GuildBot(settings, with_services=False)
    async with bot:
        await bot.login(token)
        if guild_id is None:
            return await bot.tree.sync()
        guild = discord.Object(guild_id)
        bot.tree.copy_global_to(guild=guild)
        return await bot.tree.sync(guild=guild)


def sync_commands(settings: Settings, guild_id: int | None = None) -> int:
    """`python -m app sync-commands [--guild ID]`: publish the slash commands; an exit code."""
    if not settings.discord_token:
        log.error("DISCORD_TOKEN is not set")
        return 2
    synced = asyncio.run(publish_commands(settings, settings.discord_token, guild_id))
    where = f"guild {guild_id}" if guild_id else "every guild (global)"
    print(f"synced {len(synced)} command(s) to {where}")
    return 0
