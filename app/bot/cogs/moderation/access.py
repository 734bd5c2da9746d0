"""The facts the case authorization rule needs (app/domain/authority.py), taken from Discord."""

from __future__ import annotations

from typing import Any

import discord
from discord.ext import commands

from app.domain.authority import Actor, CaseOperation, check_case_access
from app.domain.types import CaseAction


def actor_of(member: discord.Member) -> Actor:
    """A member's id, top-role position and guild permissions (Administrator grants all)."""
    granted = frozenset(name for name, value in member.guild_permissions if value)
    return Actor(member.id, member.top_role.position, granted)


async def top_position(guild: discord.Guild, user_id: int) -> int | None:
    """The top-role position of a member, None when they are not in the server."""
    member = guild.get_member(user_id)
    if member is None:
        try:
            member = await guild.fetch_member(user_id)
        except discord.NotFound:
            return None
    return member.top_role.position


async def check_case(
    ctx: commands.Context[Any],
    operation: CaseOperation,
    target_id: int,
    action: CaseAction | None = None,
) -> None:
    """Refuse (NotPermitted) unless the caller may do `operation` on a case about target_id."""
    guild = ctx.guild
    assert guild is not None and isinstance(ctx.author, discord.Member)
    target_top = await top_position(guild, target_id)
    check_case_access(
        operation, actor_of(ctx.author), guild.owner_id or 0, target_id, target_top, action
    )
