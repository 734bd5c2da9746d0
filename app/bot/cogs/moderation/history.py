"""Reading and correcting the case log: modlog, case, reason, pardon, modlog-export."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from app.bot.acknowledge import acknowledge
from app.bot.checks import requires
from app.bot.cogs import hybrid
from app.bot.cogs.base import GuildCog
from app.bot.cogs.moderation.access import check_case
from app.bot.cogs.moderation.apply import carry_out
from app.bot.cogs.moderation.embeds import case_embed, case_line
from app.bot.cogs.moderation.export import export_files
from app.bot.cogs.moderation.flow import answered_privately, lease
from app.bot.cogs.moderation.notices import post_modlog
from app.bot.converters import ActionFilter, ExportScope, OptionalUser, UserArg
from app.bot.idempotency import request_key
from app.bot.paginator import Paginator
from app.bot.privacy import send_private
from app.bot.render import fill_lines, make_embed, mention
from app.domain.authority import CaseOperation
from app.domain.case_search import CaseQuery, parse_day, parse_state, search_cases
from app.domain.effects import EFFECT_OF
from app.domain.moderation import CasePage
from app.domain.types import ActionState

log = logging.getLogger(__name__)
Ctx = commands.Context[Any]
PER_PAGE = 10
LIFTED = {
    ActionState.APPLIED: " The {} was lifted.",
    ActionState.PENDING: " Lifting the {} in Discord is pending; I will keep trying.",
    ActionState.FAILED: " I could not lift the {} in Discord ({}); please do it by hand.",
}


#: One page of cases older than the cursor (None: the newest), at most `limit` of them.
FetchPage = Callable[[int | None, int], Awaitable[CasePage]]


class CaseSource:
    """Pages of cases, newest first, walked with the domain's keyset cursor."""

    def __init__(self, fetch: FetchPage, title: str) -> None:
        self.fetch, self.title = fetch, title
        self.cursors: list[int | None] = [None]

    async def page(self, index: int) -> tuple[discord.Embed, bool]:
        """Page `index` (0-based) and whether an older page follows."""
        index = min(index, len(self.cursors) - 1)
        found = await self.fetch(self.cursors[index], PER_PAGE)
        text, used = fill_lines([case_line(c) for c in found.cases])
        shown = found.cases[:used]
        following = shown[-1].number if used < len(found.cases) else found.next_before
        if following is not None and len(self.cursors) == index + 1:
            self.cursors.append(following)
        embed = make_embed(self.title, text or "No cases.", footer=f"Page {index + 1}")
        return embed, following is not None


