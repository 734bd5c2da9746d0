"""Discord permission computation and role hierarchy.

Follows discord-api-docs "Permissions": base permissions from @everyone and the member's roles,
owner and ADMINISTRATOR bypass, then channel overwrites (@everyone, roles, member), no
VIEW_CHANNEL means nothing else. A timed-out member keeps only VIEW_CHANNEL and
READ_MESSAGE_HISTORY. Hierarchy: an actor may act on a member only if it is the owner or its
highest role is strictly above the target's; nobody acts on the owner.
"""

from __future__ import annotations

import datetime as dt
from enum import IntFlag

from sandbox.errors import forbidden
from sandbox.world import Channel, Guild, Member, Role


class Permission(IntFlag):
    CREATE_INSTANT_INVITE = 1 << 0
    KICK_MEMBERS = 1 << 1
    BAN_MEMBERS = 1 << 2
    ADMINISTRATOR = 1 << 3
    MANAGE_CHANNELS = 1 << 4
    MANAGE_GUILD = 1 << 5
    ADD_REACTIONS = 1 << 6
    VIEW_AUDIT_LOG = 1 << 7
    VIEW_CHANNEL = 1 << 10
    SEND_MESSAGES = 1 << 11
    MANAGE_MESSAGES = 1 << 13
    EMBED_LINKS = 1 << 14
    ATTACH_FILES = 1 << 15
    READ_MESSAGE_HISTORY = 1 << 16
    MENTION_EVERYONE = 1 << 17
    USE_EXTERNAL_EMOJIS = 1 << 18
    CONNECT = 1 << 20
    SPEAK = 1 << 21
    CHANGE_NICKNAME = 1 << 26
    MANAGE_NICKNAMES = 1 << 27
    MANAGE_ROLES = 1 << 28
    USE_APPLICATION_COMMANDS = 1 << 31
    SEND_MESSAGES_IN_THREADS = 1 << 38
    MODERATE_MEMBERS = 1 << 40


ALL = (1 << 51) - 1
P = Permission
#: What a new guild's @everyone role gets.
DEFAULT_EVERYONE = int(
    P.CREATE_INSTANT_INVITE
    | P.ADD_REACTIONS
    | P.VIEW_CHANNEL
    | P.SEND_MESSAGES
    | P.EMBED_LINKS
    | P.ATTACH_FILES
    | P.READ_MESSAGE_HISTORY
    | P.USE_EXTERNAL_EMOJIS
    | P.CONNECT
    | P.SPEAK
    | P.CHANGE_NICKNAME
    | P.USE_APPLICATION_COMMANDS
    | P.SEND_MESSAGES_IN_THREADS
)
MODERATION = int(
    P.KICK_MEMBERS
    | P.BAN_MEMBERS
    | P.MODERATE_MEMBERS
    | P.MANAGE_MESSAGES
    | P.VIEW_AUDIT_LOG
    | P.MANAGE_NICKNAMES
)
_TIMED_OUT_KEEP = int(P.VIEW_CHANNEL | P.READ_MESSAGE_HISTORY)


def base_permissions(guild: Guild, member: Member) -> int:
    """Guild-level permissions of ``member``."""
    if member.id == guild.owner_id:
        return ALL
    perms = guild.everyone.permissions
    for role_id in member.roles:
        role = guild.roles.get(role_id)
        if role is not None:
            perms |= role.permissions
    return ALL if perms & P.ADMINISTRATOR else perms


def channel_permissions(
    guild: Guild, channel: Channel, member: Member, at: dt.datetime | None = None
) -> int:
    """Permissions of ``member`` in ``channel`` after overwrites and timeouts."""
    perms = base_permissions(guild, member)
    if perms & P.ADMINISTRATOR:
        return ALL
    overwrites = {o.id: o for o in channel.overwrites}
    everyone = overwrites.get(guild.id)
    if everyone:
        perms = (perms & ~everyone.deny) | everyone.allow
    allow = deny = 0
    for role_id in member.roles:
        role_ow = overwrites.get(role_id)
        if role_ow is not None and role_ow.type == 0:
            allow |= role_ow.allow
            deny |= role_ow.deny
    perms = (perms & ~deny) | allow
    own = overwrites.get(member.id)
    if own is not None and own.type == 1:
        perms = (perms & ~own.deny) | own.allow
    if not perms & P.VIEW_CHANNEL:
        return 0
    if member.timed_out(at):
        perms &= _TIMED_OUT_KEEP
    return perms


def top_position(guild: Guild, member: Member) -> int:
    """Position of the member's highest role (0 = only @everyone)."""
    return max((guild.roles[r].position for r in member.roles if r in guild.roles), default=0)


def outranks(guild: Guild, actor: Member, target: Member) -> bool:
    """Whether ``actor`` may moderate ``target`` under Discord's role hierarchy."""
    if target.id == guild.owner_id:
        return False
    if actor.id == guild.owner_id:
        return True
    return top_position(guild, actor) > top_position(guild, target)


def has(guild: Guild, member: Member, permission: int, channel: Channel | None = None) -> bool:
    """Whether ``member`` has every bit of ``permission`` (in ``channel`` if given)."""
    perms = (
        channel_permissions(guild, channel, member) if channel else base_permissions(guild, member)
    )
    return perms & permission == permission


def require(guild: Guild, member: Member, permission: int, channel: Channel | None = None) -> None:
    """Raise 403/50013 unless ``member`` has ``permission``."""
    if not has(guild, member, permission, channel):
        raise forbidden()


def require_outranks(guild: Guild, actor: Member, target: Member) -> None:
    """Raise 403/50013 unless ``actor`` is above ``target`` in the hierarchy."""
    if not outranks(guild, actor, target):
        raise forbidden()


def require_role_manageable(guild: Guild, actor: Member, role: Role) -> None:
    """Raise 403/50013 unless ``actor`` may grant or remove ``role``."""
    require(guild, actor, P.MANAGE_ROLES)
    if role.managed or role.id == guild.id:
        raise forbidden()
    if actor.id != guild.owner_id and role.position >= top_position(guild, actor):
        raise forbidden()
