"""Interactions: building INTERACTION_CREATE payloads like Discord and tracking their replies."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from sandbox import payloads
from sandbox.core import Core
from sandbox.errors import SandboxError, not_found
from sandbox.permissions import channel_permissions
from sandbox.records import MessageView
from sandbox.world import Attachment, Channel, Guild, Member, Message, Role, User

APPLICATION_COMMAND, MESSAGE_COMPONENT = 2, 3
SUB_COMMAND, SUB_COMMAND_GROUP = 1, 2
STRING, INTEGER, BOOLEAN, USER, CHANNEL, ROLE, MENTIONABLE, NUMBER, ATTACHMENT = (
    3,
    4,
    5,
    6,
    7,
    8,
    9,
    10,
    11,
)
#: How long followups and edits of the original response stay possible (Discord: 15 min).
TOKEN_LIFETIME = 15 * 60
_TRUE = {"true", "yes", "y", "1", "on"}
_FALSE = {"false", "no", "n", "0", "off"}


@dataclass
class InteractionRecord:
    """One interaction and everything the bot answered to it."""

    id: int
    token: str
    type: int
    guild_id: int | None
    channel_id: int
    user_id: int
    name: str
    payload: dict[str, Any]
    created: float = field(default_factory=time.monotonic)
    #: For component interactions: the message whose component was used.
    source_message_id: int | None = None
    response_type: int | None = None
    #: When the first callback (the acknowledgement) arrived, on the same clock as `created`.
    acknowledged: float | None = None
    original_id: int | None = None
    #: The visible initial reply: a type 4/7/9 callback or a filled-in deferred response.
    response: MessageView | None = None
    followups: list[MessageView] = field(default_factory=list)
    #: Every reply, edit and followup in arrival order.
    history: list[MessageView] = field(default_factory=list)


class InteractionStore:
    """Interactions by id, with token checks and Discord's deadlines."""

    def __init__(self, core: Core) -> None:
        self.core = core
        self.records: dict[int, InteractionRecord] = {}

    def add(self, record: InteractionRecord) -> InteractionRecord:
        self.records[record.id] = record
        return record

    def get(self, interaction_id: int | str, token: str, *, callback: bool) -> InteractionRecord:
        """Find an interaction; 404 10062 for unknown or expired (callbacks: after 3 s)."""
        record = self.records.get(int(interaction_id)) if str(interaction_id).isdigit() else None
        if record is None or record.token != token:
            raise not_found("interaction")
        age = time.monotonic() - record.created
        limit = self.core.settings.interaction_deadline if callback else TOKEN_LIFETIME
        if age > limit:
            raise not_found("interaction")
        return record

    def by_token(self, token: str) -> InteractionRecord:
        """Find an interaction by webhook token (followups); 404 10015 when unknown."""
        for record in reversed(self.records.values()):
            if record.token == token:
                if time.monotonic() - record.created > TOKEN_LIFETIME:
                    break
                return record
        raise not_found("webhook")

    def add_reply(
        self,
        record: InteractionRecord,
        view: MessageView,
        *,
        response: bool = False,
        followup: bool = False,
    ) -> None:
        """Attach a reply to the record and wake waiters."""
        record.history.append(view)
        if response and record.response is None:
            record.response = view
        if followup:
            record.followups.append(view)
        self.core.changed()


# -- payload building -----------------------------------------------------------------------


def find_command(core: Core, guild: Guild | None, name: str, kind: int = 1) -> dict[str, Any]:
    """The registered command ``name`` (guild commands first, then global)."""
    for commands in ([guild.commands] if guild else []) + [core.world.commands]:
        if (name, kind) in commands:
            return commands[(name, kind)]
    raise LookupError(f"no registered command {name!r} (has the bot synced its commands?)")


def _base(
    core: Core,
    kind: int,
    guild: Guild | None,
    channel: Channel,
    actor: User,
    member: Member | None,
    sent_ago: float = 0.0,
) -> dict[str, Any]:
    world = core.world
    data: dict[str, Any] = {
        "id": str(world.ids.backdated(sent_ago) if sent_ago else world.ids.next()),
        "application_id": str(world.application_id),
        "type": kind,
        "token": "sandbox-" + secrets.token_urlsafe(24),
        "version": 1,
        "channel_id": str(channel.id),
        "channel": payloads.channel(channel, world),
        "locale": "en-US",
        "entitlements": [],
        "entitlement_sku_ids": [],
        "attachment_size_limit": 10 * 1024 * 1024,
    }
    if guild is not None and member is not None:
        bot = guild.members[world.bot.id]
        data["guild_id"] = str(guild.id)
        data["guild"] = {"id": str(guild.id), "locale": "en-US", "features": guild.features}
        data["guild_locale"] = "en-US"
        data["member"] = payloads.member_with_permissions(world, guild, member, channel)
        data["app_permissions"] = str(channel_permissions(guild, channel, bot))
        data["authorizing_integration_owners"] = {"0": str(guild.id)}
        data["context"] = 0
    else:
        data["user"] = payloads.user(actor)
        data["app_permissions"] = "0"
        data["authorizing_integration_owners"] = {"0": "0"}
        data["context"] = 1
    return data