class History(GuildCog):
    """The case log: search it, read a case, correct a reason, pardon, export."""

    @hybrid.command()
    @requires(moderate_members=True)
    @app_commands.describe(
        member="Whose cases", action="Only this kind of action", moderator="Only cases by them"
    )
    async def modlog(
        self,
        ctx: Ctx,
        member: UserArg,
        action: ActionFilter = None,
        moderator: OptionalUser = None,
    ) -> None:
        """A member's cases, newest first, 10 a page (prefix: sent by DM)."""
        assert ctx.guild is not None
        await check_case(ctx, CaseOperation.VIEW, member.id)
        title = f"Cases of {member}"[:200]
        guild_id, by = ctx.guild.id, moderator.id if moderator else None

        def fetch(before: int | None, limit: int) -> Awaitable[CasePage]:
            return self.bot.services.moderation.history(
                guild_id, member.id, action=action, moderator_id=by, before=before, limit=limit
            )

        await Paginator(CaseSource(fetch, title), ctx.author.id).start(ctx, private="the cases")

    @hybrid.command(name="modlog-search")
    @requires(moderate_members=True)
    @app_commands.describe(
        text="Words the reason must contain (parts of words count)",
        member="Only cases about them",
        action="Only this kind of action",
        moderator="Only cases by them",
        state="Only cases in this state: active, expired or pardoned",
        since="Only cases from this day on (YYYY-MM-DD, UTC)",
        until="Only cases up to this day, included (YYYY-MM-DD, UTC)",
    )
    async def modlog_search(
        self,
        ctx: Ctx,
        text: str = "",
        member: OptionalUser = None,
        action: ActionFilter = None,
        moderator: OptionalUser = None,
        state: str = "",
        since: str = "",
        until: str = "",
    ) -> None:
        """Search the server's cases by reason, newest first (prefix: sent by DM)."""
        assert ctx.guild is not None
        if member is not None:
            await check_case(ctx, CaseOperation.VIEW, member.id)
        query = CaseQuery(
            ctx.guild.id,
            text=text,
            target_id=member.id if member else None,
            moderator_id=moderator.id if moderator else None,
            action=action,
            state=parse_state(state),
            since=parse_day(since, "from"),
            until=parse_day(until, "to", days=1),
            leave_out=ctx.author.id,
        )
        query.words()  # a query too long is refused before anything is shown

        def fetch(before: int | None, limit: int) -> Awaitable[CasePage]:
            return search_cases(query, before=before, limit=limit)

        title = (f"Cases matching “{text}”" if text else "Cases")[:200]
        await Paginator(CaseSource(fetch, title), ctx.author.id).start(ctx, private="the cases")

    @hybrid.command(name="case")
    @requires(moderate_members=True)
    @app_commands.describe(number="The case number")
    async def case_(self, ctx: Ctx, number: int) -> None:
        """One case in full, with its history of edits (prefix: sent by DM)."""
        assert ctx.guild is not None
        cases = self.bot.services.moderation
        case = await cases.get_case(ctx.guild.id, number)
        await check_case(ctx, CaseOperation.VIEW, case.target_id, case.action)
        edits = await cases.edits(ctx.guild.id, number)
        await send_private(ctx, f"case #{case.number}", embed=case_embed(case, edits))

    @hybrid.command(name="reason")
    @requires(moderate_members=True)
    @app_commands.describe(number="The case number", new_reason="The corrected reason")
    async def reason_(self, ctx: Ctx, number: int, *, new_reason: str) -> None:
        """Correct a case's reason (the old text stays in the case's history)."""
        assert ctx.guild is not None
        cases = self.bot.services.moderation
        before = await cases.get_case(ctx.guild.id, number)
        await check_case(ctx, CaseOperation.EDIT, before.target_id, before.action)
        private = await answered_privately(ctx, before.action)
        case = await cases.edit_reason(
            ctx.guild.id, number, ctx.author.id, new_reason, key=request_key(ctx, "reason")
        )
        await post_modlog(self.bot, ctx.guild, case, title=f"Case #{case.number} — reason changed")
        await ctx.send(f"Case #{case.number}: reason updated.", ephemeral=private)

    @hybrid.command()
    @requires(moderate_members=True)
    @app_commands.describe(number="The case number", reason="Why it is pardoned")
    async def pardon(self, ctx: Ctx, number: int, *, reason: str) -> None:
        """Pardon a case; the ban or timeout it holds (if it still holds one) is lifted too."""
        guild = ctx.guild
        assert guild is not None
        cases = self.bot.services.moderation
        before = await cases.get_case(guild.id, number)
        await check_case(ctx, CaseOperation.PARDON, before.target_id, before.action)
        private = await answered_privately(ctx, before.action)
        case = await cases.pardon(
            guild.id, number, ctx.author.id, reason, key=request_key(ctx, "pardon")
        )
        if case.lift_state == ActionState.PENDING:
            claimed = await self.bot.services.outbox.claim_case(
                guild.id, number, datetime.now(UTC), lease(self.bot)
            )
            if claimed is not None:
                case = await carry_out(self.bot, guild, claimed)
        if not case.replayed:
            await post_modlog(self.bot, guild, case, title=f"Case #{case.number} — pardoned")
        kind = EFFECT_OF.get(case.action)
        lifted = LIFTED.get(case.lift_state, "")
        if kind is not None:
            lifted = lifted.format(kind.value, case.action_note)
        await ctx.send(
            f"Case #{case.number} ({mention(case.target_id)}) pardoned.{lifted}", ephemeral=private
        )

    @hybrid.command(name="modlog-export")
    @requires(moderate_members=True)
    @app_commands.describe(member="Only this member's cases (empty: every case of the server)")
    async def modlog_export(self, ctx: Ctx, member: ExportScope = None) -> None:
        """Every case of the server (or of one member) as CSV and JSON files (prefix: by DM)."""
        assert ctx.guild is not None
        if member is not None:
            await check_case(ctx, CaseOperation.EXPORT, member.id)
        await acknowledge(ctx, ephemeral=True)
        count, files = await export_files(
            self.bot, ctx.guild, member.id if member else None, leave_out=ctx.author.id
        )
        if count == 0:
            await ctx.send("There are no cases to export.", ephemeral=True)
            return
        whose = f"of {member.mention}" if member else "of this server"
        await send_private(ctx, "the export", f"{count:,} case(s) {whose}.", files=files)
