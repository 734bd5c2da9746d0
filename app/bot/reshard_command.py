"""`python -m app reshard --to N` (and `--abort`): start or give up a shard generation.

The running pods do the work (app/bot/resharding.py); this only writes the request into the
generation record, after checking what Discord allows: the count is a multiple of
max_concurrency, and today's session starts left, less IDENTIFY_MIN_REMAINING (the reserve),
cover one identify per new shard.
"""

from __future__ import annotations

import discord

from app.bot.discord_internals import point_discord
from app.config import Settings
from app.coord.generations import GenerationStore, Record, Refused, rounded_up
from app.coord.redis_link import RedisLink, RedisUnavailable
from app.coord.shard_plan import SHARD_COUNT_KEY

#: Exit codes of the command.
DONE, REFUSED, CONFIGURATION = 0, 1, 2


async def session_starts(settings: Settings, token: str) -> tuple[int, int, float]:
    """(session starts left today, max_concurrency, seconds until the budget resets)."""
    point_discord(settings.discord_api_base, settings.discord_gateway_url)
    http = discord.http.HTTPClient(discord.utils.MISSING)
    try:
        await http.static_login(token)
        _, _, limits = await http.get_bot_gateway()
    finally:
        await http.close()
    reset = float(limits.get("reset_after", 0)) / 1000
    return int(limits["remaining"]), int(limits.get("max_concurrency", 1)), reset


def budget_refusal(
    count: int, remaining: int, reserve: int, max_concurrency: int, resets_in: float
) -> str | None:
    """Why Discord's limits do not allow bringing up `count` new shards now (None: they do)."""
    if max_concurrency > 1 and count % max_concurrency:
        return (
            f"{count} shards is not a multiple of max_concurrency {max_concurrency}: "
            f"Discord refuses it; try --to {rounded_up(count, max_concurrency)}"
        )
    if remaining - reserve < count:
        return (
            f"{count} identifies needed, {remaining} session starts left today and "
            f"IDENTIFY_MIN_REMAINING={reserve} kept in reserve; the budget resets in "
            f"{resets_in:.0f} s"
        )
    return None


async def reshard(settings: Settings, to: int | None, abort: bool) -> tuple[int, str]:
    """Start a generation of `to` shards, or abandon the one being prepared: (exit code, line)."""
    if not settings.redis_url:
        return CONFIGURATION, "resharding needs REDIS_URL (the pods' shared generation record)"
    if not settings.discord_token and not abort:
        return CONFIGURATION, "resharding needs DISCORD_TOKEN (to read the session-start budget)"
    link = RedisLink(settings.redis_url)
    try:
        store = GenerationStore(link)
        current = await _running_count(settings, link)
        if current is None:
            return CONFIGURATION, "no shard count known: set SHARD_COUNT (the pods' setting)"
        if abort:
            return await _abort(store, current)
        assert to is not None and settings.discord_token is not None
        remaining, concurrency, resets_in = await session_starts(settings, settings.discord_token)
        refusal = budget_refusal(
            to, remaining, settings.identify_min_remaining, concurrency, resets_in
        )
        if refusal is not None:
            return REFUSED, f"refused: {refusal}"
        reason = f"requested from the command line ({remaining} session starts left)"
        record = await store.change(current, lambda rec, now: rec.start(to, now, reason))
        assert record is not None
        gen = record.in_progress()
        assert gen is not None
        return DONE, (
            f"{gen.describe()}: the pods bring its shards up beside generation "
            f"{record.active().number}; watch `python -m app shard-plan --live`"
        )
    except Refused as refused:
        return REFUSED, f"refused: {refused}"
    except RedisUnavailable:
        return REFUSED, "refused: Redis does not answer at REDIS_URL"
    finally:
        await link.close()


async def _abort(store: GenerationStore, current: int) -> tuple[int, str]:
    record = await store.read() or Record.first(current)
    gen = record.in_progress()
    if gen is None:
        return REFUSED, "refused: no generation is being prepared"
    await store.change(current, lambda rec, _now: rec.abandon(gen.number, "aborted by an operator"))
    return DONE, f"generation {gen.number} abandoned; generation {record.active().number} serves on"


async def _running_count(settings: Settings, link: RedisLink) -> int | None:
    """The cluster's shard count now: the record's active one, else what the pods were given."""
    record = await GenerationStore(link).read()
    if record is not None:
        return record.active().shard_count
    if isinstance(settings.shard_count, int):
        return settings.shard_count
    stored = await link.run(lambda r: r.get(SHARD_COUNT_KEY))  # SHARD_COUNT=auto
    return int(stored) if stored is not None else None
