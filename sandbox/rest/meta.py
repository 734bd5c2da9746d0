"""Identity and discovery: /users/@me, the application, /gateway, DM channels."""

from __future__ import annotations

from typing import Any

from sandbox import payloads
from sandbox.rest.router import RestRequest, Result, RouteTable

routes = RouteTable()


@routes.route("GET", "/users/@me")
async def me(req: RestRequest) -> Any:
    return {
        **payloads.user(req.world.bot),
        "verified": True,
        "mfa_enabled": False,
        "locale": "en-US",
        "email": None,
    }


@routes.route("GET", "/users/@me/guilds")
async def my_guilds(req: RestRequest) -> Any:
    """The bot's guilds as partial objects, by id, paged with `after` and `limit` (max 200)."""
    after = int(req.query.get("after", 0))
    limit = max(1, min(200, int(req.query.get("limit", 200))))
    ids = sorted(g for g in req.world.guilds if g > after)[:limit]
    return [
        {
            "id": str(g),
            "name": req.world.guilds[g].name,
            "icon": None,
            "owner": False,
            "permissions": "0",
            "features": [],
        }
        for g in ids
    ]


@routes.route("GET", "/users/{user_id}")
async def get_user(req: RestRequest) -> Any:
    return payloads.user(req.user())


@routes.route("GET", "/oauth2/applications/@me")
@routes.route("GET", "/applications/@me")
async def application(req: RestRequest) -> Any:
    return payloads.application(req.world)


def _ws_url(req: RestRequest) -> str:
    return req.core.base_url.replace("http", "ws", 1) + "/"


@routes.route("GET", "/gateway")
async def gateway(req: RestRequest) -> Any:
    return {"url": _ws_url(req)}


@routes.route("GET", "/gateway/bot")
async def gateway_bot(req: RestRequest) -> Any:
    settings = req.core.settings
    shards = settings.shards_recommended or max(1, -(-len(req.world.guilds) // 1000))
    hub = req.core.sink
    remaining = getattr(hub, "start_limit_remaining", settings.session_start_total)
    return {
        "url": _ws_url(req),
        "shards": shards,
        "session_start_limit": {
            "total": settings.session_start_total,
            "remaining": remaining,
            "reset_after": 86_400_000,
            "max_concurrency": settings.max_concurrency,
        },
    }


@routes.route("POST", "/users/@me/channels")
async def open_dm(req: RestRequest) -> Any:
    channel = req.world.dm_channel(req.user(req.body.get("recipient_id", "")))
    req.core.changed()
    return payloads.channel(channel, req.world)


@routes.route("POST", "/channels/{channel_id}/typing")
async def typing(req: RestRequest) -> Any:
    req.channel()
    return Result(None, 204)
