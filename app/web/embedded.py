"""The web console beside the sandbox console (`python -m app` without a token).

It signs in with the sandbox's OAuth2 application, reads the bot's database (in the bot's
Tortoise context) and keeps sessions there too, or in Redis when REDIS_URL is set.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from app.config import get_settings
from app.services import Services
from app.web.server import build_console, make_app, serve
from app.web.sessions import open_store


class ServedBot(Protocol):
    """The bot beside the console, as far as the console needs it: its services."""

    services: Services


async def web_beside(server: Any, bot: ServedBot) -> tuple[str, Callable[[], Awaitable[None]]]:
    """Start the console for the sandbox `server`; (the line naming its URL, its stopper)."""
    settings = get_settings().model_copy(
        update={
            "discord_client_id": server.oauth.client_id,
            "discord_client_secret": server.oauth.client_secret,
            "discord_authorize_url": server.url + "/oauth2/authorize",
        }
    )
    store = open_store(settings.redis_url)
    console = build_console(
        settings, server.rest_base, server.bot_token, store, bot.services.database
    )
    try:
        runner, url = await serve(make_app(console), settings.web_host, settings.web_port)
    except OSError:  # the usual port is taken (another console runs): any free port
        runner, url = await serve(make_app(console), settings.web_host, 0)
    console.auth.redirect_uri = url + "/callback"

    async def stop() -> None:
        await runner.cleanup()
        await console.auth.api.close()
        await store.close()

    return f"Moderators' web console: {url} (sign in as any demo user).", stop
