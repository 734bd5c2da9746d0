"""JSON payloads shaped like the ones Discord sends (ids as strings, ISO timestamps)."""

from __future__ import annotations

from typing import Any

from sandbox.permissions import channel_permissions
from sandbox.world import (
    DM,
    VOICE,
    Attachment,
    Channel,
    Guild,
    Member,
    Message,
    Role,
    User,
    World,
    iso,
    snowflake_iso,
)

Payload = dict[str, Any]


def user(u: User) -> Payload:
    """A user object."""
    return {
        "id": str(u.id),
        "username": u.username,
        "global_name": u.global_name,
        "discriminator": "0",
        "avatar": None,
        "bot": u.bot,
        "system": False,
        "public_flags": 0,
        "flags": 0,
        "banner": None,
        "accent_color": None,
        "avatar_decoration_data": None,
    }


def member(m: Member, *, with_user: bool = True) -> Payload:
    """A guild member object (with ``user`` unless it is nested in a message or resolved data)."""
    until = m.communication_disabled_until
    data: Payload = {
        "roles": [str(r) for r in m.roles],
        "nick": m.nick,
        "avatar": None,
        "banner": None,
        "joined_at": m.joined_at,
        "premium_since": None,
        "deaf": False,
        "mute": False,
        "pending": False,
        "flags": 0,
        "communication_disabled_until": iso(until) if until else None,
    }
    if with_user:
        data["user"] = user(m.user)
    return data


def role(r: Role) -> Payload:
    """A role object."""
    data: Payload = {
        "id": str(r.id),
        "name": r.name,
        "color": r.color,
        "colors": {"primary_color": r.color, "secondary_color": None, "tertiary_color": None},
        "hoist": r.hoist,
        "icon": None,
        "unicode_emoji": None,
        "position": r.position,
        "permissions": str(r.permissions),
        "managed": r.managed,
        "mentionable": r.mentionable,
        "flags": 0,
    }
    if r.bot_id is not None:
        data["tags"] = {"bot_id": str(r.bot_id)}
    return data


def channel(c: Channel, world: World | None = None) -> Payload:
    """A channel object (guild channel or DM)."""
    last = c.message_ids[-1] if c.message_ids else None
    if c.type == DM:
        recipients = [user(world.users[u]) for u in c.recipient_ids] if world else []
        return {
            "id": str(c.id),
            "type": DM,
            "last_message_id": str(last) if last else None,
            "recipients": recipients,
            "flags": 0,
        }
    data: Payload = {
        "id": str(c.id),
        "type": c.type,
        "guild_id": str(c.guild_id),
        "name": c.name,
        "position": c.position,
        "parent_id": str(c.parent_id) if c.parent_id else None,
        "topic": c.topic,
        "nsfw": False,
        "last_message_id": str(last) if last else None,
        "rate_limit_per_user": 0,
        "flags": 0,
        "permission_overwrites": [
            {"id": str(o.id), "type": o.type, "allow": str(o.allow), "deny": str(o.deny)}
            for o in c.overwrites
        ],
    }
    if c.type == VOICE:
        data.update(
            {"bitrate": 64000, "user_limit": 0, "rtc_region": None, "video_quality_mode": 1}
        )
    return data


def guild(world: World, g: Guild, *, members: list[Member] | None = None) -> Payload:
    """A guild object; with ``members`` it is the full GUILD_CREATE payload."""
    data: Payload = {
        "id": str(g.id),
        "name": g.name,
        "icon": None,
        "splash": None,
        "discovery_splash": None,
        "banner": None,
        "description": None,
        "owner_id": str(g.owner_id),
        "afk_channel_id": None,
        "afk_timeout": 300,
        "verification_level": 1,
        "default_message_notifications": 1,
        "explicit_content_filter": 2,
        "roles": [role(r) for r in sorted(g.roles.values(), key=lambda r: r.position)],
        "emojis": [],
        "stickers": [],
        "features": list(g.features),
        "mfa_level": 0,
        "application_id": None,
        "system_channel_id": str(g.system_channel_id) if g.system_channel_id else None,
        "system_channel_flags": 0,
        "rules_channel_id": None,
        "public_updates_channel_id": None,
        "safety_alerts_channel_id": None,
        "vanity_url_code": None,
        "premium_tier": 0,
        "premium_subscription_count": 0,
        "preferred_locale": "en-US",
        "nsfw_level": 0,
        "premium_progress_bar_enabled": False,
        "max_members": 500000,
        "max_video_channel_users": 25,
    }
    if members is not None:
        bot_member = g.members.get(world.bot.id)
        data.update(
            {
                "joined_at": bot_member.joined_at if bot_member else snowflake_iso(g.id),
                "large": len(g.members) >= 250,
                "unavailable": False,
                "member_count": len(g.members),
                "members": [member(m) for m in members],
                "channels": [channel(world.channels[c]) for c in g.channel_ids],
                "threads": [],
                "presences": [],
                "voice_states": [],
                "stage_instances": [],
                "guild_scheduled_events": [],
                "soundboard_sounds": [],
            }
        )
    return data