def _record(
    core: Core,
    payload: dict[str, Any],
    name: str,
    actor: User,
    source: Message | None = None,
    sent_ago: float = 0.0,
) -> InteractionRecord:
    return InteractionRecord(
        id=int(payload["id"]),
        token=payload["token"],
        type=payload["type"],
        guild_id=int(payload["guild_id"]) if "guild_id" in payload else None,
        channel_id=int(payload["channel_id"]),
        user_id=actor.id,
        name=name,
        payload=payload,
        source_message_id=source.id if source else None,
        created=time.monotonic() - sent_ago,
    )


def build_command(
    core: Core,
    guild: Guild | None,
    channel: Channel,
    actor: User,
    name: str,
    sub: str | None,
    options: dict[str, Any],
    sent_ago: float = 0.0,
) -> InteractionRecord:
    """An application command interaction (type 2) for a registered chat-input command.

    `sent_ago` > 0 makes it a late delivery: made that many seconds ago (its id, and the clock
    of its 3 s response window), as a replay after RESUME or a queue while the bot was away.
    """
    command = find_command(core, guild, name)
    member = guild.members.get(actor.id) if guild else None
    if guild is not None and member is None:
        raise LookupError(f"{actor.username} is not a member of {guild.name}")
    payload = _base(core, APPLICATION_COMMAND, guild, channel, actor, member, sent_ago)
    resolved: dict[str, dict[str, Any]] = {}
    converter = _OptionConverter(core, guild, channel, resolved)
    schema = command.get("options") or []
    path = sub.split() if sub else []
    nested = converter.convert(schema, options, path)
    data: dict[str, Any] = {"id": command["id"], "name": command["name"], "type": 1}
    if nested:
        data["options"] = nested
    if resolved:
        data["resolved"] = resolved
    if command.get("guild_id"):
        data["guild_id"] = command["guild_id"]
    payload["data"] = data
    return _record(core, payload, " ".join([name, *path]), actor, sent_ago=sent_ago)


def build_component(
    core: Core, message: Message, custom_id: str, actor: User, values: list[str] | None = None
) -> InteractionRecord:
    """A component interaction (type 3): a click on a button or a choice in a select."""
    component = _find_component(message.components, custom_id)
    if component is None:
        raise LookupError(f"message {message.id} has no component {custom_id!r}")
    if component.get("disabled"):
        raise LookupError(f"component {custom_id!r} is disabled")
    guild = core.world.guilds.get(message.guild_id or 0)
    channel = core.world.channels[message.channel_id]
    member = guild.members.get(actor.id) if guild else None
    payload = _base(core, MESSAGE_COMPONENT, guild, channel, actor, member)
    data: dict[str, Any] = {"custom_id": custom_id, "component_type": component["type"]}
    if values is not None:
        data["values"] = values
    payload["data"] = data
    payload["message"] = payloads.message(core.world, message, core.base_url)
    return _record(core, payload, custom_id, actor, source=message)


def _find_component(items: list[dict[str, Any]], custom_id: str) -> dict[str, Any] | None:
    for item in items:
        if item.get("custom_id") == custom_id:
            return item
        found = _find_component(item.get("components") or [], custom_id)
        if found is not None:
            return found
    return None


