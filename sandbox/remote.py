"""RemoteDriver: the Driver API over the /_sandbox/ control API, for other processes.

Server errors map back to the driver's exceptions: SandboxTimeout, SandboxError (Discord-shaped),
LookupError (unknown guild, member, ...) and ValueError (bad options).
"""

from __future__ import annotations

from types import TracebackType
from typing import Any, Self

import aiohttp

from sandbox.core import SandboxTimeout
from sandbox.driver import DEFAULT_TIMEOUT
from sandbox.errors import SandboxError
from sandbox.rate_ledger import RateStats
from sandbox.records import (
    AttachmentView,
    DuplicateRecord,
    IdentifyRecord,
    MessageView,
    RestCall,
    SessionInfo,
)

PREFIX = "/_sandbox"
Body = dict[str, Any]


def _ref(value: Any) -> Any:
    return getattr(value, "id", value)


class RemoteInteraction:
    """An interaction created through :class:`RemoteDriver`."""

    def __init__(self, driver: RemoteDriver, interaction_id: int) -> None:
        self._driver = driver
        self.id = interaction_id

    async def wait_response(self, timeout: float = DEFAULT_TIMEOUT) -> MessageView:  # noqa: ASYNC109
        data = await self._driver.call(
            "POST", f"/interactions/{self.id}/response", {"timeout": timeout}, wait=timeout
        )
        return MessageView.from_dict(data)

    async def wait_followup(self, index: int = 0, timeout: float = DEFAULT_TIMEOUT) -> MessageView:  # noqa: ASYNC109
        body = {"index": index, "timeout": timeout}
        data = await self._driver.call(
            "POST", f"/interactions/{self.id}/followup", body, wait=timeout
        )
        return MessageView.from_dict(data)

    async def history(self) -> list[MessageView]:
        data = await self._driver.call("GET", f"/interactions/{self.id}")
        return [MessageView.from_dict(v) for v in data["history"]]


