"""Per-guild settings for administrators (Manage Server): `config ...`."""

from __future__ import annotations

import unicodedata
from typing import Any, Literal

import discord
from discord import app_commands
from discord.ext import commands

from app.bot.cogs.base import GuildCog
from app.bot.errors import Refusal
from app.bot.render import Field, clip, make_embed
from app.db.models import GuildSettings
from app.domain import guilds

Ctx = commands.Context[Any]


def channel_ref(channel_id: int | None, unset: str) -> str:
    """A channel mention, or `unset` when no channel is set."""
    return f"<#{channel_id}>" if channel_id else unset


def settings_embed(guild: discord.Guild, row: GuildSettings) -> discord.Embed:
    """The guild's settings as an embed."""
    if row.levelup_dm:
        levelup = "by DM"
    else:
        levelup = channel_ref(row.levelup_channel_id, "in the channel of the message")
    no_xp = " ".join(f"<#{c}>" for c in row.no_xp_channel_ids) or "none"
    return make_embed(
        f"Settings — {guild.name}",
        fields=[
            Field("Currency", row.currency_name),
            Field("Daily reward", f"{row.daily_amount:,}"),
            Field("XP per message", f"{row.xp_min}–{row.xp_max} (every {row.xp_cooldown_s} s)"),
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

    async def cog_check(self, ctx: Ctx) -> bool:  # type: ignore[override]
        """Every config command needs Manage Server (slash subcommands included)."""
        if ctx.guild is None or not isinstance(ctx.author, discord.Member):
            raise commands.NoPrivateMessage()
        if not ctx.author.guild_permissions.manage_guild:
            raise commands.MissingPermissions(["manage_guild"])
        return True

    async def _save(self, ctx: Ctx, what: str, **changes: Any) -> None:
        assert ctx.guild is not None
        row = await guilds.configure(ctx.guild.id, **changes)
        await ctx.send(f"Saved: {what}.", embed=settings_embed(ctx.guild, row))

    @commands.hybrid_group(name="config", fallback="show", invoke_without_command=True)
    @commands.guild_only()
    @app_commands.default_permissions(manage_guild=True)
    async def config(self, ctx: Ctx) -> None:
        """Show this server's settings."""
        assert ctx.guild is not None
        await ctx.send(embed=settings_embed(ctx.guild, await guilds.settings(ctx.guild.id)))

    @config.command(name="currency")
    @app_commands.describe(name="What coins are called here (1-32 characters)")
    async def config_currency(self, ctx: Ctx, *, name: str) -> None:
        """Rename the currency."""
        if any(unicodedata.category(c) == "Cc" for c in name):
            raise Refusal("The currency name cannot contain control characters.")
        await self._save(ctx, "currency renamed", currency_name=name)

    @config.command(name="daily")
    @app_commands.describe(amount="Coins the daily reward gives")
    async def config_daily(self, ctx: Ctx, amount: int) -> None:
        """Set the daily reward."""
        await self._save(ctx, "daily reward changed", daily_amount=amount)

    @config.command(name="xp")
    @app_commands.describe(minimum="Least XP per message", maximum="Most XP per message")
    async def config_xp(self, ctx: Ctx, minimum: int, maximum: int) -> None:
        """Set the XP range a message earns (0 0 turns XP off)."""
        await self._save(ctx, "XP range changed", xp_min=minimum, xp_max=maximum)

    @config.command(name="modlog")
    @app_commands.describe(channel="Where cases are posted (leave empty to stop posting)")
    async def config_modlog(self, ctx: Ctx, channel: discord.TextChannel | None = None) -> None:
        """Set or clear the modlog channel."""
        if channel is not None:
            require_postable(channel)
        what = f"cases go to {channel.mention}" if channel else "cases are no longer posted"
        await self._save(ctx, what, modlog_channel_id=channel.id if channel else None)

    @config.command(name="levelup")
    @app_commands.describe(
        where="here: the channel of the message, dm: a direct message, channel: a fixed channel",
        channel="The fixed channel (with where=channel)",
    )
    async def config_levelup(
        self,
        ctx: Ctx,
        where: Literal["here", "dm", "channel"],
        channel: discord.TextChannel | None = None,
    ) -> None:
        """Choose where level-up messages go."""
        if where == "channel":
            if channel is None:
                raise Refusal("Name the channel for level-up messages.")
            require_postable(channel)
            await self._save(
                ctx,
                f"level-ups go to {channel.mention}",
                levelup_channel_id=channel.id,
                levelup_dm=False,
            )
        else:
            what = "level-ups go by DM" if where == "dm" else "level-ups go to the same channel"
            await self._save(ctx, what, levelup_channel_id=None, levelup_dm=where == "dm")

    @config.command(name="noxp")
    @app_commands.describe(action="add or remove", channel="The channel")
    async def config_noxp(
        self, ctx: Ctx, action: Literal["add", "remove"], channel: discord.TextChannel
    ) -> None:
        """Add or remove a channel where messages earn no XP."""
        assert ctx.guild is not None
        current = set((await guilds.settings(ctx.guild.id)).no_xp_channel_ids)
        if action == "add":
            current.add(channel.id)
        else:
            current.discard(channel.id)
        verb = "earns no XP" if action == "add" else "earns XP again"
        await self._save(ctx, f"{channel.mention} {verb}", no_xp_channel_ids=sorted(current))
