"""The pod's HTTP endpoints for Kubernetes and Prometheus.

/livez: the event loop turns. /startupz: the pod serves the shards it should (each READY).
/readyz: that, the database answers at the head migration, and the process is not shutting
down; a 503 says why in its body. /metrics: Prometheus text format.
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

    `serving` says why the pod does not serve the shards it should (None when it does),
    `database` why the database cannot serve (None when it can; raising means it did not
    answer), `refresh_metrics` updates gauges just before a scrape.
    """

    serving: Callable[[], str | None]
    database: Callable[[], Awaitable[str | None]]
    refresh_metrics: Callable[[], Awaitable[None]] | None = None
    stopping: bool = False
    max_loop_lag: float = 5.0
    _last_tick: float = field(default_factory=time.monotonic)


class OpsServer:
    """An aiohttp server on its own port, sharing the bot's event loop."""

    def __init__(self, probes: Probes, host: str = "127.0.0.1", port: int = 8080) -> None:
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
        self.port = self._runner.addresses[0][1]
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
        reason = self.probes.serving()
        if reason is not None:
            return web.Response(status=503, text=f"not started: {reason}\n")
        return web.Response(text="started\n")

    async def _readyz(self, request: web.Request) -> web.Response:
        if self.probes.stopping:
            return web.Response(status=503, text="not ready: shutting down\n")
        reason = self.probes.serving()
        if reason is None:
            try:
                problem = await asyncio.wait_for(self.probes.database(), 2.0)
            except Exception as error:
                problem = f"it does not answer ({str(error) or type(error).__name__})"
            reason = None if problem is None else f"database: {problem}"
        if reason is not None:
            return web.Response(status=503, text=f"not ready: {reason}\n")
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
