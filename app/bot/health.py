"""What the pod's /readyz, /startupz and /metrics report about the bot."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

from app.ops import metrics
from app.ops.http import Probes

if TYPE_CHECKING:
    from app.bot.client import GuildBot


def probes_for(bot: GuildBot) -> Probes:
    """Probes bound to one bot."""

    async def database() -> str | None:
        if not bot.has_services:
            return "not open yet"
        return await bot.services.database_problem()

    async def refresh() -> None:
        await refresh_metrics(bot)

    return Probes(serving=bot.not_serving, database=database, refresh_metrics=refresh)


async def refresh_metrics(anchor: GuildBot) -> None:
    """Set the gauges that describe state rather than count events.

    The shards' are those of the client acting now (another generation's after a reshard).
    """
    bot = anchor.resharder.acting_client() if anchor.resharder is not None else anchor
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
    if not anchor.has_services:
        return
    link = anchor.services.coord.redis
    if link is None:
        metrics.REDIS_UP.set(None)  # no series: nothing to be up or down
    else:
        # As the last call through the breaker found it (the REST budget asks every second):
        # a scrape never waits for a Redis that hangs.
        metrics.REDIS_UP.set(0 if link.down_for is not None else 1)
    pool = anchor.services.pool_stats()
    if pool is not None:
        metrics.DB_POOL_SIZE.set(pool.size)
        metrics.DB_POOL_IDLE.set(pool.idle)
        metrics.DB_POOL_MAX.set(pool.maximum)
