"""The control API under /_sandbox/: the driver over HTTP (its client is RemoteDriver).

Errors come back as JSON ``{"error": kind, "message": ...}``: 400 ``lookup``/``invalid`` for a
bad reference or option, 504 ``timeout`` when a wait ran out, and for a Discord-shaped failure
the Discord status with ``{"error": "discord", "code": ...}``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from sandbox.core import SandboxTimeout
from sandbox.driver import DEFAULT_TIMEOUT, Driver
from sandbox.errors import SandboxError
from sandbox.records import Record
from sandbox.remote import RemoteDriver, RemoteInteraction
from sandbox.snowflake import shard_for

if TYPE_CHECKING:
    from sandbox.server import SandboxServer

__all__ = ["PREFIX", "RemoteDriver", "RemoteInteraction", "install"]
PREFIX = "/_sandbox"
Body = dict[str, Any]
Handler = Callable[[Driver, Body], Awaitable[Any]]
_HANDLERS: list[tuple[str, str, Handler]] = []


def _control(method: str, path: str) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        _HANDLERS.append((method, path, handler))
        return handler

    return register


def _jsonable(value: Any) -> Any:
    if isinstance(value, Record):
        return value.to_dict()
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return value


def install(server: SandboxServer) -> Driver:
    """Add the /_sandbox/ routes to ``server`` and return the driver behind them."""
    driver = Driver(server)

    def wrap(handler: Handler) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def respond(request: web.Request) -> web.Response:
            body: Body = dict(request.query)
            body.update(request.match_info)
            if request.can_read_body:
                body.update(await request.json())
            try:
                return web.json_response(_jsonable(await handler(driver, body)))
            except SandboxTimeout as exc:
                return web.json_response({"error": "timeout", "message": str(exc)}, status=504)
            except SandboxError as exc:
                error = {"error": "discord", "status": exc.status, **exc.body()}
                return web.json_response(error, status=exc.status)
            except (LookupError, ValueError, TypeError) as exc:
                kind = "lookup" if isinstance(exc, LookupError) else "invalid"
                return web.json_response({"error": kind, "message": str(exc)}, status=400)

        return respond

    for method, path, handler in _HANDLERS:
        server.app.router.add_route(method, PREFIX + path, wrap(handler))
    return driver


def _timeout(body: Body) -> float:
    return float(body.get("timeout", DEFAULT_TIMEOUT))


# -- world -------------------------------------------------------------------------------------


@_control("GET", "/info")
async def _info(d: Driver, b: Body) -> Any:
    server = d.server
    return {
        "url": server.url,
        "rest_base": server.rest_base,
        "gateway_url": server.gateway_url,
        "bot_id": d.world.bot.id,
        "application_id": d.world.application_id,
        "guilds": len(d.world.guilds),
    }


@_control("GET", "/guilds")
async def _guilds(d: Driver, b: Body) -> Any:
    count = int(b.get("shard_count", 1))
    return [
        {
            "id": g.id,
            "name": g.name,
            "shard": shard_for(g.id, count),
            "member_count": len(g.members),
            "text_channels": [{"id": c.id, "name": c.name} for c in d.world.text_channels(g)],
        }
        for g in d.world.guilds.values()
    ]


@_control("GET", "/guilds/{guild}")
async def _guild(d: Driver, b: Body) -> Any:
    g = d.guild(b["guild"])
    return {
        "id": g.id,
        "name": g.name,
        "owner_id": g.owner_id,
        "roles": [{"id": r.id, "name": r.name, "position": r.position} for r in g.roles.values()],
        "channels": [
            {"id": c, "name": d.world.channels[c].name, "type": d.world.channels[c].type}
            for c in g.channel_ids
        ],
        "members": [
            {"id": m.id, "username": m.user.username, "roles": m.roles, "nick": m.nick}
            for m in g.members.values()
        ],
    }


@_control("POST", "/guilds/add")
async def _add_guilds(d: Driver, b: Body) -> Any:
    return {"guild_ids": d.add_guilds(int(b["count"]), str(b.get("prefix") or "grown"))}


# -- messages and interactions -------------------------------------------------------------


@_control("POST", "/messages")
async def _send(d: Driver, b: Body) -> Any:
    return await d.send_message(
        b["guild"],
        b["channel"],
        b["author"],
        b["content"],
        reply_to=b.get("reply_to"),
        sent_ago=float(b.get("sent_ago") or 0),
    )


@_control("GET", "/bot_messages")
async def _bot_messages(d: Driver, b: Body) -> Any:
    return d.bot_messages(b["guild"], b["channel"])


@_control("POST", "/dm")
async def _send_dm(d: Driver, b: Body) -> Any:
    return await d.send_dm(b["user"], b["content"])


@_control("POST", "/wait_reply")
async def _wait_reply(d: Driver, b: Body) -> Any:
    return await d.wait_reply(int(b["to"]), _timeout(b))


@_control("POST", "/slash")
async def _slash(d: Driver, b: Body) -> Any:
    handle = await d.slash(
        b.get("guild"),
        b.get("channel"),
        b["member"],
        b["name"],
        sub=b.get("sub"),
        sent_ago=float(b.get("sent_ago") or 0),
        **(b.get("options") or {}),
    )
    return {"id": handle.id}


@_control("POST", "/click")
async def _click(d: Driver, b: Body) -> Any:
    handle = await d.click(int(b["message"]), b["custom_id"], b["member"], values=b.get("values"))
    return {"id": handle.id}


@_control("GET", "/interactions/{id}")
async def _interaction(d: Driver, b: Body) -> Any:
    return {"history": d.interaction(int(b["id"])).history}


@_control("POST", "/interactions/{id}/response")
async def _response(d: Driver, b: Body) -> Any:
    return await d.interaction(int(b["id"])).wait_response(_timeout(b))


@_control("POST", "/interactions/{id}/followup")
async def _followup(d: Driver, b: Body) -> Any:
    handle = d.interaction(int(b["id"]))
    return await handle.wait_followup(int(b.get("index", 0)), _timeout(b))


@_control("GET", "/dms/{user}")
async def _dms(d: Driver, b: Body) -> Any:
    return d.dms(b["user"])


@_control("POST", "/wait_dm")
async def _wait_dm(d: Driver, b: Body) -> Any:
    return await d.wait_dm(b["user"], _timeout(b), after=b.get("after"))


@_control("POST", "/dms_closed")
async def _dms_closed(d: Driver, b: Body) -> Any:
    d.set_dms_closed(b["user"], bool(b.get("closed", True)))
    return {"ok": True}


# -- members and moderation -----------------------------------------------------------------


@_control("POST", "/members/add")
async def _add_member(d: Driver, b: Body) -> Any:
    member = await d.add_member(b["guild"], b["user"], b.get("roles"))
    return {"id": member.id, "username": member.user.username}


@_control("POST", "/members/remove")
async def _remove_member(d: Driver, b: Body) -> Any:
    await d.remove_member(b["guild"], b["member"])
    return {"ok": True}


@_control("POST", "/moderation/{action}")
async def _moderate(d: Driver, b: Body) -> Any:
    action, args = b["action"], (b["guild"], b["moderator"], b["target"])
    if action == "timeout":
        await d.timeout(*args, b.get("duration"), b.get("reason"))
    elif action == "ban":
        await d.ban(*args, b.get("reason"), int(b.get("delete_message_seconds", 0)))
    elif action in ("kick", "unban"):
        await getattr(d, action)(*args, b.get("reason"))
    else:
        raise ValueError(f"unknown moderation action {action!r}")
    return {"ok": True}


# -- records and switches --------------------------------------------------------------------


@_control("GET", "/rest_calls")
async def _rest_calls(d: Driver, b: Body) -> Any:
    status = int(b["status"]) if b.get("status") else None
    return d.rest_calls(b.get("method"), b.get("route"), b.get("path"), status)


def _reader(name: str) -> Handler:
    async def read(d: Driver, b: Body) -> Any:
        return getattr(d, name)()

    return read


#: Records read without arguments: path -> the Driver method that returns them.
for _path, _method in {
    "/sessions": "sessions",
    "/identifies": "identifies",
    "/shard_holders": "shard_holders",
    "/shard_holders_by_count": "shard_holders_by_count",
    "/duplicates": "duplicate_shard_holders",
}.items():
    _control("GET", _path)(_reader(_method))


@_control("POST", "/wait_for_shards")
async def _wait_shards(d: Driver, b: Body) -> Any:
    return await d.wait_for_shards([int(s) for s in b["shard_ids"]], _timeout(b))


@_control("POST", "/gateway/{action}")
async def _gateway(d: Driver, b: Body) -> Any:
    shard, action = int(b["shard_id"]), b["action"]
    if action == "reconnect":
        return {"count": d.send_reconnect(shard)}
    if action == "invalid_session":
        return {"count": d.send_invalid_session(shard, bool(b.get("resumable", False)))}
    if action == "drop":
        return {"count": d.drop_connection(shard)}
    if action == "spend_identify":
        d.spend_identify(shard)
        return {"count": 1}
    raise ValueError(f"unknown gateway action {action!r}")


@_control("POST", "/delay_resumes")
async def _delay_resumes(d: Driver, b: Body) -> Any:
    d.delay_resumes(float(b["seconds"]), int(b.get("count", 1)))
    return {"ok": True}


@_control("POST", "/max_guilds_per_shard")
async def _max_guilds_per_shard(d: Driver, b: Body) -> Any:
    d.set_max_guilds_per_shard(int(b["n"]))
    return {"ok": True}


@_control("POST", "/rate_limit")
async def _rate_limit(d: Driver, b: Body) -> Any:
    d.rate_limit_next(
        b["route"],
        int(b.get("count", 1)),
        float(b.get("retry_after", 0.2)),
        scope=str(b.get("scope", "user")),
        proxy=bool(b.get("proxy", False)),
    )
    return {"ok": True}


@_control("GET", "/rate_stats")
async def _rate_stats(d: Driver, b: Body) -> Any:
    return d.rate_stats(float(b["since"]) if b.get("since") else None)


@_control("POST", "/rate_stats/reset")
async def _reset_rate_stats(d: Driver, b: Body) -> Any:
    d.reset_rate_stats()
    return {"ok": True}
