"""Driver: act as Discord users against a running sandbox and wait for the bot's answers.

Every wait is event-driven: it re-checks its condition whenever sandbox state changes and gives
up after ``timeout`` seconds with :class:`~sandbox.core.SandboxTimeout`.

Reply rule for messages: the reply to a message is the first bot message in the same channel,
created after it, that either references it (``message_reference``) or references nothing and
is not an interaction response. Bot messages replying to other messages are skipped.
"""

from __future__ import annotations

import bisect
import datetime as dt
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from sandbox import actions, payloads
from sandbox.builders import grow_world
from sandbox.errors import SandboxError
from sandbox.interactions import InteractionRecord, build_command, build_component
from sandbox.permissions import P, require
from sandbox.rate_ledger import RateStats
from sandbox.records import (
    DuplicateRecord,
    IdentifyRecord,
    MessageView,
    RestCall,
    SessionInfo,
)
from sandbox.switches import Switches
from sandbox.validation import MAX_CONTENT
from sandbox.world import Channel, Guild, Member, Message, Overwrite, User, World, now

if TYPE_CHECKING:
    from sandbox.server import SandboxServer

T = TypeVar("T")
DEFAULT_TIMEOUT = 5.0
Ref = Any  # an object, an id, or a name


class InteractionHandle:
    """An interaction the driver created; wait for the bot's response and followups."""

    def __init__(self, driver: Driver, record: InteractionRecord) -> None:
        self._driver = driver
        self.record = record

    @property
    def id(self) -> int:
        """The interaction's id."""
        return self.record.id

    @property
    def history(self) -> list[MessageView]:
        """Every reply, edit and followup so far."""
        return list(self.record.history)

    async def wait_response(self, timeout: float = DEFAULT_TIMEOUT) -> MessageView:  # noqa: ASYNC109
        """The initial reply (a deferred reply once it is filled in)."""
        return await self._driver.wait_until(
            lambda: self.record.response, timeout, f"response to interaction {self.record.name}"
        )

    async def wait_followup(self, index: int = 0, timeout: float = DEFAULT_TIMEOUT) -> MessageView:  # noqa: ASYNC109
        """The ``index``-th followup message."""
        followups = self.record.followups
        return await self._driver.wait_until(
            lambda: followups[index] if len(followups) > index else None,
            timeout,
            f"followup #{index} to interaction {self.record.name}",
        )


