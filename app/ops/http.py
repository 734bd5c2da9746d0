"""The pod's HTTP endpoints for Kubernetes and Prometheus.

/livez: the event loop turns. /startupz: every owned shard is READY. /readyz: that, the database
answers, and the process is not shutting down. /metrics: Prometheus text format.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from app.ops.metrics import REGISTRY

log = logging.getLogger(__name__)


@dataclass
class Probes:
    """What the endpoints ask of the process.

    `ready` says whether every owned shard is READY, `database` whether a query answers,
    `refresh_metrics` updates gauges just before a scrape.
    """

    ready: Callable[[], bool]
    database: Callable[[], Awaitable[bool]]
    refresh_metrics: Callable[[], Awaitable[None]] | None = None
    stopping: bool = False
    max_loop_lag: float = 5.0
    _last_tick: float = field(default_factory=time.monotonic)


class OpsServer:
    """An aiohttp server on its own port, sharing the bot's event loop."""

    def __init__(self, probes: Probes, host: str = "0.0.0.0", port: int = 8080) -> None:
        self.probes = probes
        self.host, self.port = host, port
        self._runner: web.AppRunner | None = None
        self._ticker: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Listen, and start the loop-lag ticker behind /livez."""
        app = web.Application()
        app.router.add_get("/livez", self._livez)
        app.router.add_get("/readyz", self._readyz)
        app.router.add_get("/startupz", self._startupz)
        app.router.add_get("/metrics", self._metrics)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self._ticker = asyncio.create_task(self._tick(), name="ops-loop-ticker")
        log.info("ops endpoints on http://%s:%d", self.host, self.port)

    async def _tick(self) -> None:
        while True:
            self.probes._last_tick = time.monotonic()
            await asyncio.sleep(0.5)

    async def _livez(self, request: web.Request) -> web.Response:
        lag = time.monotonic() - self.probes._last_tick
        if lag > self.probes.max_loop_lag:
            return web.Response(status=503, text=f"event loop stalled for {lag:.1f} s\n")
        return web.Response(text="ok\n")

    async def _startupz(self, request: web.Request) -> web.Response:
        if not self.probes.ready():
            return web.Response(status=503, text="shards not ready\n")
        return web.Response(text="started\n")

    async def _readyz(self, request: web.Request) -> web.Response:
        if self.probes.stopping:
            return web.Response(status=503, text="shutting down\n")
        if not self.probes.ready():
            return web.Response(status=503, text="shards not ready\n")
        try:
            db_ok = await asyncio.wait_for(self.probes.database(), 2.0)
        except Exception:
            db_ok = False
        if not db_ok:
            return web.Response(status=503, text="database unreachable\n")
        return web.Response(text="ready\n")

    async def _metrics(self, request: web.Request) -> web.Response:
        if self.probes.refresh_metrics is not None:
            try:
                await self.probes.refresh_metrics()
            except Exception:
                log.exception("refreshing metrics failed")
        body = generate_latest(REGISTRY)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def stop(self) -> None:
        """Stop listening."""
        if self._ticker is not None:
            self._ticker.cancel()
        if self._runner is not None:
            await self._runner.cleanup()
