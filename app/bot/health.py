"""What the pod's /readyz, /startupz and /metrics report about the bot."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

from tortoise import connections

from app.ops import metrics
from app.ops.http import Probes

if TYPE_CHECKING:
    from app.bot.client import GuildBot


def probes_for(bot: GuildBot) -> Probes:
    """Probes bound to one bot."""

    async def database() -> bool:
        if bot.db_context is None:
            return False
        with bot.db_context:
            await connections.get("default").execute_query("SELECT 1")
        return True

    async def refresh() -> None:
        await refresh_metrics(bot)

    return Probes(ready=bot.all_shards_ready, database=database, refresh_metrics=refresh)


async def refresh_metrics(bot: GuildBot) -> None:
    """Set the gauges that describe state rather than count events."""
    guilds = Counter(g.shard_id for g in bot.guilds)
    latencies = dict(bot.latencies)
    for shard_id in bot.running_shards():
        label = str(shard_id)
        metrics.SHARD_UP.labels(label).set(1 if shard_id in bot.ready_shards else 0)
        metrics.SHARD_GUILDS.labels(label).set(guilds.get(shard_id, 0))
        latency = latencies.get(shard_id)
        if latency is not None and latency == latency:  # NaN before the first heartbeat
            metrics.SHARD_LATENCY.labels(label).set(latency)
    metrics.READY.set(1 if bot.all_shards_ready() else 0)
    if bot.keeper is not None:
        metrics.OWNED_SHARDS.set(len(bot.keeper.leases.held()))
    link = bot.coord.redis if bot.coord is not None else None
    if link is None:
        metrics.REDIS_UP.set(1)
    else:
        try:
            metrics.REDIS_UP.set(1 if await link.client.ping() else 0)
        except Exception:
            metrics.REDIS_UP.set(0)
    if bot.db_context is not None:
        with bot.db_context:
            pool = getattr(connections.get("default"), "_pool", None)
        if pool is not None:
            metrics.DB_POOL_SIZE.set(pool.get_size())
            metrics.DB_POOL_IDLE.set(pool.get_idle_size())
            metrics.DB_POOL_MAX.set(pool.get_max_size())
