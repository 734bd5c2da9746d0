"""SandboxServer: one port serving REST (/api/v10), the gateway (/) and control (/_sandbox)."""

from __future__ import annotations

import logging
from types import TracebackType
from typing import Any, Self

from aiohttp import web

from app.sandbox.builders import demo_world
from app.sandbox.core import Core
from app.sandbox.gateway import GatewayHub
from app.sandbox.records import RestCall
from app.sandbox.rest.api import PREFIX, RestApi
from app.sandbox.settings import Settings
from app.sandbox.world import World

log = logging.getLogger(__name__)


class SandboxServer:
    """A local Discord-compatible server. ``port=0`` picks a free port."""

    def __init__(
        self,
        port: int = 0,
        *,
        world: World | None = None,
        identify_window: float = 5.0,
        max_concurrency: int = 1,
        compress: bool = True,
        heartbeat_interval: int = 41250,
        shards_recommended: int | None = None,
        interaction_deadline: float = 3.0,
        session_ttl: float = 300.0,
        token: str | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        self.settings = Settings(
            host=host,
            port=port,
            identify_window=identify_window,
            max_concurrency=max_concurrency,
            compress=compress,
            heartbeat_interval_ms=heartbeat_interval,
            shards_recommended=shards_recommended,
            interaction_deadline=interaction_deadline,
            session_ttl=session_ttl,
            token=token,
        )
        self.core = Core(world or demo_world(), self.settings)
        self.gateway = GatewayHub(self.core)
        self.core.sink = self.gateway
        self.rest = RestApi(self.core)
        self.app = web.Application(client_max_size=64 * 1024 * 1024)
        self.app.router.add_get("/", self._root)
        self.app.router.add_route("*", PREFIX + "/{tail:.*}", self.rest.handle)
        self.app.router.add_get(
            "/attachments/{channel_id}/{attachment_id}/{filename}", self._attachment
        )
        from app.sandbox.control import install

        #: The in-process :class:`~app.sandbox.driver.Driver`, also served under /_sandbox/.
        self.driver = install(self)
        self._runner: web.AppRunner | None = None
        self.port = port

    # -- lifecycle -------------------------------------------------------------------------
    async def start(self) -> None:
        """Listen on ``host:port`` (a free port when 0)."""
        self._runner = web.AppRunner(
            self.app, access_log=None, handle_signals=False, shutdown_timeout=1.0
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.settings.host, self.settings.port)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.core.base_url = self.url
        log.info("sandbox listening on %s", self.url)

    async def stop(self) -> None:
        """Drop every gateway connection and stop listening."""
        await self.gateway.close_all()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    # -- addresses -------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://{self.settings.host}:{self.port}"

    @property
    def rest_base(self) -> str:
        """What ``discord.http.Route.BASE`` must be."""
        return self.url + PREFIX

    @property
    def gateway_url(self) -> str:
        """What ``discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY`` must point at."""
        return f"ws://{self.settings.host}:{self.port}/"

    @property
    def world(self) -> World:
        return self.core.world

    # -- switches and records ----------------------------------------------------------------
    def rate_limit_next(
        self,
        route_or_method_path: str,
        count: int = 1,
        retry_after: float = 0.2,
        *,
        is_global: bool = False,
    ) -> None:
        """Answer the next ``count`` matching REST calls with 429 and ``retry_after``.

        Match on ``"POST /channels/{channel_id}/messages"`` (a discord.py route template), a
        concrete path, or either without the method.
        """
        self.rest.rate_limits.add(route_or_method_path, count, retry_after, is_global)

    def send_reconnect(self, shard_id: int) -> int:
        """op 7 RECONNECT to the shard's live sessions; returns how many got it."""
        return self.gateway.send_reconnect(shard_id)

    def send_invalid_session(self, shard_id: int, resumable: bool = False) -> int:
        """op 9 INVALID_SESSION to the shard's live sessions; returns how many got it."""
        return self.gateway.send_invalid_session(shard_id, resumable)

    def drop_connection(self, shard_id: int) -> int:
        """Abort the shard's connections without a close frame; returns how many."""
        return self.gateway.drop_connection(shard_id)

    @property
    def rest_calls(self) -> list[RestCall]:
        return list(self.rest.calls)

    # -- plain HTTP handlers -------------------------------------------------------------------
    async def _root(self, request: web.Request) -> web.StreamResponse:
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return await self.gateway.handle(request)
        info: dict[str, Any] = {
            "sandbox": True,
            "rest": self.rest_base,
            "gateway": self.gateway_url,
            "control": self.url + "/_sandbox",
        }
        return web.json_response(info)

    async def _attachment(self, request: web.Request) -> web.StreamResponse:
        raw = request.match_info["attachment_id"]
        found = self.core.uploads.get(int(raw)) if raw.isdigit() else None
        if found is None:
            raise web.HTTPNotFound()
        return web.Response(body=found.data, content_type=found.content_type)
