"""Moderation actions: warn, note, timeout, untimeout, kick, ban (and tempban), unban, fine."""

from __future__ import annotations

import re
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from app.bot import telemetry
from app.bot.checks import bot_requires, check_account, requires
from app.bot.cogs import hybrid
from app.bot.cogs.base import GuildCog
from app.bot.cogs.moderation import flow
from app.bot.converters import BanDuration, DeleteDays, Duration, MemberArg, UserArg
from app.bot.errors import Refusal
from app.bot.idempotency import request_key
from app.bot.render import amount as show
from app.bot.render import clip
from app.domain import validation
from app.domain.types import EffectKind
from app.domain.validation import MAX_REASON

Ctx = commands.Context[Any]
#: A `delete:N` flag found inside a prefix ban's reason: it belongs before the reason.
_STRAY_DELETE = re.compile(r"(?:^|\s)(?:--delete|delete[:=]\d+)(?:\s|$)", re.IGNORECASE)


class Actions(GuildCog):
    """Commands that act on a member and open a numbered case."""

    @hybrid.command()
    @requires(moderate_members=True)
    @app_commands.describe(member="Who to warn", reason="Why (the member is told)")
    async def warn(self, ctx: Ctx, member: MemberArg, *, reason: str) -> None:
        """Warn a member: a case and a DM."""
        await flow.run_action(ctx, flow.WARN, member, reason)

    @hybrid.command()
    @requires(moderate_members=True)
    @app_commands.describe(member="Who the note is about", text="The note (moderators only)")
    async def note(self, ctx: Ctx, member: MemberArg, *, text: str) -> None:
        """Add a note about a member that only moderators see."""
        await flow.run_action(ctx, flow.NOTE, member, text)

    @hybrid.command()
    @requires(moderate_members=True)
    @bot_requires(moderate_members=True)
    @app_commands.describe(
        member="Who to time out",
        duration="How long, e.g. 10m, 2h, 7d (at most 28d)",
        reason="Why (the member is told)",
    )
    async def timeout(
        self, ctx: Ctx, member: MemberArg, duration: Duration, *, reason: str
    ) -> None:
        """Time a member out: they cannot talk until it ends (at most 28 days)."""

        async def before() -> None:
            if member.guild_permissions.administrator:
                raise Refusal("Members with Administrator cannot be timed out.")

        await flow.run_action(ctx, flow.TIMEOUT, member, reason, duration=duration, before=before)

    @hybrid.command()
    @requires(moderate_members=True)
    @bot_requires(moderate_members=True)
    @app_commands.describe(member="Whose timeout to lift", reason="Why")
    async def untimeout(self, ctx: Ctx, member: MemberArg, *, reason: str = "") -> None:
        """Lift a member's timeout early."""

        async def before() -> None:
            live = await self.bot.services.moderation.live_effect(
                member.guild.id, member.id, EffectKind.TIMEOUT
            )
            if live is None and not member.is_timed_out():
                raise Refusal(f"{member.mention} is not timed out.")

        await flow.run_action(ctx, flow.UNTIMEOUT, member, reason, before=before)

    @hybrid.command()
    @requires(kick_members=True)
    @bot_requires(kick_members=True)
    @app_commands.describe(member="Who to kick", reason="Why (the member is told)")
    async def kick(self, ctx: Ctx, member: MemberArg, *, reason: str) -> None:
        """Kick a member from the server (they may rejoin)."""
        await flow.run_action(ctx, flow.KICK, member, reason)

    @hybrid.command()
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
        user: UserArg,
        duration: BanDuration = None,
        delete_days: DeleteDays = None,
        *,
        reason: str,
    ) -> None:
        """Ban a user; with a duration the ban is lifted automatically when it ends.

        Prefix: `!ban <user> [duration] [delete:N] <reason>` (see app/bot/converters.py).
        """
        days = delete_days or 0
        if ctx.interaction is None and _STRAY_DELETE.search(reason):
            raise Refusal("Put `delete:N` before the reason: `!ban @user 7d delete:1 reason`.")

        step = flow.TEMPBAN if duration is not None else flow.BAN
        await flow.run_action(
            ctx, step, user, reason, duration=duration, delete_message_s=days * 86_400
        )

    @hybrid.command()
    @requires(ban_members=True)
    @bot_requires(ban_members=True)
    @app_commands.describe(user="Who to unban (a user id)", reason="Why")
    async def unban(self, ctx: Ctx, user: UserArg, *, reason: str = "") -> None:
        """Lift a ban (a temporary ban's case is closed with it)."""
        guild = ctx.guild
        assert guild is not None

        async def before() -> None:
            live = await self.bot.services.moderation.live_effect(guild.id, user.id, EffectKind.BAN)
            if live is not None:
                return  # banned, or about to be: the case log says so
            try:
                await guild.fetch_ban(user)
            except discord.NotFound:
                raise Refusal(f"{user.mention} is not banned.") from None

        await flow.run_action(ctx, flow.UNBAN, user, reason, before=before)

    @hybrid.command()
    @requires(manage_guild=True)
    @app_commands.describe(
        member="Who to fine", amount="Coins to take", reason="Why (the member is told)"
    )
    async def fine(self, ctx: Ctx, member: MemberArg, amount: int, *, reason: str) -> None:
        """Take coins from a member (Manage Server); opens a fine case."""
        assert ctx.guild is not None
        check_account(member, "fine")
        name = (await self.bot.services.guilds.cached(ctx.guild.id)).currency_name
        note = f" [{show(amount, name)}]"
        text = clip(validation.reason(reason, required=True), MAX_REASON - len(note)) + note

        async def take() -> None:
            assert ctx.guild is not None
            receipt = await self.bot.services.bank.fine(
                ctx.guild.id,
                ctx.author.id,
                member.id,
                amount,
                text,
                key=request_key(ctx, "fine"),
            )
            telemetry.coins_moved("fine", receipt)

        await flow.run_action(
            ctx, flow.FINE, member, text, before=take, extra=f" of {show(amount, name)}"
        )
