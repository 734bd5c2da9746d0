"""In-memory Discord state: users, guilds, roles, channels, members, messages, bans, DMs.

Objects are plain dataclasses; :mod:`sandbox.payloads` turns them into the JSON Discord sends.
Lookups accept an object, an id (int or digit string) or a name (``"bob"``, ``"@bob"``,
``"#general"``, ``"<@123>"``) so tests and the console can say what they mean.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import MutableMapping
from dataclasses import dataclass, field
from typing import Any

from sandbox.snowflake import SnowflakeGenerator, timestamp_ms

TEXT, DM, VOICE, CATEGORY = 0, 1, 2, 4
_MENTION = re.compile(r"^<[@#]?[!&]?(\d+)>$")


def iso(moment: dt.datetime) -> str:
    """Discord's ISO-8601 timestamp format."""
    return moment.astimezone(dt.UTC).isoformat()


def now() -> dt.datetime:
    """The current time, timezone-aware UTC."""
    return dt.datetime.now(dt.UTC)


def snowflake_iso(snowflake: int) -> str:
    """ISO timestamp of a snowflake's creation time."""
    return iso(dt.datetime.fromtimestamp(timestamp_ms(snowflake) / 1000, dt.UTC))


@dataclass(slots=True)
class User:
    id: int
    username: str
    global_name: str | None = None
    bot: bool = False
    #: Privacy switch: when on, the bot cannot open or use a DM with this user (403, 50007).
    dms_closed: bool = False


@dataclass(slots=True)
class Role:
    id: int
    name: str
    permissions: int
    position: int
    color: int = 0
    hoist: bool = False
    mentionable: bool = False
    #: Managed roles (the bot's own integration role) cannot be granted by anyone.
    managed: bool = False
    bot_id: int | None = None


@dataclass(slots=True)
class Overwrite:
    id: int
    type: int  # 0 role, 1 member
    allow: int = 0
    deny: int = 0


@dataclass(slots=True)
class Channel:
    id: int
    type: int
    name: str = ""
    guild_id: int | None = None
    position: int = 0
    parent_id: int | None = None
    topic: str | None = None
    overwrites: list[Overwrite] = field(default_factory=list)
    recipient_ids: tuple[int, ...] = ()
    message_ids: list[int] = field(default_factory=list)


@dataclass(slots=True)
class Member:
    user: User
    roles: list[int] = field(default_factory=list)
    nick: str | None = None
    joined_at: str = ""
    communication_disabled_until: dt.datetime | None = None

    @property
    def id(self) -> int:
        return self.user.id

    @property
    def display_name(self) -> str:
        return self.nick or self.user.global_name or self.user.username

    def timed_out(self, at: dt.datetime | None = None) -> bool:
        """Whether a timeout is active at ``at`` (default: now)."""
        until = self.communication_disabled_until
        return until is not None and until > (at or now())


@dataclass(slots=True)
class Ban:
    user: User
    reason: str | None = None


@dataclass(slots=True)
class Attachment:
    id: int
    filename: str
    data: bytes
    content_type: str = "application/octet-stream"
    description: str | None = None

    @property
    def size(self) -> int:
        return len(self.data)


@dataclass(slots=True)
class Message:
    id: int
    channel_id: int
    author_id: int
    guild_id: int | None = None
    content: str = ""
    embeds: list[dict[str, Any]] = field(default_factory=list)
    components: list[dict[str, Any]] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)
    reference: dict[str, Any] | None = None
    flags: int = 0
    type: int = 0
    edited_at: str | None = None
    mention_ids: list[int] = field(default_factory=list)
    mention_role_ids: list[int] = field(default_factory=list)
    mention_everyone: bool = False
    tts: bool = False
    nonce: str | int | None = None
    #: Set for interaction responses and followups.
    interaction_id: int | None = None
    interaction_metadata: dict[str, Any] | None = None
    webhook_id: int | None = None
    #: Ephemeral messages are only visible to this user and never sent over the gateway.
    ephemeral_to: int | None = None
    deleted: bool = False

    @property
    def reference_id(self) -> int | None:
        ref = self.reference or {}
        return int(ref["message_id"]) if ref.get("message_id") else None


@dataclass(slots=True)
class Guild:
    id: int
    name: str
    owner_id: int
    roles: dict[int, Role] = field(default_factory=dict)
    channel_ids: list[int] = field(default_factory=list)
    #: A dict, or for generated guilds a :class:`~sandbox.member_table.MemberTable`.
    members: MutableMapping[int, Member] = field(default_factory=dict)
    bans: dict[int, Ban] = field(default_factory=dict)
    audit_log: list[dict[str, Any]] = field(default_factory=list)
    #: Guild application commands by (name, type).
    commands: dict[tuple[str, int], dict[str, Any]] = field(default_factory=dict)
    system_channel_id: int | None = None
    features: list[str] = field(default_factory=list)

    @property
    def everyone(self) -> Role:
        return self.roles[self.id]


