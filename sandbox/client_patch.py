"""Point an unmodified discord.py at a sandbox (or any Discord-compatible server)."""

from __future__ import annotations

import discord.gateway
import discord.http
import yarl


def point_discord_at(rest_base: str, gateway_url: str) -> None:
    """Redirect discord.py's REST base and default gateway for the whole process.

    ``rest_base`` is e.g. ``http://127.0.0.1:5000/api/v10`` (``Route.BASE`` is a str; webhooks
    and interaction callbacks use it too); ``gateway_url`` e.g. ``ws://127.0.0.1:5000/``
    (``DiscordWebSocket.DEFAULT_GATEWAY`` is a yarl.URL, used with an explicit shard_count and
    after INVALID_SESSION).
    """
    discord.http.Route.BASE = rest_base.rstrip("/")
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway_url)