class RemoteDriver:
    """The :class:`~sandbox.driver.Driver` API over HTTP, for other processes.

    Use as ``async with RemoteDriver(url) as d:``. Same method names and results as Driver;
    references must be ids or names (objects with an ``id`` are sent as their id).
    """

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def call(
        self,
        method: str,
        path: str,
        body: Body | None = None,
        *,
        params: dict[str, str] | None = None,
        wait: float = 0.0,
    ) -> Any:
        """One control API call; maps error answers back to the driver's exceptions."""
        if self._session is None:
            self._session = aiohttp.ClientSession()
        timeout = aiohttp.ClientTimeout(total=wait + 30)
        async with self._session.request(
            method, self.url + PREFIX + path, json=body, params=params, timeout=timeout
        ) as resp:
            data = await resp.json()
        if resp.status < 400:
            return data
        if data.get("error") == "timeout":
            raise SandboxTimeout(data["message"])
        if data.get("error") == "discord":
            raise SandboxError(data["status"], data["code"], data["message"], data.get("errors"))
        raise (LookupError if data.get("error") == "lookup" else ValueError)(data.get("message"))

    async def info(self) -> dict[str, Any]:
        return await self.call("GET", "/info")

    async def guilds(self, shard_count: int = 1) -> list[dict[str, Any]]:
        return await self.call("GET", "/guilds", params={"shard_count": str(shard_count)})

    async def guild(self, ref: Any) -> dict[str, Any]:
        return await self.call("GET", f"/guilds/{_ref(ref)}")

    async def add_guilds(self, count: int, name_prefix: str = "grown") -> list[int]:
        """Like :meth:`Driver.add_guilds`: the bot joins ``count`` new guilds; their ids."""
        body = {"count": count, "prefix": name_prefix}
        return (await self.call("POST", "/guilds/add", body))["guild_ids"]

    async def set_max_guilds_per_shard(self, n: int) -> None:
        """Like :meth:`Driver.set_max_guilds_per_shard`."""
        await self.call("POST", "/max_guilds_per_shard", {"n": n})

    async def send_message(
        self,
        guild: Any,
        channel: Any,
        author: Any,
        content: str,
        *,
        reply_to: Any = None,
        sent_ago: float = 0.0,
    ) -> MessageView:
        body = {
            "guild": _ref(guild),
            "channel": _ref(channel),
            "author": _ref(author),
            "content": content,
            "reply_to": _ref(reply_to),
            "sent_ago": sent_ago,
        }
        return MessageView.from_dict(await self.call("POST", "/messages", body))

    async def bot_messages(self, guild: Any, channel: Any) -> list[MessageView]:
        query = {"guild": str(_ref(guild)), "channel": str(_ref(channel))}
        data = await self.call("GET", "/bot_messages", params=query)
        return [MessageView.from_dict(v) for v in data]

    async def send_dm(self, user: Any, content: str) -> MessageView:
        body = {"user": _ref(user), "content": content}
        return MessageView.from_dict(await self.call("POST", "/dm", body))

    async def wait_reply(self, to: Any, timeout: float = DEFAULT_TIMEOUT) -> MessageView:  # noqa: ASYNC109
        if isinstance(to, RemoteInteraction):
            return await to.wait_response(timeout)
        body = {"to": _ref(to), "timeout": timeout}
        return MessageView.from_dict(await self.call("POST", "/wait_reply", body, wait=timeout))

    async def slash(
        self,
        guild: Any,
        channel: Any,
        member: Any,
        name: str,
        /,
        *,
        sub: str | None = None,
        sent_ago: float = 0.0,
        **options: Any,
    ) -> RemoteInteraction:
        body = {
            "guild": _ref(guild),
            "channel": _ref(channel),
            "member": _ref(member),
            "name": name,
            "sub": sub,
            "sent_ago": sent_ago,
            "options": {k: _ref(v) for k, v in options.items()},
        }
        return RemoteInteraction(self, (await self.call("POST", "/slash", body))["id"])

    async def click(
        self, message: Any, custom_id: str, member: Any, *, values: list[str] | None = None
    ) -> RemoteInteraction:
        body = {
            "message": _ref(message),
            "custom_id": custom_id,
            "member": _ref(member),
            "values": values,
        }
        return RemoteInteraction(self, (await self.call("POST", "/click", body))["id"])

    async def dms(self, user: Any) -> list[MessageView]:
        return [MessageView.from_dict(v) for v in await self.call("GET", f"/dms/{_ref(user)}")]

    async def wait_dm(
        self,
        user: Any,
        timeout: float = DEFAULT_TIMEOUT,  # noqa: ASYNC109
        *,
        after: Any = None,
    ) -> MessageView:
        body = {"user": _ref(user), "timeout": timeout, "after": _ref(after)}
        return MessageView.from_dict(await self.call("POST", "/wait_dm", body, wait=timeout))

    async def attachment_bytes(self, attachment: AttachmentView) -> bytes:
        """Download an attachment the bot uploaded."""
        if self._session is None:
            self._session = aiohttp.ClientSession()
        async with self._session.get(attachment.url) as resp:
            resp.raise_for_status()
            return await resp.read()

    async def set_dms_closed(self, user: Any, closed: bool = True) -> None:
        await self.call("POST", "/dms_closed", {"user": _ref(user), "closed": closed})

    async def add_member(self, guild: Any, user: Any, roles: list[Any] | None = None) -> Any:
        return await self.call(
            "POST", "/members/add", {"guild": _ref(guild), "user": _ref(user), "roles": roles}
        )

    async def remove_member(self, guild: Any, member: Any) -> None:
        await self.call("POST", "/members/remove", {"guild": _ref(guild), "member": _ref(member)})

    async def moderate(
        self, action: str, guild: Any, moderator: Any, target: Any, **extra: Any
    ) -> None:
        """``action`` is ban, unban, kick or timeout (``duration`` seconds, None lifts it)."""
        body = {"guild": _ref(guild), "moderator": _ref(moderator), "target": _ref(target), **extra}
        await self.call("POST", f"/moderation/{action}", body)

    async def ban(
        self,
        guild: Any,
        moderator: Any,
        target: Any,
        reason: str | None = None,
        delete_message_seconds: int = 0,
    ) -> None:
        await self.moderate(
            "ban",
            guild,
            moderator,
            target,
            reason=reason,
            delete_message_seconds=delete_message_seconds,
        )

    async def unban(
        self, guild: Any, moderator: Any, target: Any, reason: str | None = None
    ) -> None:
        await self.moderate("unban", guild, moderator, target, reason=reason)

    async def kick(
        self, guild: Any, moderator: Any, target: Any, reason: str | None = None
    ) -> None:
        await self.moderate("kick", guild, moderator, target, reason=reason)

    async def timeout(
        self,
        guild: Any,
        moderator: Any,
        target: Any,
        duration: float | None,
        reason: str | None = None,
    ) -> None:
        """Time ``target`` out for ``duration`` seconds (None lifts it)."""
        await self.moderate("timeout", guild, moderator, target, duration=duration, reason=reason)

    async def rest_calls(
        self,
        method: str | None = None,
        route: str | None = None,
        path: str | None = None,
        status: int | None = None,
    ) -> list[RestCall]:
        query = {
            k: str(v)
            for k, v in {"method": method, "route": route, "path": path, "status": status}.items()
            if v is not None
        }
        return [RestCall.from_dict(c) for c in await self.call("GET", "/rest_calls", params=query)]

    async def sessions(self) -> list[SessionInfo]:
        return [SessionInfo.from_dict(s) for s in await self.call("GET", "/sessions")]

    async def identifies(self) -> list[IdentifyRecord]:
        return [IdentifyRecord.from_dict(r) for r in await self.call("GET", "/identifies")]

    async def shard_holders(self) -> dict[int, list[str]]:
        return {int(k): v for k, v in (await self.call("GET", "/shard_holders")).items()}

    async def shard_holders_by_count(self) -> dict[int, dict[int, list[str]]]:
        """shard count -> shard id -> connected session ids."""
        data = await self.call("GET", "/shard_holders_by_count")
        return {int(c): {int(k): v for k, v in s.items()} for c, s in data.items()}

    async def duplicate_shard_holders(self) -> list[DuplicateRecord]:
        return [DuplicateRecord.from_dict(r) for r in await self.call("GET", "/duplicates")]

    async def wait_for_shards(
        self,
        shard_ids: list[int],
        timeout: float = DEFAULT_TIMEOUT,  # noqa: ASYNC109
    ) -> dict[int, list[str]]:
        body = {"shard_ids": shard_ids, "timeout": timeout}
        data = await self.call("POST", "/wait_for_shards", body, wait=timeout)
        return {int(k): v for k, v in data.items()}

    async def _gateway(self, action: str, shard_id: int, **extra: Any) -> int:
        body = {"shard_id": shard_id, **extra}
        return (await self.call("POST", f"/gateway/{action}", body))["count"]

    async def send_reconnect(self, shard_id: int) -> int:
        return await self._gateway("reconnect", shard_id)

    async def send_invalid_session(self, shard_id: int, resumable: bool = False) -> int:
        return await self._gateway("invalid_session", shard_id, resumable=resumable)

    async def drop_connection(self, shard_id: int) -> int:
        return await self._gateway("drop", shard_id)

    async def spend_identify(self, shard_id: int) -> None:
        await self._gateway("spend_identify", shard_id)

    async def delay_resumes(self, seconds: float, count: int = 1) -> None:
        await self.call("POST", "/delay_resumes", {"seconds": seconds, "count": count})

    async def rate_limit_next(
        self,
        route: str,
        count: int = 1,
        retry_after: float = 0.2,
        *,
        scope: str = "user",
        proxy: bool = False,
    ) -> None:
        """Like :meth:`Driver.rate_limit_next`; a global 429 is ``scope="global"``."""
        body = {"route": route, "count": count, "retry_after": retry_after}
        await self.call("POST", "/rate_limit", {**body, "scope": scope, "proxy": proxy})

    async def rate_stats(self, since: float | None = None) -> RateStats:
        params = {"since": str(since)} if since is not None else None
        return RateStats.from_dict(await self.call("GET", "/rate_stats", params=params))

    async def reset_rate_stats(self) -> None:
        await self.call("POST", "/rate_stats/reset")