def attachment(a: Attachment, base_url: str, channel_id: int) -> Payload:
    """An attachment object whose url serves the stored bytes."""
    url = f"{base_url}/attachments/{channel_id}/{a.id}/{a.filename}"
    return {
        "id": str(a.id),
        "filename": a.filename,
        "description": a.description,
        "content_type": a.content_type,
        "size": a.size,
        "url": url,
        "proxy_url": url,
        "ephemeral": False,
    }


def message(world: World, m: Message, base_url: str = "", *, nested: bool = True) -> Payload:
    """A message object as in MESSAGE_CREATE (with ``member`` and ``guild_id`` in guilds and the
    ``referenced_message`` of a reply when ``nested``)."""
    author = world.users[m.author_id]
    data: Payload = {
        "id": str(m.id),
        "type": m.type,
        "channel_id": str(m.channel_id),
        "author": user(author),
        "content": m.content,
        "timestamp": snowflake_iso(m.id),
        "edited_timestamp": m.edited_at,
        "tts": m.tts,
        "mention_everyone": m.mention_everyone,
        "mentions": [user(world.users[u]) for u in m.mention_ids if u in world.users],
        "mention_roles": [str(r) for r in m.mention_role_ids],
        "attachments": [attachment(a, base_url, m.channel_id) for a in m.attachments],
        "embeds": m.embeds,
        "components": m.components,
        "pinned": False,
        "flags": m.flags,
    }
    if m.nonce is not None:
        data["nonce"] = m.nonce
    if m.reference:
        data["message_reference"] = m.reference
        referenced = world.messages.get(m.reference_id or 0)
        if nested and referenced is not None:
            data["referenced_message"] = (
                None if referenced.deleted else message(world, referenced, base_url, nested=False)
            )
    if m.webhook_id:
        data["webhook_id"] = str(m.webhook_id)
        data["application_id"] = str(world.application_id)
    if m.interaction_metadata:
        data["interaction_metadata"] = m.interaction_metadata
    if m.guild_id is not None:
        data["guild_id"] = str(m.guild_id)
        author_member = world.guilds[m.guild_id].members.get(m.author_id)
        if author_member is not None:
            data["member"] = member(author_member, with_user=False)
    return data


def member_with_permissions(world: World, g: Guild, m: Member, c: Channel) -> Payload:
    """A member object with the computed ``permissions`` string in ``c`` (as in interactions)."""
    data = member(m)
    data["permissions"] = str(channel_permissions(g, c, m))
    return data


def application(world: World) -> Payload:
    """The application object returned by GET /oauth2/applications/@me."""
    owner = next((u for u in world.users.values() if not u.bot), world.bot)
    return {
        "id": str(world.application_id),
        "name": world.application_name,
        "icon": None,
        "description": "Sandbox application",
        "rpc_origins": [],
        "bot_public": True,
        "bot_require_code_grant": False,
        "bot": user(world.bot),
        "owner": user(owner),
        "team": None,
        "verify_key": "0" * 64,
        "flags": (1 << 12) | (1 << 14) | (1 << 18),  # presence, members, message content intents
        "tags": [],
        "redirect_uris": [],
        "interactions_endpoint_url": None,
        "approximate_guild_count": len(world.guilds),
    }
