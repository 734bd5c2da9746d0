"""Economy commands: profile, balance, daily, transfer, leaderboard, rank and give.

The commands that move coins acknowledge (defer) a slash command before the database work, so
that their work and its retries have until the interaction's 15-minute follow-up window
(app/ops/deadline.py) instead of Discord's 3 s for a first response.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import discord
from discord import app_commands
from discord.ext import commands

from app.bot import telemetry
from app.bot.acknowledge import acknowledge
from app.bot.checks import check_account, requires
from app.bot.cogs import hybrid
from app.bot.cogs.base import GuildCog
from app.bot.converters import MemberArg, OptionalMember
from app.bot.idempotency import request_key
from app.bot.paginator import Paginator
from app.bot.people import members_among
from app.bot.render import Field, fill_lines, make_embed, mention, one_line, timestamp
from app.bot.render import amount as show
from app.domain.economy import Bank, Receipt, TransferReceipt
from app.domain.leaderboard import Entry, Leaderboard
from app.domain.levels import Progress
from app.domain.types import Profile

#: What a movement of coins returns.
R = TypeVar("R", Receipt, TransferReceipt)

Ctx = commands.Context[Any]
PER_PAGE = 10
NOT_RANKED = "not ranked yet"


def place_text(rank: int | None) -> str:
    """The place shown for a rank ("#3"), or NOT_RANKED for a member who holds no coins."""
    return NOT_RANKED if rank is None else f"#{rank:,}"


class LeaderboardSource:
    """Leaderboard pages for the paginator; a one-entry probe tells whether a next page exists.

    Members who left the server stay on it, shown by their last known name and marked (left):
    their coins are still theirs if they come back.
    """

    def __init__(
        self, board: Leaderboard, bank: Bank, guild: discord.Guild, currency_name: str
    ) -> None:
        self.board, self.bank, self.guild, self.currency = board, bank, guild, currency_name

    async def names(self, entries: list[Entry]) -> dict[int, str]:
        """How each entry is shown: a mention for members, "name (left)" for the others."""
        ids = [e.user_id for e in entries]
        present = await members_among(self.guild, ids)
        if present is None:  # the gateway did not answer: mentions at least name the present
            return {i: mention(i) for i in ids}
        cached = {e.user_id: e.name for e in entries if e.name}
        gone = [i for i in ids if i not in present]
        unnamed = [i for i in gone if i not in cached]
        stored = {**cached, **await self.bank.display_names(self.guild.id, unnamed)}
        shown = {i: mention(i) for i in present}
        for user_id in gone:
            name = discord.utils.escape_markdown(one_line(stored.get(user_id, ""), 40))
            shown[user_id] = f"{name or 'a former member'} (left)"
        return shown

    async def page(self, index: int) -> tuple[discord.Embed, bool]:
        """Page `index` (0-based) as an embed, and whether another page follows."""
        page = await self.board.page(self.guild.id, index + 1, PER_PAGE)
        names = await self.names(page.entries)
        lines = [
            f"**{e.rank}.** {names[e.user_id]} — {show(e.coins, self.currency)}"
            for e in page.entries
        ]
        text, _ = fill_lines(lines)
        empty = "Nobody is on this page." if index else f"Nobody holds any {self.currency} yet."
        embed = make_embed(
            f"Leaderboard — {self.guild.name}", text or empty, footer=f"Page {index + 1}"
        )
        return embed, page.has_next


class Economy(GuildCog):
    """Coins: every member's balance, the daily reward, transfers and the leaderboard."""

    async def currency(self, guild_id: int) -> str:
        """The guild's currency name."""
        return (await self.bot.services.guilds.cached(guild_id)).currency_name

    async def move_and_answer(
        self,
        ctx: Ctx,
        kind: str,
        move: Callable[[], Awaitable[R]],
        text: Callable[[R, str], str],
    ) -> None:
        """Acknowledge, move the coins, count them and answer `text(receipt, currency name)`.

        The currency's name is read before the move: once the coins moved, nothing that can
        fail (a database read while PostgreSQL restarts) may stand between the move and its
        answer, or the member would be told of an error although the coins moved.
        """
        assert ctx.guild is not None
        await acknowledge(ctx)
        name = await self.currency(ctx.guild.id)
        receipt = await move()
        telemetry.coins_moved(kind, receipt)
        await ctx.send(text(receipt, name))

    async def standing(
        self, ctx: Ctx, member: discord.Member | None, verb: str
    ) -> tuple[discord.abc.User, Profile, int | None]:
        """(whom, their profile, their rank or None without coins) for `member` or the caller."""
        assert ctx.guild is not None
        target = member or ctx.author
        check_account(target, verb)
        services = self.bot.services
        row = await services.bank.profile(ctx.guild.id, target.id, target.display_name)
        if row.coins == 0:
            return target, row, None
        return target, row, await services.leaderboard.rank(ctx.guild.id, target.id)

    @hybrid.command()
    @commands.guild_only()
    @app_commands.describe(member="Whose profile (default: yours)")
    async def profile(self, ctx: Ctx, member: OptionalMember = None) -> None:
        """Level, XP to the next level, coins, rank and join date."""
        assert ctx.guild is not None
        target, row, rank = await self.standing(ctx, member, "show the profile of")
        progress = Progress.of(row.xp)
        joined = target.joined_at if isinstance(target, discord.Member) else None
        embed = make_embed(
            f"Profile — {target.display_name}",
            fields=[
                Field("Level", str(progress.level)),
                Field("XP", f"{progress.xp:,} ({progress.needed:,} to level {progress.level + 1})"),
                Field("Coins", show(row.coins, await self.currency(ctx.guild.id))),
                Field("Rank", place_text(rank)),
                Field("Joined", timestamp(joined, "D")),
            ],
        )
        await ctx.send(embed=embed)

    @hybrid.command()
    @commands.guild_only()
    async def balance(self, ctx: Ctx) -> None:
        """How many coins you hold."""
        assert ctx.guild is not None
        coins = await self.bot.services.bank.balance(ctx.guild.id, ctx.author.id)
        await ctx.send(f"You hold {show(coins, await self.currency(ctx.guild.id))}.")

    @hybrid.command()
    @commands.guild_only()
    async def daily(self, ctx: Ctx) -> None:
        """Claim the daily reward (once every 24 hours)."""
        assert ctx.guild is not None
        guild_id, bank = ctx.guild.id, self.bot.services.bank
        await self.move_and_answer(
            ctx,
            "daily",
            lambda: bank.daily(guild_id, ctx.author.id, key=request_key(ctx, "daily")),
            lambda receipt, name: (
                f"You claimed {show(receipt.amount, name)}. Balance: {show(receipt.balance, name)}."
            ),
        )

    @hybrid.command()
    @commands.guild_only()
    @app_commands.describe(member="Who receives the coins", amount="How many coins to send")
    async def transfer(self, ctx: Ctx, member: MemberArg, amount: int) -> None:
        """Send some of your coins to another member."""
        assert ctx.guild is not None
        check_account(member, "send coins to")
        guild_id, bank = ctx.guild.id, self.bot.services.bank
        await self.move_and_answer(
            ctx,
            "transfer",
            lambda: bank.transfer(
                guild_id, ctx.author.id, member.id, amount, key=request_key(ctx, "tx")
            ),
            lambda receipt, name: (
                f"Sent {show(receipt.amount, name)} to {member.mention}. "
                f"Your balance: {show(receipt.sender_balance, name)}."
            ),
        )

    @hybrid.command()
    @commands.guild_only()
    @app_commands.describe(page="Page number (10 members a page)")
    async def leaderboard(self, ctx: Ctx, page: int = 1) -> None:
        """The richest members, 10 a page, with buttons to turn pages."""
        assert ctx.guild is not None
        services = self.bot.services
        source = LeaderboardSource(
            services.leaderboard, services.bank, ctx.guild, await self.currency(ctx.guild.id)
        )
        await Paginator(source, ctx.author.id).start(ctx, page - 1)

    @hybrid.command()
    @commands.guild_only()
    @app_commands.describe(member="Whose rank (default: yours)")
    async def rank(self, ctx: Ctx, member: OptionalMember = None) -> None:
        """A member's place on the leaderboard (none while they hold no coins)."""
        assert ctx.guild is not None
        target, row, place = await self.standing(ctx, member, "rank")
        name = await self.currency(ctx.guild.id)
        if place is None:
            await ctx.send(f"{target.mention} is {NOT_RANKED}: they hold no {name}.")
            return
        await ctx.send(f"{target.mention} is #{place:,} with {show(row.coins, name)}.")

    @hybrid.command()
    @requires(manage_guild=True)
    @app_commands.describe(member="Who receives the coins", amount="How many coins to create")
    async def give(self, ctx: Ctx, member: MemberArg, amount: int) -> None:
        """Create coins on a member's account (Manage Server)."""
        assert ctx.guild is not None
        check_account(member, "give coins to")
        guild_id, bank = ctx.guild.id, self.bot.services.bank
        await self.move_and_answer(
            ctx,
            "grant",
            lambda: bank.grant(
                guild_id, ctx.author.id, member.id, amount, key=request_key(ctx, "give")
            ),
            lambda receipt, name: (
                f"Gave {show(receipt.amount, name)} to {member.mention}. "
                f"Their balance: {show(receipt.balance, name)}."
            ),
        )
