"""Moderation actions: warn, note, timeout, untimeout, kick, ban (and tempban), unban, fine."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from app.bot import telemetry
from app.bot.checks import bot_requires, check_account, requires
from app.bot.cogs.base import GuildCog
from app.bot.cogs.moderation import flow
from app.bot.cogs.moderation.notices import audit_reason
from app.bot.durations import HINT, Duration, looks_like_duration
from app.bot.errors import Refusal
from app.bot.idempotency import request_key
from app.bot.render import amount as show
from app.bot.render import clip
from app.db.models import Case
from app.domain import guilds, validation
from app.domain.validation import MAX_REASON

Ctx = commands.Context[Any]
MAX_DELETE_DAYS = 7


class Actions(GuildCog):
    """Commands that act on a member and open a numbered case."""

    @commands.hybrid_command()
    @requires(moderate_members=True)
    @app_commands.describe(member="Who to warn", reason="Why (the member is told)")
    async def warn(self, ctx: Ctx, member: discord.Member, *, reason: str) -> None:
        """Warn a member: a case and a DM."""
        await flow.run_action(ctx, flow.WARN, member, reason)

    @commands.hybrid_command()
    @requires(moderate_members=True)
    @app_commands.describe(member="Who the note is about", text="The note (moderators only)")
    async def note(self, ctx: Ctx, member: discord.Member, *, text: str) -> None:
        """Add a note about a member that only moderators see."""
        await flow.run_action(ctx, flow.NOTE, member, text)

    @commands.hybrid_command()
    @requires(moderate_members=True)
    @bot_requires(moderate_members=True)
    @app_commands.describe(
        member="Who to time out",
        duration="How long, e.g. 10m, 2h, 7d (at most 28d)",
        reason="Why (the member is told)",
    )
    async def timeout(
        self, ctx: Ctx, member: discord.Member, duration: Duration, *, reason: str
    ) -> None:
        """Time a member out: they cannot talk until it ends (at most 28 days)."""
        length: timedelta = duration  # type: ignore[assignment]

        async def before() -> None:
            if member.guild_permissions.administrator:
                raise Refusal("Members with Administrator cannot be timed out.")

        async def perform(case: Case) -> None:
            await member.timeout(length, reason=audit_reason(ctx.author, case))

        await flow.run_action(
            ctx, flow.TIMEOUT, member, reason, duration=length, before=before, perform=perform
        )

    @commands.hybrid_command()
    @requires(moderate_members=True)
    @bot_requires(moderate_members=True)
    @app_commands.describe(member="Whose timeout to lift", reason="Why")
    async def untimeout(self, ctx: Ctx, member: discord.Member, *, reason: str = "") -> None:
        """Lift a member's timeout early."""

        async def before() -> None:
            if not member.is_timed_out():
                raise Refusal(f"{member.mention} is not timed out.")

        async def perform(case: Case) -> None:
            await member.timeout(None, reason=audit_reason(ctx.author, case))

        await flow.run_action(ctx, flow.UNTIMEOUT, member, reason, before=before, perform=perform)

    @commands.hybrid_command()
    @requires(kick_members=True)
    @bot_requires(kick_members=True)
    @app_commands.describe(member="Who to kick", reason="Why (the member is told)")
    async def kick(self, ctx: Ctx, member: discord.Member, *, reason: str) -> None:
        """Kick a member from the server (they may rejoin)."""

        async def perform(case: Case) -> None:
            await member.kick(reason=audit_reason(ctx.author, case))

        await flow.run_action(ctx, flow.KICK, member, reason, perform=perform)

    @commands.hybrid_command()
    @requires(ban_members=True)
    @bot_requires(ban_members=True)
    @app_commands.describe(
        user="Who to ban (a member, or a user id)",
        duration="For a temporary ban: how long, e.g. 2h, 7d, 1w2d (empty: permanent)",
        delete_days="Delete their messages of the last 0-7 days",
        reason="Why (the member is told)",
    )
    async def ban(
        self,
        ctx: Ctx,
        user: discord.Member | discord.User,
        duration: Duration | None = None,
        delete_days: int | None = None,
        *,
        reason: str,
    ) -> None:
        """Ban a user; with a duration the ban is lifted automatically when it ends."""
        length: timedelta | None = duration  # type: ignore[assignment]
        days = delete_days or 0
        if not 0 <= days <= MAX_DELETE_DAYS:
            raise Refusal(f"delete_days must be from 0 to {MAX_DELETE_DAYS}.")
        words = reason.split()
        if ctx.interaction is None and length is None and words and looks_like_duration(words[0]):
            raise Refusal(f"`{words[0][:20]}` looks like a duration I cannot read. {HINT}")

        async def perform(case: Case) -> None:
            await ctx.guild.ban(  # type: ignore[union-attr]
                user,
                reason=audit_reason(ctx.author, case),
                delete_message_seconds=days * 86_400,
            )

        step = flow.TEMPBAN if length is not None else flow.BAN
        await flow.run_action(ctx, step, user, reason, duration=length, perform=perform)

    @commands.hybrid_command()
    @requires(ban_members=True)
    @bot_requires(ban_members=True)
    @app_commands.describe(user="Who to unban (a user id)", reason="Why")
    async def unban(self, ctx: Ctx, user: discord.User, *, reason: str = "") -> None:
        """Lift a ban (a temporary ban's case is closed with it)."""
        guild = ctx.guild
        assert guild is not None

        async def before() -> None:
            try:
                await guild.fetch_ban(user)
            except discord.NotFound:
                raise Refusal(f"{user.mention} is not banned.") from None

        async def perform(case: Case) -> None:
            await guild.unban(user, reason=audit_reason(ctx.author, case))

        await flow.run_action(ctx, flow.UNBAN, user, reason, before=before, perform=perform)

    @commands.hybrid_command()
    @requires(manage_guild=True)
    @app_commands.describe(
        member="Who to fine", amount="Coins to take", reason="Why (the member is told)"
    )
    async def fine(self, ctx: Ctx, member: discord.Member, amount: int, *, reason: str) -> None:
        """Take coins from a member (Manage Server); opens a fine case."""
        assert ctx.guild is not None
        check_account(member, "fine")
        name = (await guilds.cached_settings(ctx.guild.id)).currency_name
        note = f" [{show(amount, name)}]"
        text = clip(validation.reason(reason, required=True), MAX_REASON - len(note)) + note

        async def take() -> None:
            receipt = await self.bot.bank.fine(
                ctx.guild.id,
                ctx.author.id,
                member.id,
                amount,
                text,  # type: ignore[union-attr]
                key=request_key(ctx, "fine"),
            )
            telemetry.coins_moved("fine", receipt)

        await flow.run_action(
            ctx, flow.FINE, member, text, before=take, extra=f" of {show(amount, name)}"
        )