class _OptionConverter:
    """Turns Python values into typed interaction options, filling ``resolved``."""

    def __init__(
        self, core: Core, guild: Guild | None, channel: Channel, resolved: dict[str, dict[str, Any]]
    ) -> None:
        self.core, self.guild, self.channel, self.resolved = core, guild, channel, resolved

    def convert(
        self, schema: list[dict[str, Any]], values: dict[str, Any], path: list[str]
    ) -> list[dict[str, Any]]:
        subs = {o["name"]: o for o in schema if o["type"] in (SUB_COMMAND, SUB_COMMAND_GROUP)}
        if subs:
            if not path or path[0] not in subs:
                raise ValueError(f"choose a subcommand: {', '.join(subs)}")
            chosen = subs[path[0]]
            inner = self.convert(chosen.get("options") or [], values, path[1:])
            return [{"name": chosen["name"], "type": chosen["type"], "options": inner}]
        if path:
            raise ValueError(f"unexpected subcommand {' '.join(path)!r}")
        known = {o["name"]: o for o in schema}
        unknown = set(values) - set(known)
        if unknown:
            raise ValueError(f"unknown option(s) {sorted(unknown)}; options: {list(known)}")
        out = []
        for opt in schema:
            if opt["name"] not in values or values[opt["name"]] is None:
                if opt.get("required"):
                    raise ValueError(f"option {opt['name']!r} is required")
                continue
            value = self.value(opt, values[opt["name"]])
            out.append({"name": opt["name"], "type": opt["type"], "value": value})
        return out

    def value(self, opt: dict[str, Any], raw: Any) -> Any:
        kind = opt["type"]
        if kind in (STRING, INTEGER, NUMBER):
            return self._scalar(opt, raw)
        if kind == BOOLEAN:
            return _boolean(opt["name"], raw)
        if kind == USER:
            return self._user(raw)
        if kind == CHANNEL:
            return self._channel(raw)
        if kind == ROLE:
            return self._role(raw)
        if kind == MENTIONABLE:
            try:
                return self._user(raw)
            except LookupError:
                return self._role(raw)
        if kind == ATTACHMENT:
            return self._attachment(raw)
        raise ValueError(f"option type {kind} is not supported")

    def _scalar(self, opt: dict[str, Any], raw: Any) -> Any:
        kind, name = opt["type"], opt["name"]
        choices = opt.get("choices") or []
        for choice in choices:
            if str(raw).lower() in (str(choice["value"]).lower(), str(choice["name"]).lower()):
                return choice["value"]
        if choices:
            raise ValueError(f"{name}: choose one of {[c['name'] for c in choices]}")
        try:
            value: Any = {STRING: str, INTEGER: int, NUMBER: float}[kind](raw)
        except ValueError:
            raise ValueError(f"{name}: {raw!r} is not a valid {_TYPE_NAMES[kind]}") from None
        if isinstance(raw, bool) or (kind == INTEGER and isinstance(raw, float)):
            raise ValueError(f"{name}: {raw!r} is not a valid {_TYPE_NAMES[kind]}")
        low, high = opt.get("min_value"), opt.get("max_value")
        if kind == STRING:
            low, high, size = opt.get("min_length"), opt.get("max_length"), len(value)
        else:
            size = value
        if (low is not None and size < low) or (high is not None and size > high):
            raise ValueError(f"{name}: {raw!r} is outside {low}..{high}")
        return value

    def _user(self, raw: Any) -> str:
        world = self.core.world
        if self.guild is not None:
            try:
                member = world.member(self.guild, raw)
            except LookupError:
                member = None
            if member is not None:
                data = payloads.member_with_permissions(world, self.guild, member, self.channel)
                data.pop("user")
                self.resolved.setdefault("members", {})[str(member.id)] = data
                self.resolved.setdefault("users", {})[str(member.id)] = payloads.user(member.user)
                return str(member.id)
        user = world.user(raw)
        self.resolved.setdefault("users", {})[str(user.id)] = payloads.user(user)
        return str(user.id)

    def _channel(self, raw: Any) -> str:
        found = self.core.world.channel(self.guild, raw)
        data = payloads.channel(found, self.core.world)
        if self.guild is not None:
            bot = self.guild.members[self.core.world.bot.id]
            data["permissions"] = str(channel_permissions(self.guild, found, bot))
        self.resolved.setdefault("channels", {})[str(found.id)] = data
        return str(found.id)

    def _role(self, raw: Any) -> str:
        if self.guild is None:
            raise LookupError("roles need a guild")
        role: Role = self.core.world.role(self.guild, raw)
        self.resolved.setdefault("roles", {})[str(role.id)] = payloads.role(role)
        return str(role.id)

    def _attachment(self, raw: Any) -> str:
        filename, data = raw if isinstance(raw, tuple) else ("file.bin", bytes(raw))
        item = Attachment(id=self.core.world.ids.next(), filename=filename, data=data)
        self.core.uploads[item.id] = item
        info = payloads.attachment(item, self.core.base_url, self.channel.id)
        self.resolved.setdefault("attachments", {})[str(item.id)] = info
        return str(item.id)


_TYPE_NAMES = {STRING: "string", INTEGER: "integer", NUMBER: "number"}


def _boolean(name: str, raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).lower()
    if text in _TRUE or text in _FALSE:
        return text in _TRUE
    raise ValueError(f"{name}: {raw!r} is not true or false")


def require_guild_member(guild: Guild, user_id: int) -> Member:
    """The member ``user_id`` of ``guild`` or 404 10007."""
    member = guild.members.get(user_id)
    if member is None:
        raise not_found("member")
    return member


def already_acknowledged() -> SandboxError:
    """400 40060, Discord's answer to a second interaction callback."""
    return SandboxError(400, 40060, "Interaction has already been acknowledged.")
