"""Economy commands: profile, balance, daily, transfer, leaderboard, rank and give."""

from __future__ import annotations

from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from app.bot import telemetry
from app.bot.checks import check_account, requires
from app.bot.cogs.base import GuildCog
from app.bot.idempotency import request_id, request_key
from app.bot.paginator import Paginator
from app.bot.render import Field, fill_lines, make_embed, mention, timestamp
from app.bot.render import amount as show
from app.domain import economy, guilds
from app.domain.leaderboard import MAX_PAGE, Leaderboard
from app.domain.levels import Progress

Ctx = commands.Context[Any]
PER_PAGE = 10


async def currency(guild_id: int) -> str:
    """The guild's currency name."""
    return (await guilds.cached_settings(guild_id)).currency_name


class LeaderboardSource:
    """Leaderboard pages for the paginator; a one-entry probe tells whether a next page exists."""

    def __init__(self, board: Leaderboard, guild: discord.Guild, currency_name: str) -> None:
        self.board, self.guild, self.currency = board, guild, currency_name

    async def page(self, index: int) -> tuple[discord.Embed, bool]:
        """Page `index` (0-based) as an embed, and whether another page follows."""
        page = await self.board.page(self.guild.id, index + 1, PER_PAGE)
        lines = [
            f"**{e.rank}.** {mention(e.user_id)} — {show(e.coins, self.currency)}"
            for e in page.entries
        ]
        text, _ = fill_lines(lines)
        probe_page = (index + 1) * PER_PAGE + 1
        has_next = len(page.entries) == PER_PAGE and probe_page <= MAX_PAGE
        if has_next:
            has_next = bool((await self.board.page(self.guild.id, probe_page, 1)).entries)
        empty = "Nobody is on this page." if index else f"Nobody holds any {self.currency} yet."
        embed = make_embed(
            f"Leaderboard — {self.guild.name}", text or empty, footer=f"Page {index + 1}"
        )
        return embed, has_next


class Economy(GuildCog):
    """Coins: every member's balance, the daily reward, transfers and the leaderboard."""

    @commands.hybrid_command()
    @commands.guild_only()
    @app_commands.describe(member="Whose profile (default: yours)")
    async def profile(self, ctx: Ctx, member: discord.Member | None = None) -> None:
        """Level, XP to the next level, coins, rank and join date."""
        assert ctx.guild is not None
        target = member or ctx.author
        check_account(target, "show the profile of")
        row = await economy.profile(ctx.guild.id, target.id, target.display_name)
        progress = Progress.of(row.xp)
        rank = await self.bot.leaderboard.rank(ctx.guild.id, target.id)
        joined = target.joined_at if isinstance(target, discord.Member) else None
        embed = make_embed(
            f"Profile — {target.display_name}",
            fields=[
                Field("Level", str(progress.level)),
                Field("XP", f"{progress.xp:,} ({progress.needed:,} to level {progress.level + 1})"),
                Field("Coins", show(row.coins, await currency(ctx.guild.id))),
                Field("Rank", f"#{rank:,}"),
                Field("Joined", timestamp(joined, "D")),
            ],
        )
        await ctx.send(embed=embed)

    @commands.hybrid_command()
    @commands.guild_only()
    async def balance(self, ctx: Ctx) -> None:
        """How many coins you hold."""
        assert ctx.guild is not None
        coins = await self.bot.bank.balance(ctx.guild.id, ctx.author.id)
        await ctx.send(f"You hold {show(coins, await currency(ctx.guild.id))}.")

    @commands.hybrid_command()
    @commands.guild_only()
    async def daily(self, ctx: Ctx) -> None:
        """Claim the daily reward (once every 24 hours)."""
        assert ctx.guild is not None
        receipt = await self.bot.bank.daily(
            ctx.guild.id, ctx.author.id, key=request_key(ctx, "daily")
        )
        telemetry.coins_moved("daily", receipt)
        name = await currency(ctx.guild.id)
        await ctx.send(
            f"You claimed {show(receipt.amount, name)}. Balance: {show(receipt.balance, name)}."
        )

    @commands.hybrid_command()
    @commands.guild_only()
    @app_commands.describe(member="Who receives the coins", amount="How many coins to send")
    async def transfer(self, ctx: Ctx, member: discord.Member, amount: int) -> None:
        """Send some of your coins to another member."""
        assert ctx.guild is not None
        check_account(member, "send coins to")
        receipt = await self.bot.bank.transfer(
            ctx.guild.id, ctx.author.id, member.id, amount, key=f"tx:{request_id(ctx)}"
        )
        telemetry.coins_moved("transfer", receipt)
        name = await currency(ctx.guild.id)
        await ctx.send(
            f"Sent {show(receipt.amount, name)} to {member.mention}. "
            f"Your balance: {show(receipt.sender_balance, name)}."
        )

    @commands.hybrid_command()
    @commands.guild_only()
    @app_commands.describe(page="Page number (10 members a page)")
    async def leaderboard(self, ctx: Ctx, page: int = 1) -> None:
        """The richest members, 10 a page, with buttons to turn pages."""
        assert ctx.guild is not None
        source = LeaderboardSource(self.bot.leaderboard, ctx.guild, await currency(ctx.guild.id))
        await Paginator(source, ctx.author.id).start(ctx, page - 1)

    @commands.hybrid_command()
    @commands.guild_only()
    @app_commands.describe(member="Whose rank (default: yours)")
    async def rank(self, ctx: Ctx, member: discord.Member | None = None) -> None:
        """A member's place on the leaderboard."""
        assert ctx.guild is not None
        target = member or ctx.author
        check_account(target, "rank")
        row = await economy.profile(ctx.guild.id, target.id, target.display_name)
        place = await self.bot.leaderboard.rank(ctx.guild.id, target.id)
        name = await currency(ctx.guild.id)
        await ctx.send(f"{target.mention} is #{place:,} with {show(row.coins, name)}.")

    @commands.hybrid_command()
    @requires(manage_guild=True)
    @app_commands.describe(member="Who receives the coins", amount="How many coins to create")
    async def give(self, ctx: Ctx, member: discord.Member, amount: int) -> None:
        """Create coins on a member's account (Manage Server)."""
        assert ctx.guild is not None
        check_account(member, "give coins to")
        receipt = await self.bot.bank.grant(
            ctx.guild.id, ctx.author.id, member.id, amount, key=request_key(ctx, "give")
        )
        telemetry.coins_moved("grant", receipt)
        name = await currency(ctx.guild.id)
        await ctx.send(
            f"Gave {show(receipt.amount, name)} to {member.mention}. "
            f"Their balance: {show(receipt.balance, name)}."
        )
