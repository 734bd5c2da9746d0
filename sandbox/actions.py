"""State changes shared by REST (the bot acting) and the driver (humans acting).

Each function checks the actor's permissions like Discord, mutates the world and emits the
gateway events Discord would send, in Discord's order.
"""

from __future__ import annotations

import bisect
import datetime as dt
import itertools
import re
import time
from dataclasses import dataclass, field
from typing import Any

from sandbox import payloads
from sandbox.core import Core
from sandbox.errors import SandboxError, forbidden, invalid_form, not_found
from sandbox.permissions import (
    P,
    base_permissions,
    has,
    require,
    require_outranks,
    require_role_manageable,
)
from sandbox.world import Attachment, Ban, Channel, Guild, Member, Message, User, iso, now

MAX_TIMEOUT = dt.timedelta(days=28)
EPHEMERAL = 1 << 6
_USER_MENTION = re.compile(r"<@!?(\d+)>")
_ROLE_MENTION = re.compile(r"<@&(\d+)>")


class AuditAction:
    KICK = 20
    BAN = 22
    UNBAN = 23
    MEMBER_UPDATE = 24
    MEMBER_ROLE_UPDATE = 25


@dataclass
class NewMessage:
    """What to post; mirrors the fields of Discord's create-message body."""

    content: str = ""
    embeds: list[dict[str, Any]] = field(default_factory=list)
    components: list[dict[str, Any]] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)
    reference: dict[str, Any] | None = None
    allowed_mentions: dict[str, Any] | None = None
    flags: int = 0
    tts: bool = False
    nonce: str | int | None = None
    type: int | None = None
    #: Made this many seconds ago: a delivery that comes late (its id and timestamp say so).
    sent_ago: float = 0.0
    interaction_id: int | None = None
    interaction_metadata: dict[str, Any] | None = None
    webhook_id: int | None = None

    @classmethod
    def from_body(cls, body: dict[str, Any], attachments: list[Attachment]) -> NewMessage:
        """Build from a REST JSON body (message fields only)."""
        return cls(
            content=body.get("content") or "",
            embeds=list(body.get("embeds") or []),
            components=list(body.get("components") or []),
            attachments=attachments,
            reference=body.get("message_reference"),
            allowed_mentions=body.get("allowed_mentions"),
            flags=int(body.get("flags") or 0),
            tts=bool(body.get("tts")),
            nonce=body.get("nonce"),
        )


#: The fields of a NewMessage a Message takes over as they are.
_AS_GIVEN = (
    "content",
    "embeds",
    "components",
    "attachments",
    "reference",
    "flags",
    "tts",
    "nonce",
    "interaction_id",
    "interaction_metadata",
    "webhook_id",
)


def _mentions(
    core: Core, guild: Guild | None, new: NewMessage
) -> tuple[list[int], list[int], bool]:
    allowed = new.allowed_mentions
    parse = set(allowed.get("parse", [])) if allowed else {"users", "roles", "everyone"}
    users = [int(u) for u in _USER_MENTION.findall(new.content) if int(u) in core.world.users]
    roles = [int(r) for r in _ROLE_MENTION.findall(new.content) if guild and int(r) in guild.roles]
    if allowed is not None:
        explicit_users = {int(u) for u in allowed.get("users", [])}
        explicit_roles = {int(r) for r in allowed.get("roles", [])}
        users = [u for u in users if "users" in parse or u in explicit_users]
        roles = [r for r in roles if "roles" in parse or r in explicit_roles]
    everyone = "everyone" in parse and ("@everyone" in new.content or "@here" in new.content)
    if new.reference and (allowed is None or allowed.get("replied_user", True)):
        replied = core.world.messages.get(int(new.reference.get("message_id") or 0))
        if replied is not None and replied.author_id not in users:
            users.append(replied.author_id)
    return list(dict.fromkeys(users)), list(dict.fromkeys(roles)), everyone


