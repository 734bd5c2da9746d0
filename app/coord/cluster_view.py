"""`python -m app shard-plan --live`: the assignment the pods compute now, and who holds what."""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis

from app.coord.assignment import assign
from app.coord.generations import Generation, GenerationStore, Record
from app.coord.membership import Membership
from app.coord.redis_link import RedisLink


async def describe_cluster(link: RedisLink, shard_count: int | None, grace: float) -> str:
    """Every shard generation the record holds, then a table for each live one.

    Without a record (the cluster never resharded), generation 0 of `shard_count` shards;
    ValueError when that is not given either.
    """
    stored = await GenerationStore(link).read()
    if stored is None and shard_count is None:
        raise ValueError("no generation record in Redis: give --shards N (or set SHARD_COUNT)")
    record = stored or Record.first(shard_count or 1)
    lines = [gen.describe() for gen in record.generations]
    for gen in record.live():
        lines += ["", f"-- {gen.describe()}", await describe_live(link, gen, grace)]
    return "\n".join(lines)


async def describe_live(link: RedisLink, gen: Generation, grace: float) -> str:
    """A table: each shard's planned pod, lease holder and fencing token, and saved session."""
    members = await Membership(link, "", grace).members()
    shard_count = gen.shard_count
    plan = assign(shard_count, members) if members else {}

    async def read(r: Redis) -> list[Any]:
        pipe = r.pipeline(transaction=False)
        for shard in range(shard_count):
            pipe.get(f"{gen.key_prefix}:{shard}:lease")
            pipe.exists(f"{gen.key_prefix}:{shard}:session")
        pipe.get(gen.handover_key)
        return await pipe.execute()

    raw = await link.run(read)
    handover = raw[-1].decode() if raw[-1] else None
    lines = [
        f"{len(members)} live pod(s): {', '.join(members) or 'none'}",
        f"handover in flight: shard {handover}" if handover else "no handover in flight",
        f"{'shard':>5}  {'planned pod':<28} {'lease holder':<40} {'fence':>5}  session",
    ]
    for shard in range(shard_count):
        lease, saved = raw[2 * shard], raw[2 * shard + 1]
        holder, _, fence = (lease.decode() if lease else "-|").rpartition("|")
        lines.append(
            f"{shard:>5}  {plan.get(shard, '-'):<28} {holder or '-':<40} {fence or '-':>5}  "
            f"{'saved' if saved else '-'}"
        )
    return "\n".join(lines)
