"""A cached guild written back as the GUILD_CREATE-shaped payload it can be rebuilt from.

A shard's handover snapshot (app/bot/handover.py) is the guilds a process holds, as
`discord_internals.add_guild` takes them: the guild, its roles and channels, and the bot's own
member (the bot caches no other member). Only public attributes of discord.py's objects are read,
so the payload is up to date with every event the process handled.
"""

from __future__ import annotations

from typing import Any

import discord

Payload = dict[str, Any]


def _snowflake(value: int | None) -> str | None:
    return None if value is None else str(value)


def _iso(value: Any) -> str | None:
    return None if value is None else str(value.isoformat())


def _colour(value: discord.Colour | None) -> int | None:
    return None if value is None else value.value


def role_payload(role: discord.Role) -> Payload:
    """A role object."""
    data: Payload = {
        "id": str(role.id),
        "name": role.name,
        "color": role.colour.value,
        "colors": {
            "primary_color": role.colour.value,
            "secondary_color": _colour(role.secondary_colour),
            "tertiary_color": _colour(role.tertiary_colour),
        },
        "hoist": role.hoist,
        "position": role.position,
        "permissions": str(role.permissions.value),
        "managed": role.managed,
        "mentionable": role.mentionable,
        "icon": None,
        "unicode_emoji": role.unicode_emoji,
        "flags": 0,
    }
    tags = role.tags
    if tags is not None:
        data["tags"] = {
            k: str(v)
            for k, v in (("bot_id", tags.bot_id), ("integration_id", tags.integration_id))
            if v is not None
        }
        if tags.is_premium_subscriber():
            data["tags"]["premium_subscriber"] = None
    return data


def _overwrites(channel: discord.abc.GuildChannel) -> list[Payload]:
    rows = []
    for target, overwrite in channel.overwrites.items():
        allow, deny = overwrite.pair()
        kind = 0 if isinstance(target, discord.Role) else 1
        rows.append(
            {"id": str(target.id), "type": kind, "allow": str(allow.value), "deny": str(deny.value)}
        )
    return rows


#: Attributes of some channel kinds, by payload key.
_CHANNEL_EXTRAS = {
    "topic": "topic",
    "nsfw": "nsfw",
    "rate_limit_per_user": "slowmode_delay",
    "last_message_id": "last_message_id",
    "bitrate": "bitrate",
    "user_limit": "user_limit",
    "rtc_region": "rtc_region",
}


def channel_payload(channel: discord.abc.GuildChannel) -> Payload:
    """A guild channel object (threads are not kept)."""
    data: Payload = {
        "id": str(channel.id),
        "type": channel.type.value,
        "guild_id": str(channel.guild.id),
        "name": channel.name,
        "position": channel.position,
        "parent_id": _snowflake(channel.category_id),
        "permission_overwrites": _overwrites(channel),
        "flags": 0,
    }
    for key, attribute in _CHANNEL_EXTRAS.items():
        if hasattr(channel, attribute):
            value = getattr(channel, attribute)
            data[key] = str(value) if key == "last_message_id" and value is not None else value
    return data


def member_payload(member: discord.Member) -> Payload:
    """A guild member object, with its user."""
    return {
        "user": {
            "id": str(member.id),
            "username": member.name,
            "global_name": member.global_name,
            "discriminator": member.discriminator,
            "avatar": None,
            "bot": member.bot,
            "system": member.system,
            "public_flags": member.public_flags.value,
        },
        "roles": [str(r.id) for r in member.roles if not r.is_default()],
        "nick": member.nick,
        "avatar": None,
        "joined_at": _iso(member.joined_at),
        "premium_since": _iso(member.premium_since),
        "deaf": False,
        "mute": False,
        "pending": member.pending,
        "flags": member.flags.value,
        "communication_disabled_until": _iso(member.timed_out_until),
    }


def guild_payload(guild: discord.Guild) -> Payload:
    """The guild as GUILD_CREATE would send it, with the bot as its only member."""
    return {
        "id": str(guild.id),
        "name": guild.name,
        "icon": None,
        "owner_id": _snowflake(guild.owner_id),
        "afk_timeout": guild.afk_timeout,
        "afk_channel_id": _snowflake(guild.afk_channel.id if guild.afk_channel else None),
        "verification_level": guild.verification_level.value,
        "default_message_notifications": guild.default_notifications.value,
        "explicit_content_filter": guild.explicit_content_filter.value,
        "mfa_level": guild.mfa_level.value,
        "nsfw_level": guild.nsfw_level.value,
        "features": list(guild.features),
        "system_channel_id": _snowflake(guild.system_channel.id if guild.system_channel else None),
        "system_channel_flags": guild.system_channel_flags.value,
        "rules_channel_id": _snowflake(guild.rules_channel.id if guild.rules_channel else None),
        "preferred_locale": str(guild.preferred_locale),
        "premium_tier": guild.premium_tier,
        "member_count": guild.member_count,
        "large": guild.large,
        "unavailable": False,
        "roles": [role_payload(r) for r in guild.roles],
        "emojis": [],
        "stickers": [],
        "channels": [channel_payload(c) for c in guild.channels],
        "threads": [],
        "members": [member_payload(guild.me)],
    }
