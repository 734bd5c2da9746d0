"""Guild settings: read (created with defaults on first sight) and change."""

from __future__ import annotations

import time
from typing import Any

from app.db.models import GuildSettings
from app.domain import validation
from app.domain.errors import InvalidInput

MAX_DAILY = 10**9
MAX_XP_PER_MESSAGE = 10_000
MAX_NO_XP_CHANNELS = 100
CACHE_SECONDS = 30.0

_cache: dict[int, tuple[float, GuildSettings]] = {}


async def settings(guild_id: int) -> GuildSettings:
    """The guild's settings row, created with defaults the first time."""
    validation.snowflake(guild_id, "guild")
    row = await GuildSettings.get_or_none(guild_id=guild_id)
    if row is None:
        await GuildSettings.bulk_create([GuildSettings(guild_id=guild_id)], ignore_conflicts=True)
        row = await GuildSettings.get(guild_id=guild_id)
    return row


async def cached_settings(guild_id: int) -> GuildSettings:
    """Settings for hot paths (every chat message), at most CACHE_SECONDS old.

    A change made in this process is seen at once; one made by another process within
    CACHE_SECONDS.
    """
    hit = _cache.get(guild_id)
    now = time.monotonic()
    if hit is not None and hit[0] > now:
        return hit[1]
    row = await settings(guild_id)
    _cache[guild_id] = (now + CACHE_SECONDS, row)
    return row


async def configure(guild_id: int, **changes: Any) -> GuildSettings:
    """Validate and apply changes; unknown or invalid values raise InvalidInput, writing nothing."""
    validation.snowflake(guild_id, "guild")
    clean = {name: _check(name, value) for name, value in changes.items()}
    current = await GuildSettings.get_or_none(guild_id=guild_id) or GuildSettings()
    if clean.get("xp_min", current.xp_min) > clean.get("xp_max", current.xp_max):
        raise InvalidInput("The XP range must have its minimum at or below its maximum.")
    row = await settings(guild_id)
    if clean:
        await GuildSettings.filter(guild_id=guild_id).update(**clean)
        await row.refresh_from_db()
    _cache.pop(guild_id, None)
    return row


def _check(name: str, value: Any) -> Any:
    if name == "currency_name":
        if not isinstance(value, str) or not 1 <= len(value.strip()) <= 32:
            raise InvalidInput("The currency name must be 1 to 32 characters.")
        if not value.isprintable():
            raise InvalidInput("The currency name must be plain printable text.")
        return value.strip()
    if name == "daily_amount":
        return validation.amount(value, MAX_DAILY)
    if name in ("xp_min", "xp_max"):
        if (
            isinstance(value, bool)
            or not isinstance(value, int)
            or not 0 <= value <= MAX_XP_PER_MESSAGE
        ):
            raise InvalidInput(
                f"XP per message must be a whole number from 0 to {MAX_XP_PER_MESSAGE}."
            )
        return value
    if name in ("modlog_channel_id", "levelup_channel_id"):
        return None if value is None else validation.snowflake(value, "channel")
    if name == "levelup_dm":
        if not isinstance(value, bool):
            raise InvalidInput("levelup_dm must be true or false.")
        return value
    if name == "no_xp_channel_ids":
        ids = sorted({validation.snowflake(v, "channel") for v in value})
        if len(ids) > MAX_NO_XP_CHANNELS:
            raise InvalidInput(f"At most {MAX_NO_XP_CHANNELS} channels can be excluded from XP.")
        return ids
    raise InvalidInput(f"Unknown setting: {name}.")
