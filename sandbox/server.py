"""SandboxServer: one port serving REST (/api/v10), the gateway (/) and control (/_sandbox)."""

from __future__ import annotations

import logging
from types import TracebackType
from typing import Any, Self

from aiohttp import web

from sandbox.builders import demo_world
from sandbox.core import Core
from sandbox.gateway import GatewayHub
from sandbox.oauth import OAuth2
from sandbox.ratelimits import DISCORD_ROUTE_LIMITS, RouteLimit
from sandbox.records import RestCall
from sandbox.rest.api import PREFIX, RestApi
from sandbox.settings import SANDBOX_TOKEN, Settings
from sandbox.switches import Switches
from sandbox.world import World

log = logging.getLogger(__name__)


class SandboxServer(Switches):
    """A local Discord-compatible server. ``port=0`` picks a free port; the switches (429s,
    forced reconnects, ...) are those of :class:`~sandbox.switches.Switches`.

    Discord's REST limits are off unless asked for (:mod:`sandbox.ratelimits`): ``global_limit``
    requests per second per token (``global_limits`` raises it per token), ``route_limits``
    (True: :data:`~sandbox.ratelimits.DISCORD_ROUTE_LIMITS`, or a table), and a Cloudflare ban
    of ``ban_seconds`` past ``invalid_limit`` invalid requests per ``invalid_window``."""

    def __init__(
        self,
        port: int = 0,
        *,
        world: World | None = None,
        identify_window: float = 5.0,
        max_concurrency: int = 1,
        compress: bool = True,
        heartbeat_interval: int = 41250,
        heartbeat_ack_delay: float = 0.03,
        shards_recommended: int | None = None,
        interaction_deadline: float = 3.0,
        session_ttl: float = 300.0,
        token: str | None = None,
        host: str = "127.0.0.1",
        global_limit: int | None = None,
        global_limits: dict[str, int] | None = None,
        route_limits: bool | tuple[RouteLimit, ...] = False,
        invalid_limit: int | None = None,
        invalid_window: float = 600.0,
        ban_seconds: float = 3600.0,
        **more: Any,
    ) -> None:
        """``more``: any other field of :class:`~sandbox.settings.Settings`."""
        self.settings = Settings(
            host=host,
            port=port,
            identify_window=identify_window,
            max_concurrency=max_concurrency,
            compress=compress,
            heartbeat_interval_ms=heartbeat_interval,
            heartbeat_ack_delay=heartbeat_ack_delay,
            shards_recommended=shards_recommended,
            interaction_deadline=interaction_deadline,
            session_ttl=session_ttl,
            token=token,
            global_limit=global_limit,
            global_limits=dict(global_limits or {}),
            route_limits=DISCORD_ROUTE_LIMITS if route_limits is True else route_limits or (),
            invalid_limit=invalid_limit,
            invalid_window=invalid_window,
            ban_seconds=ban_seconds,
            **more,
        )
        self.core = Core(world or demo_world(), self.settings)
        self.gateway = GatewayHub(self.core)
        self.core.sink = self.gateway
        self.rest = RestApi(self.core)
        self.app = web.Application(client_max_size=64 * 1024 * 1024)
        self.app.router.add_get("/", self._root)
        #: Discord's OAuth2 sign-in, for the web console (its routes go before the catch-all).
        self.oauth = OAuth2(self.core)
        self.oauth.install(self.app, PREFIX, self.rest)
        self.app.router.add_route("*", PREFIX + "/{tail:.*}", self.rest.handle)
        self.app.router.add_get(
            "/attachments/{channel_id}/{attachment_id}/{filename}", self._attachment
        )
        from sandbox.control import install

        #: The in-process :class:`~sandbox.driver.Driver`, also served under /_sandbox/.
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
        self.port = self._runner.addresses[0][1]
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
    def bot_token(self) -> str:
        """The token a bot logs in with: the one this server requires, else SANDBOX_TOKEN."""
        return self.settings.token or SANDBOX_TOKEN

    @property
    def world(self) -> World:
        """The guilds, users, channels and messages it serves."""
        return self.core.world

    # -- records -------------------------------------------------------------------------------
    @property
    def rest_calls(self) -> list[RestCall]:
        """Every REST call recorded so far (a copy)."""
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
