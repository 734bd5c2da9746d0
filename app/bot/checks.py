"""Who may run a command (the caller's Discord permissions) and on whom (the target rules).

Each permission decorator does three things at once: the command only runs in a server, the
caller must hold the permission (checked on every call), and the slash command carries it as
default_member_permissions so Discord hides it from members who lack it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import discord
from discord import app_commands
from discord.ext import commands

from app.bot.errors import CannotAnswer, Refusal, perm_names

F = TypeVar("F", bound=Callable[..., Any])


def requires(**perms: bool) -> Callable[[F], F]:
    """Guild only, caller needs `perms`, slash command hidden from members without them."""

    def decorate(func: F) -> F:
        func = commands.guild_only()(func)
        func = commands.has_guild_permissions(**perms)(func)
        return app_commands.default_permissions(**perms)(func)

    return decorate


def bot_requires(**perms: bool) -> Callable[[F], F]:
    """The bot itself needs `perms` in the server."""
    return commands.bot_has_guild_permissions(**perms)


def check_target(ctx: commands.Context[Any], target: discord.abc.User, verb: str) -> None:
    """Refuse an action on yourself, the bot, the owner, or anyone ranked at or above you or me.

    A user who is not in the server (ban or unban by id) has no roles, so only the first two
    rules apply to them.
    """
    guild = ctx.guild
    assert guild is not None
    me = guild.me
    if target.id == ctx.author.id:
        raise Refusal(f"You cannot {verb} yourself.")
    if target.id == me.id:
        raise Refusal(f"I will not {verb} myself.")
    if not isinstance(target, discord.Member):
        return
    if target.id == guild.owner_id:
        raise Refusal(f"Nobody can {verb} the server owner.")
    author = ctx.author
    if (
        isinstance(author, discord.Member)
        and author.id != guild.owner_id
        and target.top_role >= author.top_role
    ):
        raise Refusal(f"You cannot {verb} {target.mention}: their top role is at or above yours.")
    if target.top_role >= me.top_role:
        raise Refusal(f"I cannot {verb} {target.mention}: their top role is at or above mine.")


def check_account(target: discord.abc.User, verb: str) -> None:
    """Bots hold no coins."""
    if target.bot:
        raise Refusal(f"You cannot {verb} a bot: bots have no account.")


#: What the bot needs in a channel to answer a prefix command typed there.
ANSWER_PERMISSIONS = ("view_channel", "send_messages", "embed_links")


async def can_answer(ctx: commands.Context[Any]) -> bool:
    """Global check: a prefix command runs only where the bot can answer it.

    No effect without an answer: typed in a channel where the bot may not post (or post
    embeds), the command is refused before it converts its arguments or changes anything, and
    the member is told by DM. Slash commands are answered through the interaction, so they
    need none of these.
    """
    if ctx.interaction is not None or ctx.guild is None:
        return True
    perms = ctx.bot_permissions
    wanted = ANSWER_PERMISSIONS
    if isinstance(ctx.channel, discord.Thread):
        wanted = ("view_channel", "send_messages_in_threads", "embed_links")
    missing = [name for name in wanted if not getattr(perms, name)]
    if missing:
        where = getattr(ctx.channel, "mention", "this channel")
        raise CannotAnswer(
            f"I cannot answer in {where}: I need {perm_names(missing)} there. Nothing was done; "
            "try another channel or the slash command."
        )
    return True
