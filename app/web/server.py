"""The console's aiohttp application and `python -m app web`.

Security on every response: a strict Content-Security-Policy (no script at all, styles and
forms from this origin only), no framing, no referrer, no caching of pages. Templates escape
every value (Jinja2 autoescape). The only POST (sign out) carries the session's CSRF token.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import Awaitable, Callable
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
from aiohttp import web

from app.config import Settings
from app.coord import Coordination
from app.db.connect import Database
from app.ops import metrics
from app.ops.http import OpsServer, Probes
from app.services import Services
from app.web.auth import Auth
from app.web.discord_api import DiscordApi, DiscordError
from app.web.pages import Pages
from app.web.sessions import Store, open_store

log = logging.getLogger(__name__)
HERE = Path(__file__).resolve().parent
CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Console:
    """What the console's handlers share."""

    auth: Auth
    pages: Pages
    database: Database | None = None


def templates() -> jinja2.Environment:
    """The page templates, every value HTML-escaped."""
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )


def build_console(
    settings: Settings, api_base: str, bot_token: str, store: Store, database: Database | None
) -> Console:
    """The console over a store and Discord's (or the sandbox's) REST API."""
    api = DiscordApi(
        api_base,
        bot_token,
        settings.discord_client_id or "",
        settings.discord_client_secret or "",
        settings.web_access_ttl_s,
    )
    auth = Auth(
        store,
        api,
        authorize_url=settings.discord_authorize_url,
        public_url=settings.web_url,
        session_ttl=settings.web_session_ttl_s,
    )
    # The console reads only: in-process coordination is enough for the services it uses.
    services = Services(Coordination.local())
    return Console(auth, Pages(auth, templates(), services.moderation, services.bank), database)


def make_app(console: Console) -> web.Application:
    """The aiohttp application: routes, security headers, the database context."""

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.perf_counter()
        status = 500
        try:
            with console.database.context if console.database else nullcontext():
                response = await handler(request)
            status = response.status
        except web.HTTPException as error:
            status = error.status
            error.headers.update(SECURITY_HEADERS)
            raise
        except DiscordError as error:
            log.warning("discord: %s", error)
            status = 502
            response = web.Response(status=502, text="Discord did not answer; try again.")
        finally:
            route = request.match_info.route.resource
            name = route.canonical if route is not None else "unknown"
            metrics.WEB_REQUESTS.labels(name, str(status)).inc()
            metrics.WEB_DURATION.labels(name).observe(time.perf_counter() - started)
        response.headers.update(SECURITY_HEADERS)
        return response

    app = web.Application(middlewares=[guard])
    pages, auth = console.pages, console.auth
    app.router.add_get("/", pages.home)
    app.router.add_get("/login", auth.start)
    app.router.add_get("/callback", auth.finish)
    app.router.add_post("/logout", auth.logout)
    app.router.add_get("/g/{guild_id}", pages.cases)
    app.router.add_get("/g/{guild_id}/cases/{number:\\d+}", pages.case)
    app.router.add_get("/g/{guild_id}/members/{user_id:\\d+}", pages.member)
    app.router.add_get("/g/{guild_id}/export.{kind:csv|json}", pages.export)
    app.router.add_static("/static", HERE / "static")
    return app


async def serve(app: web.Application, host: str, port: int) -> tuple[web.AppRunner, str]:
    """Listen; returns the runner and the URL it listens on."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = runner.addresses[0][1]
    return runner, f"http://{host}:{bound}"


async def run_web(settings: Settings) -> int:
    """`python -m app web`: the console, its probes and metrics, until SIGTERM or SIGINT."""
    if not (settings.discord_token and settings.discord_client_id):
        log.error("the web console needs DISCORD_TOKEN and DISCORD_CLIENT_ID (and its secret)")
        return 2
    database = await Database.open_configured(settings)
    store = open_store(settings.redis_url)
    console = build_console(
        settings, settings.discord_api_base, settings.discord_token, store, database
    )
    probes = Probes(serving=lambda: None, database=database.problem)
    ops = OpsServer(probes, settings.ops_host, settings.ops_port)
    await ops.start()
    runner, url = await serve(make_app(console), settings.web_host, settings.web_port)
    log.info("web console on %s (public address %s)", url, settings.web_url)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    probes.stopping = True
    await runner.cleanup()
    await ops.stop()
    await console.auth.api.close()
    await store.close()
    await database.close()
    return 0


def web_command(settings: Settings, *_: Any) -> int:
    """Run the console (the `web` command)."""
    return asyncio.run(run_web(settings))
