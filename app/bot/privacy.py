"""Staff data stays among staff: where staff-only output may go.

Case history, notes and exports are for moderators. A slash command answers them ephemerally
(only the caller sees it); a prefix command is typed in a channel others read, so the data goes
to the moderator by DM and the channel gets a one-line acknowledgement. If the DM cannot be
delivered the command is refused, in public, without the data. Every staff-only command
answers through `send_private`.

The modlog channel receives every case in full, so it must be one that only staff can read:
`staff_only` refuses a channel visible to a role without a moderation permission.
"""

from __future__ import annotations

from typing import Any

import discord
from discord.ext import commands

from app.bot.errors import Refusal
from app.bot.render import content as clipped

#: Permissions that make a role staff: each lets its holders run a staff command.
STAFF_PERMISSIONS = (
    "administrator",
    "manage_guild",
    "moderate_members",
    "kick_members",
    "ban_members",
)


async def send_private(
    ctx: commands.Context[Any],
    what: str,
    text: str | None = None,
    *,
    embed: discord.Embed | None = None,
    files: list[discord.File] | None = None,
    view: discord.ui.View | None = None,
) -> discord.Message:
    """Send staff-only output to the caller alone; returns the message holding it.

    `what` names the data in the public acknowledgement ("Sent you {what} by DM."). Raises
    Refusal, with nothing sent, when a prefix command's caller cannot be reached by DM.
    """
    options: dict[str, Any] = {}
    if embed is not None:
        options["embed"] = embed
    if files:
        options["files"] = files
    if view is not None:
        options["view"] = view
    body = clipped(text) if text else None
    if ctx.interaction is not None:
        return await ctx.send(body, ephemeral=True, **options)
    try:
        sent = await ctx.author.send(body, **options)
    except discord.Forbidden:
        raise Refusal(
            f"I could not send you {what}: open your direct messages from server members, or "
            "use the slash command (its answer only you can see)."
        ) from None
    await ctx.send(f"Sent you {what} by DM.")
    return sent


def is_staff(permissions: discord.Permissions) -> bool:
    """Whether these permissions let their holder run a staff command."""
    return any(getattr(permissions, name) for name in STAFF_PERMISSIONS)


def staff_only(channel: discord.TextChannel) -> None:
    """Refuse a channel that a role without any moderation permission can read.

    Roles managed by other bots are left out (they are not people); permission overwrites for
    single members are not checked.
    """
    readers = [
        role
        for role in channel.guild.roles
        if not role.is_bot_managed()
        and not is_staff(role.permissions)
        and channel.permissions_for(role).view_channel
    ]
    if readers:
        who = "everyone" if readers[0].is_default() else f"the {readers[0].name} role"
        raise Refusal(
            f"{channel.mention} is readable by {who}, and cases hold staff notes: choose a "
            "channel only staff can read."
        )