def repeated_nonce(core: Core, author: User, body: dict[str, Any]) -> Message | None:
    """The message `author` created within the nonce window under the nonce this body enforces
    (Discord then posts nothing and returns that one); None otherwise."""
    nonce = body.get("nonce")
    if not body.get("enforce_nonce") or nonce is None:
        return None
    seen = core.nonces.get((author.id, str(nonce)))
    if seen is None or time.monotonic() - seen[1] > core.settings.nonce_window:
        return None
    earlier = core.world.messages.get(seen[0])
    if earlier is None or earlier.deleted:
        return None
    core.nonce_repeats += 1
    core.changed()
    return earlier


def remember_nonce(core: Core, body: dict[str, Any], msg: Message) -> None:
    """Note the nonce of a message created with enforce_nonce (forgetting expired ones)."""
    if not body.get("enforce_nonce") or msg.nonce is None:
        return
    now = time.monotonic()
    nonces = core.nonces  # oldest first: each entry is (re)inserted at the end
    horizon = now - core.settings.nonce_window
    for key in list(itertools.takewhile(lambda k: nonces[k][1] < horizon, nonces)):
        del nonces[key]
    key = (msg.author_id, str(msg.nonce))
    nonces.pop(key, None)
    nonces[key] = (msg.id, now)


def post_message(
    core: Core, channel: Channel, author: User, new: NewMessage, *, ephemeral_to: int | None = None
) -> Message:
    """Store a message and emit MESSAGE_CREATE (ephemeral messages are stored, not emitted)."""
    world = core.world
    guild = world.guilds.get(channel.guild_id) if channel.guild_id else None
    if new.reference:
        ref_id = int(new.reference.get("message_id") or 0)
        if ref_id not in world.messages and new.reference.get("fail_if_not_exists", True):
            raise invalid_form(
                "message_reference", "MESSAGE_REFERENCE_UNKNOWN_MESSAGE", "Unknown message"
            )
        new.reference = {
            "type": 0,
            "message_id": str(ref_id),
            "channel_id": str(channel.id),
            **({"guild_id": str(guild.id)} if guild else {}),
        }
    users, roles, everyone = _mentions(core, guild, new)
    kind = new.type if new.type is not None else (19 if new.reference else 0)
    msg = Message(
        id=world.ids.backdated(new.sent_ago) if new.sent_ago else world.ids.next(),
        channel_id=channel.id,
        author_id=author.id,
        guild_id=guild.id if guild else None,
        type=kind,
        mention_ids=users,
        mention_role_ids=roles,
        mention_everyone=everyone,
        ephemeral_to=ephemeral_to,
        **{name: getattr(new, name) for name in _AS_GIVEN},
    )
    world.messages[msg.id] = msg
    if ephemeral_to is None:
        bisect.insort(channel.message_ids, msg.id)  # a backdated message sorts by its id
        core.emit("MESSAGE_CREATE", payloads.message(world, msg, core.base_url), msg.guild_id)
    else:
        core.changed()
    return msg


def edit_message(
    core: Core, msg: Message, changes: dict[str, Any], attachments: list[Attachment] | None = None
) -> Message:
    """Apply an edit body and emit MESSAGE_UPDATE (not for ephemeral messages)."""
    for key in ("content", "embeds", "components", "flags"):
        if key in changes and changes[key] is not None:
            setattr(msg, key, changes[key])
        elif key in changes and key != "flags":
            setattr(msg, key, "" if key == "content" else [])
    if "attachments" in changes:
        # Kept attachments are listed by their snowflake; new files by their small upload index.
        listed = {int(a["id"]) for a in changes["attachments"] or [] if str(a.get("id")).isdigit()}
        keep = {i for i in listed if i > 0xFFFF}
        msg.attachments = [a for a in msg.attachments if a.id in keep] + (attachments or [])
    msg.edited_at = iso(now())
    if msg.ephemeral_to is None:
        data = payloads.message(core.world, msg, core.base_url)
        core.emit("MESSAGE_UPDATE", data, msg.guild_id)
    else:
        core.changed()
    return msg


