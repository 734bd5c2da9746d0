"""Gateway intents: which sessions receive which events, and message content redaction."""

from __future__ import annotations

from typing import Any

GUILDS = 1 << 0
GUILD_MEMBERS = 1 << 1
GUILD_MODERATION = 1 << 2
GUILD_PRESENCES = 1 << 8
GUILD_MESSAGES = 1 << 9
DIRECT_MESSAGES = 1 << 12
MESSAGE_CONTENT = 1 << 15
#: The intents Discord only grants when enabled for the bot in the developer portal.
PRIVILEGED = GUILD_MEMBERS | GUILD_PRESENCES | MESSAGE_CONTENT
#: Every intent Discord knows; an IDENTIFY with another bit is closed with 4013.
KNOWN = (1 << 26) - 1
#: Used when an IDENTIFY carries no intents: every non-privileged intent.
DEFAULT = KNOWN & ~PRIVILEGED

_REQUIRED = {
    "GUILD_MEMBER_ADD": GUILD_MEMBERS,
    "GUILD_MEMBER_UPDATE": GUILD_MEMBERS,
    "GUILD_MEMBER_REMOVE": GUILD_MEMBERS,
    "GUILD_BAN_ADD": GUILD_MODERATION,
    "GUILD_BAN_REMOVE": GUILD_MODERATION,
    "GUILD_AUDIT_LOG_ENTRY_CREATE": GUILD_MODERATION,
    "GUILD_CREATE": GUILDS,
    "GUILD_UPDATE": GUILDS,
    "GUILD_DELETE": GUILDS,
    "CHANNEL_CREATE": GUILDS,
    "CHANNEL_UPDATE": GUILDS,
    "CHANNEL_DELETE": GUILDS,
    "GUILD_ROLE_CREATE": GUILDS,
    "GUILD_ROLE_UPDATE": GUILDS,
    "GUILD_ROLE_DELETE": GUILDS,
}
_MESSAGE_EVENTS = {"MESSAGE_CREATE", "MESSAGE_UPDATE", "MESSAGE_DELETE", "MESSAGE_DELETE_BULK"}
_CONTENT_FIELDS = {"content": "", "embeds": [], "attachments": [], "components": []}


def _mentions_or_sent_by(data: dict[str, Any], bot_id: int) -> bool:
    author = (data.get("author") or {}).get("id")
    mentioned = {m.get("id") for m in data.get("mentions") or []}
    return author == str(bot_id) or str(bot_id) in mentioned


def filter_event(
    intents: int, event: str, data: dict[str, Any], guild_id: int | None, bot_id: int
) -> dict[str, Any] | None:
    """The payload a session with ``intents`` receives, or None when it gets nothing.

    Without MESSAGE_CONTENT, guild messages have empty content, embeds, attachments and
    components unless the bot sent them or is mentioned (DMs always carry content).
    """
    if event in _MESSAGE_EVENTS:
        if not intents & (GUILD_MESSAGES if guild_id else DIRECT_MESSAGES):
            return None
        needs_redaction = (
            guild_id is not None
            and event != "MESSAGE_DELETE"
            and not intents & MESSAGE_CONTENT
            and "content" in data
            and not _mentions_or_sent_by(data, bot_id)
        )
        return {**data, **_CONTENT_FIELDS} if needs_redaction else data
    needed = _REQUIRED.get(event)
    if needed and not intents & needed:
        about_bot = (data.get("user") or {}).get("id") == str(bot_id)
        if not (event == "GUILD_MEMBER_UPDATE" and about_bot):
            return None
    return data
