"""Which live pod runs which shard: the same answer on every pod, balanced, and stable.

Pods are ranked by their index (pod-0 first). The assignment for N pods is built from the one
for N-1 by giving the new pod floor(S/N) shards, each time the highest-numbered shard of the
currently fullest pod. So:

- every pod holds floor(S/N) or ceil(S/N) shards;
- adding a pod moves shards only to the new pod (the minimum: exactly what it must hold), and
  removing the highest-ranked pod moves only its shards back (a StatefulSet scales down from the
  highest ordinal);
- pod 0 keeps shard 0 (which receives DMs) in every assignment.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache


@lru_cache(maxsize=256)
def ranks(shard_count: int, pods: int) -> tuple[int, ...]:
    """The rank (0..pods-1) that owns each shard."""
    if shard_count < 1 or pods < 1:
        raise ValueError("need at least one shard and one pod")
    owner = [0] * shard_count
    for new in range(1, min(pods, shard_count)):
        for _ in range(shard_count // (new + 1)):
            held: dict[int, list[int]] = {}
            for shard, rank in enumerate(owner):
                held.setdefault(rank, []).append(shard)
            fullest = min(held, key=lambda r: (-len(held[r]), r))
            owner[held[fullest][-1]] = new
    return tuple(owner)


def assign(shard_count: int, members: Sequence[str]) -> dict[int, str]:
    """Each shard's member, for members already sorted by rank; pods beyond S get nothing."""
    owners = ranks(shard_count, len(members))
    return {shard: members[rank] for shard, rank in enumerate(owners)}


def moves(before: dict[int, str], after: dict[int, str]) -> int:
    """How many shards change owner between two assignments."""
    return sum(1 for shard, owner in after.items() if before.get(shard) != owner)