def delete_message(core: Core, msg: Message) -> None:
    """Mark deleted and emit MESSAGE_DELETE."""
    msg.deleted = True
    data: dict[str, Any] = {"id": str(msg.id), "channel_id": str(msg.channel_id)}
    if msg.guild_id:
        data["guild_id"] = str(msg.guild_id)
    core.emit("MESSAGE_DELETE", data, msg.guild_id) if msg.ephemeral_to is None else core.changed()


def can_delete(core: Core, actor_id: int, msg: Message) -> bool:
    """Authors delete their own messages; others need MANAGE_MESSAGES in the channel."""
    if msg.author_id == actor_id:
        return True
    guild = core.world.guilds.get(msg.guild_id or 0)
    member = guild.members.get(actor_id) if guild else None
    if guild is None or member is None:
        return False
    return has(guild, member, P.MANAGE_MESSAGES, core.world.channels[msg.channel_id])


# -- members ---------------------------------------------------------------------------------


def audit(
    core: Core,
    guild: Guild,
    actor: Member,
    action: int,
    target_id: int,
    reason: str | None,
    changes: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Append an audit log entry and emit GUILD_AUDIT_LOG_ENTRY_CREATE."""
    entry: dict[str, Any] = {
        "id": str(core.world.ids.next()),
        "user_id": str(actor.id),
        "target_id": str(target_id),
        "action_type": action,
        "reason": reason,
        "changes": changes or [],
    }
    guild.audit_log.append(entry)
    core.emit("GUILD_AUDIT_LOG_ENTRY_CREATE", {**entry, "guild_id": str(guild.id)}, guild.id)
    return entry


def _member_event(core: Core, guild: Guild, member: Member) -> None:
    data = {**payloads.member(member), "guild_id": str(guild.id)}
    core.emit("GUILD_MEMBER_UPDATE", data, guild.id)


def _remove(core: Core, guild: Guild, user: User) -> None:
    if guild.members.pop(user.id, None) is not None:
        core.emit(
            "GUILD_MEMBER_REMOVE",
            {"guild_id": str(guild.id), "user": payloads.user(user)},
            guild.id,
        )


def join(core: Core, guild: Guild, user: User, role_ids: list[int] | None = None) -> Member:
    """A user joins ``guild``: GUILD_MEMBER_ADD."""
    if user.id in guild.bans:
        raise SandboxError(403, 40007, "The user is banned from this guild.")
    core.world.users.setdefault(user.id, user)
    member = Member(user=user, roles=list(role_ids or []), joined_at=iso(now()))
    guild.members[user.id] = member
    core.emit("GUILD_MEMBER_ADD", {**payloads.member(member), "guild_id": str(guild.id)}, guild.id)
    return member


def leave(core: Core, guild: Guild, member: Member) -> None:
    """A member leaves on their own: GUILD_MEMBER_REMOVE, no audit entry."""
    _remove(core, guild, member.user)


def kick(core: Core, guild: Guild, actor: Member, target: Member, reason: str | None) -> None:
    """Kick: needs KICK_MEMBERS and hierarchy; GUILD_MEMBER_REMOVE then audit entry 20."""
    require(guild, actor, P.KICK_MEMBERS)
    require_outranks(guild, actor, target)
    _remove(core, guild, target.user)
    audit(core, guild, actor, AuditAction.KICK, target.id, reason)


def ban(
    core: Core,
    guild: Guild,
    actor: Member,
    user: User,
    reason: str | None,
    delete_message_seconds: int = 0,
) -> None:
    """Ban: needs BAN_MEMBERS (and hierarchy over a member); GUILD_BAN_ADD, GUILD_MEMBER_REMOVE,
    MESSAGE_DELETE for the user's recent messages, audit entry 22."""
    require(guild, actor, P.BAN_MEMBERS)
    target = guild.members.get(user.id)
    if target is not None:
        require_outranks(guild, actor, target)
    if not 0 <= delete_message_seconds <= 604800:
        raise invalid_form("delete_message_seconds", "NUMBER_TYPE_MAX", "Must be <= 604800")
    guild.bans[user.id] = Ban(user=user, reason=reason)
    core.emit("GUILD_BAN_ADD", {"guild_id": str(guild.id), "user": payloads.user(user)}, guild.id)
    _remove(core, guild, user)
    if delete_message_seconds:
        cutoff = core.world.ids.next() - (delete_message_seconds * 1000 << 22)
        for msg in list(core.world.messages.values()):
            if (
                msg.guild_id == guild.id
                and msg.author_id == user.id
                and msg.id >= cutoff
                and not msg.deleted
            ):
                delete_message(core, msg)
    audit(core, guild, actor, AuditAction.BAN, user.id, reason)


def unban(core: Core, guild: Guild, actor: Member, user_id: int, reason: str | None) -> None:
    """Unban: needs BAN_MEMBERS; 404/10026 when not banned; GUILD_BAN_REMOVE, audit entry 23."""
    require(guild, actor, P.BAN_MEMBERS)
    entry = guild.bans.pop(user_id, None)
    if entry is None:
        raise not_found("ban")
    core.emit(
        "GUILD_BAN_REMOVE", {"guild_id": str(guild.id), "user": payloads.user(entry.user)}, guild.id
    )
    audit(core, guild, actor, AuditAction.UNBAN, user_id, reason)


_UNSET: Any = object()


def update_member(
    core: Core,
    guild: Guild,
    actor: Member,
    target: Member,
    *,
    nick: Any = _UNSET,
    roles: Any = _UNSET,
    timeout_until: Any = _UNSET,
    reason: str | None = None,
) -> Member:
    """Edit nick, roles and/or timeout with Discord's checks; GUILD_MEMBER_UPDATE and audit
    entries 24 (nick, communication_disabled_until) and 25 (roles)."""
    changes: list[dict[str, Any]] = []
    role_changes: list[dict[str, Any]] = []
    if nick is not _UNSET and nick != target.nick:
        if actor.id == target.id:
            require(guild, actor, P.CHANGE_NICKNAME)
        else:
            require(guild, actor, P.MANAGE_NICKNAMES)
            require_outranks(guild, actor, target)
        changes.append({"key": "nick", "old_value": target.nick, "new_value": nick})
    if roles is not _UNSET:
        wanted = [int(r) for r in roles]
        unknown = [r for r in wanted if r not in guild.roles]
        if unknown:
            raise not_found("role")
        added = [r for r in wanted if r not in target.roles]
        removed = [r for r in target.roles if r not in wanted]
        for role_id in added + removed:
            require_role_manageable(guild, actor, guild.roles[role_id])
        for key, ids in (("$add", added), ("$remove", removed)):
            if ids:
                value = [{"id": str(r), "name": guild.roles[r].name} for r in ids]
                role_changes.append({"key": key, "new_value": value})
    if timeout_until is not _UNSET:
        _check_timeout(guild, actor, target, timeout_until)
        old = target.communication_disabled_until
        changes.append(
            {
                "key": "communication_disabled_until",
                "old_value": iso(old) if old else None,
                "new_value": iso(timeout_until) if timeout_until else None,
            }
        )
    if nick is not _UNSET:
        target.nick = nick or None
    if roles is not _UNSET:
        target.roles = list(dict.fromkeys(int(r) for r in roles))
    if timeout_until is not _UNSET:
        target.communication_disabled_until = timeout_until
    _member_event(core, guild, target)
    if changes:
        audit(core, guild, actor, AuditAction.MEMBER_UPDATE, target.id, reason, changes)
    if role_changes:
        audit(core, guild, actor, AuditAction.MEMBER_ROLE_UPDATE, target.id, reason, role_changes)
    return target


def _check_timeout(guild: Guild, actor: Member, target: Member, until: dt.datetime | None) -> None:
    require(guild, actor, P.MODERATE_MEMBERS)
    require_outranks(guild, actor, target)
    if base_permissions(guild, target) & P.ADMINISTRATOR:
        raise forbidden()
    if until is not None and until > now() + MAX_TIMEOUT:
        raise invalid_form(
            "communication_disabled_until",
            "BASE_TYPE_BAD_TIME",
            "Cannot time out a member for more than 28 days",
        )
