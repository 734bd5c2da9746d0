"""`python -m app shard-plan --live`: the assignment the pods compute now, and who holds what."""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis

from app.coord.assignment import assign
from app.coord.membership import HANDOVER_KEY, Membership
from app.coord.redis_link import RedisLink


async def describe_live(link: RedisLink, shard_count: int, grace: float) -> str:
    """A table: each shard's planned pod, lease holder and fencing token, and saved session."""
    members = await Membership(link, "", grace).members()
    plan = assign(shard_count, members) if members else {}

    async def read(r: Redis) -> list[Any]:
        pipe = r.pipeline(transaction=False)
        for shard in range(shard_count):
            pipe.get(f"shard:{shard}:lease")
            pipe.exists(f"shard:{shard}:session")
        pipe.get(HANDOVER_KEY)
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
