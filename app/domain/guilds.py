"""Guild settings.

Read (created with defaults on first sight), cached for hot paths, changed through one typed
setter per setting.
"""

from __future__ import annotations

import time
from typing import Any

from tortoise.transactions import in_transaction

from app.db.models import GuildSettings
from app.domain import validation
from app.domain.errors import InvalidInput
from app.domain.types import GuildConfig, view_of

MAX_DAILY = 10**9
MAX_XP_PER_MESSAGE = 10_000
MAX_NO_XP_CHANNELS = 100
MAX_CURRENCY_NAME = 32
CACHE_SECONDS = 30.0


def config_of(row: GuildSettings) -> GuildConfig:
    """The frozen view of a settings row."""
    return view_of(GuildConfig, row, no_xp_channel_ids=tuple(row.no_xp_channel_ids))


async def ensure_row(guild_id: int) -> GuildSettings:
    """The guild's settings row, created with defaults the first time."""
    validation.snowflake(guild_id, "guild")
    row = await GuildSettings.get_or_none(guild_id=guild_id)
    if row is None:
        await GuildSettings.bulk_create([GuildSettings(guild_id=guild_id)], ignore_conflicts=True)
        row = await GuildSettings.get(guild_id=guild_id)
    return row


def currency_name(value: object) -> str:
    """A currency name: 1 to 32 printable characters, trimmed."""
    if not isinstance(value, str) or not 1 <= len(value.strip()) <= MAX_CURRENCY_NAME:
        raise InvalidInput(f"The currency name must be 1 to {MAX_CURRENCY_NAME} characters.")
    if not value.isprintable():
        raise InvalidInput("The currency name must be plain printable text.")
    return value.strip()


def xp_per_message(value: object) -> int:
    """XP a message may earn: a whole number from 0 to MAX_XP_PER_MESSAGE."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_XP_PER_MESSAGE:
        return value
    raise InvalidInput(f"XP per message must be a whole number from 0 to {MAX_XP_PER_MESSAGE}.")


def optional_channel(value: int | None) -> int | None:
    """A channel id, or None for "no channel"."""
    return None if value is None else validation.snowflake(value, "channel")


class GuildConfigs:
    """Every guild's settings, with a short-lived cache for the hot paths (every message).

    A change made through this object is seen at once by it; a change made by another process
    within `cache_seconds`.
    """

    def __init__(self, cache_seconds: float = CACHE_SECONDS) -> None:
        self.cache_seconds = cache_seconds
        self._cache: dict[int, tuple[float, GuildConfig]] = {}

    async def get(self, guild_id: int) -> GuildConfig:
        """The guild's settings as stored now (created with defaults the first time)."""
        config = config_of(await ensure_row(guild_id))
        self._cache[guild_id] = (time.monotonic() + self.cache_seconds, config)
        return config

    async def cached(self, guild_id: int) -> GuildConfig:
        """The guild's settings, at most `cache_seconds` old."""
        hit = self._cache.get(guild_id)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
        return await self.get(guild_id)

    async def set_currency(self, guild_id: int, name: str) -> GuildConfig:
        """Rename the guild's currency."""
        return await self._update(guild_id, currency_name=currency_name(name))

    async def set_daily_amount(self, guild_id: int, amount: int) -> GuildConfig:
        """Set the coins the daily reward gives."""
        return await self._update(guild_id, daily_amount=validation.amount(amount, MAX_DAILY))

    async def set_xp_range(self, guild_id: int, minimum: int, maximum: int) -> GuildConfig:
        """Set the XP a message earns; 0 0 turns XP off."""
        low, high = xp_per_message(minimum), xp_per_message(maximum)
        if low > high:
            raise InvalidInput("The XP range must have its minimum at or below its maximum.")
        return await self._update(guild_id, xp_min=low, xp_max=high)

    async def set_modlog(self, guild_id: int, channel_id: int | None) -> GuildConfig:
        """Set the channel cases are posted to; None stops posting."""
        return await self._update(guild_id, modlog_channel_id=optional_channel(channel_id))

    async def set_levelup(
        self, guild_id: int, *, channel_id: int | None = None, dm: bool = False
    ) -> GuildConfig:
        """Where level-ups are announced: a DM, a fixed channel, or (neither) the same channel."""
        if dm and channel_id is not None:
            raise InvalidInput("Level-ups go either by DM or to a channel, not both.")
        return await self._update(
            guild_id, levelup_channel_id=optional_channel(channel_id), levelup_dm=bool(dm)
        )

    async def set_xp_excluded(self, guild_id: int, channel_id: int, excluded: bool) -> GuildConfig:
        """Add a channel to (or remove it from) the channels where messages earn no XP."""
        validation.snowflake(channel_id, "channel")
        await ensure_row(guild_id)
        async with in_transaction():  # two admins editing the list at once both count
            row = await GuildSettings.filter(guild_id=guild_id).select_for_update().first()
            assert row is not None
            current = set(row.no_xp_channel_ids)
            if excluded:
                current.add(channel_id)
            else:
                current.discard(channel_id)
            if len(current) > MAX_NO_XP_CHANNELS:
                raise InvalidInput(
                    f"At most {MAX_NO_XP_CHANNELS} channels can be excluded from XP."
                )
            await GuildSettings.filter(guild_id=guild_id).update(no_xp_channel_ids=sorted(current))
        return await self.get(guild_id)

    async def _update(self, guild_id: int, **columns: Any) -> GuildConfig:
        """Write validated columns and return the new settings (the cache is refreshed)."""
        await ensure_row(guild_id)
        await GuildSettings.filter(guild_id=guild_id).update(**columns)
        return await self.get(guild_id)