class Driver(Switches):
    """In-process control of a :class:`SandboxServer`, with its gateway and REST switches."""

    def __init__(self, server: SandboxServer) -> None:
        self.server = server
        self.core = server.core
        self.gateway, self.rest = server.gateway, server.rest
        self._dm_cursor: dict[int, int] = {}

    @property
    def world(self) -> World:
        return self.core.world

    async def wait_until(self, probe: Callable[[], T | None], timeout: float, what: str) -> T:  # noqa: ASYNC109
        """Wait until ``probe()`` returns something other than None and return it."""
        return await self.core.feed.wait_for(probe, timeout, what)

    # -- lookups ---------------------------------------------------------------------------
    def guild(self, ref: Ref) -> Guild:
        return self.world.guild(ref)

    def channel(self, guild: Ref, ref: Ref) -> Channel:
        return self.world.channel(guild, ref)

    def member(self, guild: Ref, ref: Ref) -> Member:
        return self.world.member(guild, ref)

    def user(self, ref: Ref) -> User:
        return self.world.user(ref)

    def view(self, msg: Message, kind: str = "message") -> MessageView:
        """Snapshot a world message."""
        return MessageView.of(self.world, msg, self.core.base_url, kind)

    def _message(self, ref: Ref) -> Message:
        msg_id = ref if isinstance(ref, int) else int(ref.id if hasattr(ref, "id") else ref)
        return self.world.messages[msg_id]

    # -- messages --------------------------------------------------------------------------
    async def send_message(
        self,
        guild: Ref,
        channel: Ref,
        author: Ref,
        content: str,
        *,
        reply_to: Ref | None = None,
        sent_ago: float = 0.0,
    ) -> MessageView:
        """Post ``content`` as ``author`` (MESSAGE_CREATE), subject to their permissions.

        ``sent_ago`` > 0 delivers it late: its id and timestamp say it was sent that long ago.
        """
        found = self.guild(guild)
        where = self.channel(found, channel)
        who = self.member(found, author)
        require(found, who, P.VIEW_CHANNEL | P.SEND_MESSAGES, where)
        if not content or len(content) > MAX_CONTENT:
            raise SandboxError(400, 50035, f"content must be 1..{MAX_CONTENT} characters")
        new = actions.NewMessage(content=content, sent_ago=sent_ago)
        if reply_to is not None:
            new.reference = {"message_id": str(self._message(reply_to).id)}
        return self.view(actions.post_message(self.core, where, who.user, new))

    async def send_dm(self, user: Ref, content: str) -> MessageView:
        """``user`` writes to the bot in DMs (routed to shard 0)."""
        author = self.user(user)
        channel = self.world.dm_channel(author)
        return self.view(
            actions.post_message(self.core, channel, author, actions.NewMessage(content=content))
        )

    def _reply_to(self, trigger: Message) -> MessageView | None:
        channel = self.world.channels[trigger.channel_id]
        bot_id = self.world.bot.id
        start = bisect.bisect_right(channel.message_ids, trigger.id)
        for msg_id in channel.message_ids[start:]:
            msg = self.world.messages[msg_id]
            if msg.author_id != bot_id or msg.interaction_id is not None or msg.deleted:
                continue
            if msg.reference_id in (None, trigger.id):
                return self.view(msg)
        return None

    async def wait_reply(self, to: Ref, timeout: float = DEFAULT_TIMEOUT) -> MessageView:  # noqa: ASYNC109
        """The bot's reply to a message (see the module rule) or to an interaction."""
        if isinstance(to, InteractionHandle):
            return await to.wait_response(timeout)
        trigger = self._message(to)
        return await self.wait_until(
            lambda: self._reply_to(trigger), timeout, f"a reply to message {trigger.id}"
        )

    def bot_messages(self, guild: Ref, channel: Ref) -> list[MessageView]:
        """Every bot message in a channel, oldest first."""
        where = self.channel(guild, channel)
        return [
            self.view(m)
            for m in self.world.channel_messages(where)
            if m.author_id == self.world.bot.id
        ]

    def attachment_bytes(self, attachment: Ref) -> bytes:
        """The stored bytes of an uploaded file (an AttachmentView or attachment id)."""
        key = attachment.id if hasattr(attachment, "id") else attachment
        return self.core.uploads[int(key)].data

    # -- interactions ----------------------------------------------------------------------
    def _dispatch_interaction(self, record: InteractionRecord) -> InteractionHandle:
        self.core.interactions.add(record)
        self.core.emit("INTERACTION_CREATE", record.payload, record.guild_id)
        return InteractionHandle(self, record)

    async def slash(
        self,
        guild: Ref | None,
        channel: Ref,
        member: Ref,
        name: str,
        /,
        *,
        sub: str | None = None,
        sent_ago: float = 0.0,
        **options: Any,
    ) -> InteractionHandle:
        """Run ``/name [sub] option=value...`` as ``member``; the bot must have synced it.

        ``guild=None`` runs it in ``member``'s DM with the bot. ``sub`` is "sub" or "group sub".
        User, channel and role options take objects, ids or names. ``sent_ago`` > 0 delivers
        it late: made that many seconds ago (its id, and its 3 s response window).
        """
        if guild is None:
            actor = self.user(member)
            where = self.world.dm_channel(actor)
            found = None
        else:
            found = self.guild(guild)
            actor = self.member(found, member).user
            where = self.channel(found, channel)
        record = build_command(self.core, found, where, actor, name, sub, options, sent_ago)
        return self._dispatch_interaction(record)

    async def click(
        self, message: Ref, custom_id: str, member: Ref, *, values: list[str] | None = None
    ) -> InteractionHandle:
        """Press a button (or choose ``values`` in a select) on a bot message."""
        msg = self._message(message)
        actor = self.member(msg.guild_id, member).user if msg.guild_id else self.user(member)
        return self._dispatch_interaction(build_component(self.core, msg, custom_id, actor, values))

    def redeliver(self, request: InteractionHandle | MessageView) -> None:
        """Deliver an interaction (or a message) to the bot again, as Discord does when a
        session's missed events are replayed after a RESUME or two sessions hold one shard."""
        if isinstance(request, InteractionHandle):
            record = request.record
            self.core.emit("INTERACTION_CREATE", record.payload, record.guild_id)
            return
        msg = self._message(request)
        self.core.emit(
            "MESSAGE_CREATE", payloads.message(self.world, msg, self.core.base_url), msg.guild_id
        )

    def interaction(self, interaction_id: int) -> InteractionHandle:
        """A handle on an interaction created earlier."""
        return InteractionHandle(self, self.core.interactions.records[int(interaction_id)])

    # -- DMs ------------------------------------------------------------------------------
    def dms(self, user: Ref) -> list[MessageView]:
        """Messages the bot sent to ``user`` in DMs, oldest first."""
        found = self.user(user)
        channel_id = self.world.dm_channels.get(found.id)
        if channel_id is None:
            return []
        messages = self.world.channel_messages(self.world.channels[channel_id])
        return [self.view(m) for m in messages if m.author_id == self.world.bot.id]

    async def wait_dm(
        self,
        user: Ref,
        timeout: float = DEFAULT_TIMEOUT,  # noqa: ASYNC109
        *,
        after: Ref | None = None,
    ) -> MessageView:
        """The next bot DM to ``user`` not returned before (or the first one after ``after``)."""
        found = self.user(user)
        floor = self._message(after).id if after is not None else self._dm_cursor.get(found.id, 0)

        def probe() -> MessageView | None:
            return next((m for m in self.dms(found) if m.id > floor), None)

        view = await self.wait_until(probe, timeout, f"a DM to {found.username}")
        self._dm_cursor[found.id] = max(view.id, self._dm_cursor.get(found.id, 0))
        return view

    def set_dms_closed(self, user: Ref, closed: bool = True) -> None:
        """Switch ``user``'s DMs closed: the bot then gets 403 50007 when messaging them."""
        self.user(user).dms_closed = closed

    # -- a growing bot ----------------------------------------------------------------------
    def add_guilds(self, count: int, name_prefix: str = "grown") -> list[int]:
        """The bot joins ``count`` new small guilds while it runs: each gets its GUILD_CREATE
        on every session (of every shard count, connected or resumable) holding it.
        Returns their ids."""
        made = grow_world(self.world, count, name_prefix)
        for guild in made:
            self.gateway.guild_joined(guild.id)
        self.core.changed()
        return [g.id for g in made]

    def set_max_guilds_per_shard(self, n: int) -> None:
        """From now on an IDENTIFY for a shard of more than ``n`` guilds is closed with 4011."""
        self.core.settings.max_guilds_per_shard = n

    # -- members and human moderation -------------------------------------------------------
    async def add_member(self, guild: Ref, user: Ref, roles: list[Ref] | None = None) -> Member:
        """A user joins (a new user is created for an unknown name): GUILD_MEMBER_ADD."""
        found = self.guild(guild)
        try:
            who = self.user(user)
        except LookupError:
            who = User(id=self.world.ids.next(), username=str(user))
        role_ids = [self.world.role(found, r).id for r in roles or []]
        return actions.join(self.core, found, who, role_ids)

    async def remove_member(self, guild: Ref, member: Ref) -> None:
        """A member leaves: GUILD_MEMBER_REMOVE."""
        found = self.guild(guild)
        actions.leave(self.core, found, self.member(found, member))

    def _staff(self, guild: Ref, moderator: Ref) -> tuple[Guild, Member]:
        """The guild and the member acting in it."""
        found = self.guild(guild)
        return found, self.member(found, moderator)

    async def kick(
        self, guild: Ref, moderator: Ref, target: Ref, reason: str | None = None
    ) -> None:
        """A human moderator kicks: GUILD_MEMBER_REMOVE and an audit entry (20)."""
        found, staff = self._staff(guild, moderator)
        actions.kick(self.core, found, staff, self.member(found, target), reason)

    async def ban(
        self,
        guild: Ref,
        moderator: Ref,
        target: Ref,
        reason: str | None = None,
        delete_message_seconds: int = 0,
    ) -> None:
        """A human moderator bans: GUILD_BAN_ADD, GUILD_MEMBER_REMOVE, audit entry (22)."""
        found, staff = self._staff(guild, moderator)
        actions.ban(self.core, found, staff, self.user(target), reason, delete_message_seconds)

    async def unban(
        self, guild: Ref, moderator: Ref, target: Ref, reason: str | None = None
    ) -> None:
        """A human moderator unbans: GUILD_BAN_REMOVE and an audit entry (23)."""
        found, staff = self._staff(guild, moderator)
        actions.unban(self.core, found, staff, self.user(target).id, reason)

    async def timeout(
        self,
        guild: Ref,
        moderator: Ref,
        target: Ref,
        duration: dt.timedelta | float | None,
        reason: str | None = None,
    ) -> None:
        """A human moderator times out (``None`` lifts it): GUILD_MEMBER_UPDATE, audit entry
        (24) with a ``communication_disabled_until`` change."""
        if duration is not None and not isinstance(duration, dt.timedelta):
            duration = dt.timedelta(seconds=duration)
        until = now() + duration if duration is not None else None
        self._update_member(guild, moderator, target, timeout_until=until, reason=reason)

    async def set_roles(self, guild: Ref, moderator: Ref, target: Ref, roles: list[Ref]) -> None:
        """A human moderator sets a member's roles: GUILD_MEMBER_UPDATE, audit entry (25)."""
        role_ids = [self.world.role(guild, r).id for r in roles]
        self._update_member(guild, moderator, target, roles=role_ids)

    def set_overwrites(self, guild: Ref, channel: Ref, overwrites: list[Overwrite]) -> None:
        """An admin replaces a channel's permission overwrites: CHANNEL_UPDATE."""
        found = self.guild(guild)
        where = self.channel(found, channel)
        where.overwrites = list(overwrites)
        self.core.emit("CHANNEL_UPDATE", payloads.channel(where), found.id)

    def _update_member(self, guild: Ref, moderator: Ref, target: Ref, **changes: Any) -> None:
        found, staff = self._staff(guild, moderator)
        actions.update_member(self.core, found, staff, self.member(found, target), **changes)

    # -- records ---------------------------------------------------------------------------
    def rest_calls(
        self,
        method: str | None = None,
        route: str | None = None,
        path: str | None = None,
        status: int | None = None,
    ) -> list[RestCall]:
        """Recorded REST calls, filtered by method, route template, path prefix and status."""
        return [
            c
            for c in self.server.rest.calls
            if (method is None or c.method == method.upper())
            and (route is None or c.route == route)
            and (path is None or c.path.startswith(path))
            and (status is None or c.status == status)
        ]

    def rate_stats(self, since: float | None = None) -> RateStats:
        """What the REST limits did per second from ``since`` (all kept seconds when None),
        the busiest second of admitted requests, invalid counts per address and bans."""
        return self.server.rest.limits.stats(since)

    def reset_rate_stats(self) -> None:
        """Forget the per-second counts (invalid counts and bans stay)."""
        self.server.rest.limits.ledger.reset()

    def sessions(self) -> list[SessionInfo]:
        """Gateway sessions that are connected or still resumable."""
        return [s.info() for s in self.server.gateway.sessions.values()]

    def identifies(self) -> list[IdentifyRecord]:
        """Every IDENTIFY: time, shard, session and whether it was accepted."""
        return list(self.server.gateway.identifies)

    def shard_holders(self) -> dict[int, list[str]]:
        """shard id -> connected session ids."""
        return self.server.gateway.shard_holders()

    def shard_holders_by_count(self) -> dict[int, dict[int, list[str]]]:
        """shard count -> shard id -> connected session ids."""
        return self.server.gateway.shard_holders_by_count()

    def duplicate_shard_holders(self) -> list[DuplicateRecord]:
        """Every moment two live sessions held the same shard."""
        return list(self.server.gateway.duplicates)

    async def wait_for_shards(
        self,
        shard_ids: list[int],
        timeout: float = DEFAULT_TIMEOUT,  # noqa: ASYNC109
    ) -> dict[int, list[str]]:
        """Wait until each shard in ``shard_ids`` has a connected session."""

        def probe() -> dict[int, list[str]] | None:
            holders = self.shard_holders()
            return holders if all(s in holders for s in shard_ids) else None

        return await self.wait_until(probe, timeout, f"sessions for shards {shard_ids}")
