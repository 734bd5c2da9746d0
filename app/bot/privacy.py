"""Staff data stays among staff: where staff-only output may go.

Case history, notes and exports are for moderators. A slash command answers them ephemerally
(only the caller sees it); a prefix command is typed in a channel others read, so the data goes
to the moderator by DM and the channel gets a one-line acknowledgement. If the DM cannot be
delivered the command is refused, in public, without the data. Every staff-only command
answers through `send_private`. A prefix command whose own words are staff data (`!note`) is
refused in a channel non-staff can read, and its message deleted when the bot may
(`keep_out_of_public`).

The modlog channel receives every case in full, so it must be one that only staff can read:
`staff_only` refuses a channel visible to a role without a moderation permission.
"""

from __future__ import annotations

from contextlib import suppress
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


def non_staff_reader(channel: discord.abc.GuildChannel | discord.Thread) -> str | None:
    """Who, without any moderation permission, can read `channel` ("everyone", "the X role").

    Roles managed by other bots are left out (they are not people); permission overwrites for
    single members are not checked.
    """
    for role in channel.guild.roles:
        if (
            not role.is_bot_managed()
            and not is_staff(role.permissions)
            and channel.permissions_for(role).view_channel
        ):
            return "everyone" if role.is_default() else f"the {role.name} role"
    return None


def staff_only(channel: discord.TextChannel) -> None:
    """Refuse a channel that a role without any moderation permission can read."""
    if who := non_staff_reader(channel):
        raise Refusal(
            f"{channel.mention} is readable by {who}, and cases hold staff notes: choose a "
            "channel only staff can read."
        )


async def keep_out_of_public(ctx: commands.Context[Any], what: str) -> None:
    """Refuse a prefix command whose own text is staff data (`what`) in a public channel.

    The caller's message is deleted first when the bot may, so the text does not stay there.
    A slash command, or a prefix command in a channel only staff read, passes.
    """
    channel = ctx.channel
    if ctx.interaction is not None or not isinstance(
        channel, discord.abc.GuildChannel | discord.Thread
    ):
        return
    who = non_staff_reader(channel)
    if who is None:
        return
    deleted = False
    with suppress(discord.HTTPException):
        await ctx.message.delete()
        deleted = True
    raise Refusal(
        f"{what} are for staff, and this channel is readable by {who}: use the slash command "
        "(only you see its answer) or a channel only staff can read."
        + (" I deleted your message." if deleted else " Delete your message.")
    )
