"""Reading and correcting the case log: modlog, case, reason, pardon, modlog-export."""

from __future__ import annotations

import logging
from typing import Any, Literal

import discord
from discord import app_commands
from discord.ext import commands

from app.bot.checks import requires
from app.bot.cogs.base import GuildCog
from app.bot.cogs.moderation.embeds import case_embed, case_line
from app.bot.cogs.moderation.export import export_files
from app.bot.cogs.moderation.notices import audit_reason, post_modlog
from app.bot.errors import Refusal
from app.bot.paginator import Paginator
from app.bot.render import fill_lines, make_embed, mention
from app.db.models import Case, CaseAction, CaseState
from app.domain import moderation

log = logging.getLogger(__name__)
Ctx = commands.Context[Any]
PER_PAGE = 10
ActionName = Literal[
    "warn", "note", "timeout", "untimeout", "kick", "ban", "tempban", "unban", "fine"
]
BANS = (CaseAction.BAN, CaseAction.TEMPBAN)


class CaseSource:
    """Pages of a guild's cases, newest first, walked with the domain's keyset cursor."""

    def __init__(
        self,
        guild_id: int,
        title: str,
        target_id: int | None = None,
        action: str | None = None,
        moderator_id: int | None = None,
    ) -> None:
        self.guild_id, self.title = guild_id, title
        self.filters: dict[str, Any] = {"action": action, "moderator_id": moderator_id}
        self.target_id = target_id
        self.cursors: list[int | None] = [None]

    async def page(self, index: int) -> tuple[discord.Embed, bool]:
        """Page `index` (0-based) and whether an older page follows."""
        index = min(index, len(self.cursors) - 1)
        found = await moderation.history(
            self.guild_id,
            self.target_id,
            before=self.cursors[index],
            limit=PER_PAGE,
            **self.filters,
        )
        text, used = fill_lines([case_line(c) for c in found.cases])
        shown = found.cases[:used]
        following = shown[-1].number if used < len(found.cases) else found.next_before
        if following is not None and len(self.cursors) == index + 1:
            self.cursors.append(following)
        embed = make_embed(self.title, text or "No cases.", footer=f"Page {index + 1}")
        return embed, following is not None


class History(GuildCog):
    """The case log: search it, read a case, correct a reason, pardon, export."""

    @commands.hybrid_command()
    @requires(moderate_members=True)
    @app_commands.describe(
        member="Whose cases", action="Only this kind of action", moderator="Only cases by them"
    )
    async def modlog(
        self,
        ctx: Ctx,
        member: discord.Member | discord.User,
        action: ActionName | None = None,
        moderator: discord.Member | discord.User | None = None,
    ) -> None:
        """A member's cases, newest first, 10 a page."""
        assert ctx.guild is not None
        title = f"Cases of {member}"[:200]
        source = CaseSource(
            ctx.guild.id, title, member.id, action, moderator.id if moderator else None
        )
        await Paginator(source, ctx.author.id).start(ctx, ephemeral=True)

    @commands.hybrid_command(name="case")
    @requires(moderate_members=True)
    @app_commands.describe(number="The case number")
    async def case_(self, ctx: Ctx, number: int) -> None:
        """One case in full, with its history of edits."""
        assert ctx.guild is not None
        case = await moderation.get_case(ctx.guild.id, number)
        await ctx.send(embed=case_embed(case, await moderation.edits(case)), ephemeral=True)

    @commands.hybrid_command(name="reason")
    @requires(moderate_members=True)
    @app_commands.describe(number="The case number", new_reason="The corrected reason")
    async def reason_(self, ctx: Ctx, number: int, *, new_reason: str) -> None:
        """Correct a case's reason (the old text stays in the case's history)."""
        assert ctx.guild is not None
        case = await moderation.edit_reason(ctx.guild.id, number, ctx.author.id, new_reason)
        await post_modlog(ctx.guild, case, title=f"Case #{case.number} — reason changed")
        await ctx.send(f"Case #{case.number}: reason updated.")

    @commands.hybrid_command()
    @requires(moderate_members=True)
    @app_commands.describe(number="The case number", reason="Why it is pardoned")
    async def pardon(self, ctx: Ctx, number: int, *, reason: str) -> None:
        """Pardon a case; an active ban or timeout it imposed is lifted too."""
        assert ctx.guild is not None and isinstance(ctx.author, discord.Member)
        before = await moderation.get_case(ctx.guild.id, number)
        if before.action in BANS and not ctx.author.guild_permissions.ban_members:
            raise Refusal("Pardoning a ban needs the Ban Members permission.")
        case = await moderation.pardon(ctx.guild.id, number, ctx.author.id, reason)
        lifted = ""
        if before.state == CaseState.ACTIVE:
            lifted = await self._lift(ctx, case)
        await post_modlog(ctx.guild, case, title=f"Case #{case.number} — pardoned")
        await ctx.send(f"Case #{case.number} ({mention(case.target_id)}) pardoned.{lifted}")

    async def _lift(self, ctx: Ctx, case: Case) -> str:
        """Undo what an active ban or timeout still imposes; a note for the reply."""
        guild = ctx.guild
        assert guild is not None
        why = audit_reason(ctx.author, case)
        try:
            if case.action in BANS:
                await guild.unban(discord.Object(case.target_id), reason=why)
                return " The ban was lifted."
            if case.action == CaseAction.TIMEOUT:
                member = await guild.fetch_member(case.target_id)
                if member.is_timed_out():
                    await member.timeout(None, reason=why)
                    return " The timeout was lifted."
        except discord.NotFound:
            return ""
        except discord.HTTPException as error:
            log.warning("could not lift case %s in guild %s: %s", case.number, guild.id, error)
            return f" I could not lift it in Discord ({error.status}); please do it by hand."
        return ""

    @commands.hybrid_command(name="modlog-export")
    @requires(moderate_members=True)
    @app_commands.describe(member="Only this member's cases (empty: every case of the server)")
    async def modlog_export(
        self, ctx: Ctx, member: discord.Member | discord.User | None = None
    ) -> None:
        """Every case of the server (or of one member) as CSV and JSON files."""
        assert ctx.guild is not None
        await ctx.defer(ephemeral=True)
        count, files = await export_files(ctx.guild.id, member.id if member else None)
        if count == 0:
            await ctx.send("There are no cases to export.", ephemeral=True)
            return
        whose = f"of {member.mention}" if member else "of this server"
        await ctx.send(f"{count:,} case(s) {whose}.", files=files, ephemeral=True)
