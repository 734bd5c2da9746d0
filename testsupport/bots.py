"""Settings for a bot against a sandbox: in a child process (`bot_env`: none of the developer's
bot settings leak in) or in this process (`bot_settings`: no .env file, and every setting a
test depends on given)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.config import Settings

if TYPE_CHECKING:
    from sandbox import SandboxServer

#: This checkout: child processes import `app` (and `bench`) from here.
REPO = Path(__file__).resolve().parents[1]
#: The environment variables the bot reads its settings from: one per field of the Settings
#: model (pydantic-settings maps a field to its upper-case name).
BOT_SETTINGS = frozenset(name.upper() for name in Settings.model_fields)


def bot_env(server: SandboxServer | None = None, **env: str) -> dict[str, str]:
    """The environment of a child bot process.

    The caller's environment minus every bot setting (BOT_SETTINGS), this checkout on
    PYTHONPATH, unbuffered output; pointed at `server` (its addresses and bot token) when one
    is given; then `env` (environment variable names: bot settings and anything else).
    """
    child = {k: v for k, v in os.environ.items() if k.upper() not in BOT_SETTINGS}
    child.update(PYTHONPATH=str(REPO), PYTHONUNBUFFERED="1")
    if server is not None:
        child.update(
            DISCORD_TOKEN=server.bot_token,
            DISCORD_API_BASE=server.rest_base,
            DISCORD_GATEWAY_URL=server.gateway_url,
        )
    child.update(env)
    return child


def bot_settings(server: SandboxServer, database_url: str, **values: Any) -> Settings:
    """Settings for a bot in this process against `server`: its addresses and token, the
    database, no Redis, prefix commands with message content, one process holding every
    shard; then `values` (Settings fields). Nothing is read from a .env file."""
    defaults: dict[str, Any] = {
        "database_url": database_url,
        "redis_url": None,
        "discord_token": server.bot_token,
        "discord_api_base": server.rest_base,
        "discord_gateway_url": server.gateway_url,
        "command_prefix": "!",
        "message_content_intent": True,
        "shard_count": None,
        "shard_ids": None,
        "shards_per_pod": None,
        "pod_index": None,
    }
    return Settings(_env_file=None, **{**defaults, **values})
