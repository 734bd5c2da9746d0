"""A small router that knows each route's template (for recording and rate-limit matching)."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sandbox.core import Core
from sandbox.errors import SandboxError, not_found
from sandbox.world import Channel, Guild, Member, Message, User, World


@dataclass
class Upload:
    """One ``files[n]`` part of a multipart request."""

    field: str
    filename: str
    content_type: str
    data: bytes

    @property
    def index(self) -> int:
        match = re.search(r"\[(\d+)\]", self.field)
        return int(match.group(1)) if match else 0


@dataclass
class Result:
    """A handler's answer: ``body`` None means 204 No Content."""

    body: Any = None
    status: int = 200


@dataclass
class RestRequest:
    core: Core
    method: str
    path: str
    route: str
    params: dict[str, str]
    query: Mapping[str, str]
    json: Any = None
    files: list[Upload] = field(default_factory=list)
    reason: str | None = None

    @property
    def world(self) -> World:
        return self.core.world

    @property
    def body(self) -> dict[str, Any]:
        return self.json if isinstance(self.json, dict) else {}

    def _id(self, name: str, kind: str) -> int:
        raw = self.params[name]
        if raw == "@me" and kind in ("user", "member"):
            return self.world.bot.id
        if not raw.isdigit():
            raise not_found(kind)
        return int(raw)

    def guild(self) -> Guild:
        """The ``{guild_id}`` guild, which the bot must be in."""
        found = self.world.guilds.get(self._id("guild_id", "guild"))
        if found is None or self.world.bot.id not in found.members:
            raise not_found("guild")
        return found

    def bot_member(self, guild: Guild) -> Member:
        return guild.members[self.world.bot.id]

    def member(self, guild: Guild) -> Member:
        """The ``{user_id}`` member of ``guild``."""
        found = guild.members.get(self._id("user_id", "member"))
        if found is None:
            raise not_found("member")
        return found

    def user(self, raw: object = None) -> User:
        """The ``{user_id}`` user (or the user with id ``raw``)."""
        user_id = self._id("user_id", "user") if raw is None else raw
        found = self.world.users.get(int(str(user_id))) if str(user_id).isdigit() else None
        if found is None:
            raise not_found("user")
        return found

    def channel(self) -> Channel:
        """The ``{channel_id}`` channel (guild channels only of guilds the bot is in)."""
        found = self.world.channels.get(self._id("channel_id", "channel"))
        if found is None:
            raise not_found("channel")
        if (
            found.guild_id is not None
            and self.world.bot.id not in self.world.guilds[found.guild_id].members
        ):
            raise SandboxError(403, 50001, "Missing Access")
        return found

    def message(self, channel: Channel) -> Message:
        """The ``{message_id}`` message of ``channel``."""
        found = self.world.messages.get(self._id("message_id", "message"))
        if found is None or found.channel_id != channel.id or found.deleted:
            raise not_found("message")
        return found


Handler = Callable[[RestRequest], Awaitable[Any]]


@dataclass
class Route:
    method: str
    template: str
    pattern: re.Pattern[str]
    handler: Handler


class RouteTable:
    """Routes declared with ``@table.route("GET", "/guilds/{guild_id}")``."""

    def __init__(self) -> None:
        self.routes: list[Route] = []

    def route(self, method: str, template: str) -> Callable[[Handler], Handler]:
        regex = re.sub(r"\\{(\w+)\\}", r"(?P<\1>[^/]+)", re.escape(template))
        pattern = re.compile(f"^{regex}$")

        def register(handler: Handler) -> Handler:
            self.routes.append(Route(method, template, pattern, handler))
            return handler

        return register

    def include(self, *tables: RouteTable) -> None:
        for table in tables:
            self.routes.extend(table.routes)

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        """The route for ``method path`` and its parameters (the most literal route wins)."""
        best: tuple[Route, dict[str, str]] | None = None
        for route in self.routes:
            found = route.pattern.match(path) if route.method == method else None
            if found and (best is None or len(found.groupdict()) < len(best[1])):
                best = route, found.groupdict()
        return best
