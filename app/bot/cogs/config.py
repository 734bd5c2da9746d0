"""Per-guild settings for administrators (Manage Server): `config ...`."""

from __future__ import annotations

import unicodedata
from collections.abc import Awaitable
from typing import Any, Literal

import discord
from discord import app_commands
from discord.ext import commands

from app.bot.acknowledge import acknowledge
from app.bot.cogs import hybrid
from app.bot.cogs.base import GuildCog
from app.bot.converters import SLASH_ONLY_DEFAULT, ChannelOrOff, OptionalChannel, TextChannelArg
from app.bot.errors import Refusal
from app.bot.privacy import staff_only
from app.bot.render import Field, clip, make_embed
from app.domain.types import GuildConfig

Ctx = commands.Context[Any]


def channel_ref(channel_id: int | None, unset: str) -> str:
    """A channel mention, or `unset` when no channel is set."""
    return f"<#{channel_id}>" if channel_id else unset


def settings_embed(guild: discord.Guild, row: GuildConfig) -> discord.Embed:
    """The guild's settings as an embed."""
    if row.levelup_dm:
        levelup = "by DM"
    else:
        levelup = channel_ref(row.levelup_channel_id, "in the channel of the message")
    no_xp = " ".join(f"<#{c}>" for c in row.no_xp_channel_ids) or "none"
    xp = f"{row.xp_min}–{row.xp_max} (every {row.xp_cooldown_s} s)" if row.xp_enabled else "off"
    return make_embed(
        f"Settings — {guild.name}",
        fields=[
            Field("Currency", row.currency_name),
            Field("Daily reward", f"{row.daily_amount:,}"),
            Field("XP per message", xp),
            Field("Modlog channel", channel_ref(row.modlog_channel_id, "none")),
            Field("Level-up messages", levelup),
            Field("Channels without XP", clip(no_xp, 1024), inline=False),
        ],
    )


def require_postable(channel: discord.TextChannel) -> None:
    """Refuse a channel the bot cannot post embeds in."""
    perms = channel.permissions_for(channel.guild.me)
    if not (perms.view_channel and perms.send_messages and perms.embed_links):
        raise Refusal(
            f"I cannot post in {channel.mention}: give me View Channel, Send Messages and "
            "Embed Links there first."
        )


class Config(GuildCog):
    """Currency, daily amount, XP range, modlog and level-up places, channels without XP."""

    async def cog_check(self, ctx: Ctx) -> bool:
        """Every config command needs Manage Server (slash subcommands included)."""
        if ctx.guild is None or not isinstance(ctx.author, discord.Member):
            raise commands.NoPrivateMessage()
        if not ctx.author.guild_permissions.manage_guild:
            raise commands.MissingPermissions(["manage_guild"])
        return True

    async def _saved(self, ctx: Ctx, what: str, change: Awaitable[GuildConfig]) -> None:
        """Apply a change (the slash command acknowledged first) and show the settings it left."""
        assert ctx.guild is not None
        await acknowledge(ctx)
        row = await change
        await ctx.send(f"Saved: {what}.", embed=settings_embed(ctx.guild, row))

    @hybrid.group(name="config", fallback="show", invoke_without_command=True)
    @commands.guild_only()
    @app_commands.default_permissions(manage_guild=True)
    async def config(self, ctx: Ctx) -> None:
        """Show this server's settings."""
        await self._show(ctx)

    # Named apart from the slash fallback "show": discord.py would drop that one on cog load.
    @hybrid.subcommand(config, name="settings", aliases=["show"], with_app_command=False)
    async def config_show(self, ctx: Ctx) -> None:
        """Show this server's settings (`!config show`, like `/config show`)."""
        await self._show(ctx)

    async def _show(self, ctx: Ctx) -> None:
        assert ctx.guild is not None
        row = await self.bot.services.guilds.get(ctx.guild.id)
        await ctx.send(embed=settings_embed(ctx.guild, row))

    @hybrid.subcommand(config, name="currency")
    @app_commands.describe(name="What coins are called here (1-32 characters)")
    async def config_currency(self, ctx: Ctx, *, name: str) -> None:
        """Rename the currency."""
        if any(unicodedata.category(c) == "Cc" for c in name):
            raise Refusal("The currency name cannot contain control characters.")
        assert ctx.guild is not None
        configs = self.bot.services.guilds
        await self._saved(ctx, "currency renamed", configs.set_currency(ctx.guild.id, name))

    @hybrid.subcommand(config, name="daily")
    @app_commands.describe(amount="Coins the daily reward gives")
    async def config_daily(self, ctx: Ctx, amount: int) -> None:
        """Set the daily reward."""
        assert ctx.guild is not None
        change = self.bot.services.guilds.set_daily_amount(ctx.guild.id, amount)
        await self._saved(ctx, "daily reward changed", change)

    @hybrid.subcommand(config, name="xp")
    @app_commands.describe(minimum="Least XP per message", maximum="Most XP per message")
    async def config_xp(self, ctx: Ctx, minimum: int, maximum: int) -> None:
        """Set the XP range a message earns (0 0 turns XP off)."""
        assert ctx.guild is not None
        change = self.bot.services.guilds.set_xp_range(ctx.guild.id, minimum, maximum)
        await self._saved(ctx, "XP turned off" if maximum == 0 else "XP range changed", change)

    @hybrid.subcommand(config, name="modlog")
    @app_commands.describe(
        channel="Where cases are posted: a channel only staff can read (empty: stop posting)"
    )
    async def config_modlog(self, ctx: Ctx, channel: ChannelOrOff = SLASH_ONLY_DEFAULT) -> None:
        """Set the modlog channel (a staff-only one), or `off` to stop posting cases."""
        assert ctx.guild is not None
        if channel is not None:
            require_postable(channel)
            staff_only(channel)
        what = f"cases go to {channel.mention}" if channel else "cases are no longer posted"
        change = self.bot.services.guilds.set_modlog(ctx.guild.id, channel.id if channel else None)
        await self._saved(ctx, what, change)

    @hybrid.subcommand(config, name="levelup")
    @app_commands.describe(
        where="here: the channel of the message, dm: a direct message, channel: a fixed channel",
        channel="The fixed channel (with where=channel)",
    )
    async def config_levelup(
        self,
        ctx: Ctx,
        where: Literal["here", "dm", "channel"],
        channel: OptionalChannel = None,
    ) -> None:
        """Choose where level-up messages go."""
        assert ctx.guild is not None
        configs = self.bot.services.guilds
        if where == "channel":
            if channel is None:
                raise Refusal("Name the channel for level-up messages.")
            require_postable(channel)
            change = configs.set_levelup(ctx.guild.id, channel_id=channel.id)
            await self._saved(ctx, f"level-ups go to {channel.mention}", change)
        elif channel is not None:
            raise Refusal(f"A channel goes with `channel` only, not with `{where}`.")
        else:
            what = "level-ups go by DM" if where == "dm" else "level-ups go to the same channel"
            await self._saved(ctx, what, configs.set_levelup(ctx.guild.id, dm=where == "dm"))

    @hybrid.subcommand(config, name="noxp")
    @app_commands.describe(action="add or remove", channel="The channel")
    async def config_noxp(
        self, ctx: Ctx, action: Literal["add", "remove"], channel: TextChannelArg
    ) -> None:
        """Add or remove a channel where messages earn no XP."""
        assert ctx.guild is not None
        excluded = action == "add"
        change = self.bot.services.guilds.set_xp_excluded(ctx.guild.id, channel.id, excluded)
        verb = "earns no XP" if excluded else "earns XP again"
        await self._saved(ctx, f"{channel.mention} {verb}", change)