def _parse_ref(ref: object) -> tuple[int | None, str]:
    """Split a reference into (id or None, bare lower-case name)."""
    if isinstance(ref, int):
        return ref, ""
    text = str(ref).strip()
    match = _MENTION.match(text)
    if match:
        return int(match.group(1)), ""
    if text.isdigit():
        return int(text), ""
    return None, text.lstrip("@#&").lower()


@dataclass
class World:
    """Everything the sandbox knows. One bot user and application per world."""

    bot: User
    application_id: int
    application_name: str = "GuildBot"
    users: dict[int, User] = field(default_factory=dict)
    #: A dict, or in a lazy world (:mod:`sandbox.lazy_world`) a mapping that builds on lookup.
    guilds: MutableMapping[int, Guild] = field(default_factory=dict)
    channels: MutableMapping[int, Channel] = field(default_factory=dict)
    messages: dict[int, Message] = field(default_factory=dict)
    #: user id -> DM channel id
    dm_channels: dict[int, int] = field(default_factory=dict)
    #: Global application commands by (name, type).
    commands: dict[tuple[str, int], dict[str, Any]] = field(default_factory=dict)
    ids: SnowflakeGenerator = field(default_factory=SnowflakeGenerator)

    def __post_init__(self) -> None:
        self.users.setdefault(self.bot.id, self.bot)

    # -- construction -------------------------------------------------------------------------
    def add_guild(self, guild: Guild, channels: list[Channel]) -> Guild:
        """Register a guild with its channels (members and their users must already be set)."""
        self.guilds[guild.id] = guild
        for channel in channels:
            channel.guild_id = guild.id
            self.channels[channel.id] = channel
            guild.channel_ids.append(channel.id)
        for user_id in guild.members:
            if user_id not in self.users:
                self.users[user_id] = guild.members[user_id].user
        return guild

    def dm_channel(self, user: User) -> Channel:
        """The bot's DM channel with ``user``, created on first use."""
        channel_id = self.dm_channels.get(user.id)
        if channel_id is None:
            channel = Channel(id=self.ids.next(), type=DM, recipient_ids=(user.id,))
            self.channels[channel.id] = channel
            self.dm_channels[user.id] = channel.id
            return channel
        return self.channels[channel_id]

    # -- lookups --------------------------------------------------------------------------------
    def guild(self, ref: object) -> Guild:
        """Find a guild by object, id or name."""
        if isinstance(ref, Guild):
            return ref
        ident, name = _parse_ref(ref)
        for guild in self.guilds.values() if ident is None else [self.guilds.get(ident)]:
            if guild is not None and (ident is not None or guild.name.lower() == name):
                return guild
        raise LookupError(f"no guild {ref!r}")

    def channel(self, guild: object | None, ref: object) -> Channel:
        """Find a channel by object, id, or name within ``guild``."""
        if isinstance(ref, Channel):
            return ref
        ident, name = _parse_ref(ref)
        if ident is not None and ident in self.channels:
            return self.channels[ident]
        if guild is not None and name:
            for channel_id in self.guild(guild).channel_ids:
                if self.channels[channel_id].name.lower() == name:
                    return self.channels[channel_id]
        raise LookupError(f"no channel {ref!r}")

    def member(self, guild: object, ref: object) -> Member:
        """Find a member of ``guild`` by object, id, username, global name or nick."""
        found = self.guild(guild)
        if isinstance(ref, Member):
            return found.members[ref.id]
        if isinstance(ref, User):
            ref = ref.id
        ident, name = _parse_ref(ref)
        if ident is not None and ident in found.members:
            return found.members[ident]
        for member in found.members.values():
            names = {member.user.username, member.user.global_name, member.nick}
            if name and name in {n.lower() for n in names if n}:
                return member
        raise LookupError(f"no member {ref!r} in {found.name}")

    def user(self, ref: object) -> User:
        """Find a user by object, id or username."""
        if isinstance(ref, User):
            return ref
        if isinstance(ref, Member):
            return ref.user
        ident, name = _parse_ref(ref)
        if ident is not None and ident in self.users:
            return self.users[ident]
        for user in self.users.values():
            if name and name in {user.username.lower(), (user.global_name or "").lower()}:
                return user
        raise LookupError(f"no user {ref!r}")

    def role(self, guild: object, ref: object) -> Role:
        """Find a role of ``guild`` by object, id or name."""
        found = self.guild(guild)
        if isinstance(ref, Role):
            return ref
        ident, name = _parse_ref(ref)
        if ident is not None and ident in found.roles:
            return found.roles[ident]
        for role in found.roles.values():
            if name and role.name.lower().lstrip("@") == name:
                return role
        raise LookupError(f"no role {ref!r} in {found.name}")

    def text_channels(self, guild: object) -> list[Channel]:
        """The text channels of ``guild`` in position order."""
        channels = [self.channels[c] for c in self.guild(guild).channel_ids]
        return sorted((c for c in channels if c.type == TEXT), key=lambda c: c.position)

    def channel_messages(self, channel: Channel) -> list[Message]:
        """Non-deleted, non-ephemeral messages of a channel, oldest first."""
        found = (self.messages[m] for m in channel.message_ids)
        return [m for m in found if not m.deleted]
