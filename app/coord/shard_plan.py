"""Which pod runs which shards: a fixed plan of SHARDS_PER_POD consecutive shards per pod."""

from __future__ import annotations

import math
import os
import re
import socket
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from app.coord.redis_link import RedisLink


class OutsidePlan(Exception):
    """This pod's index has no shards in the plan (too many replicas)."""


@dataclass(frozen=True, slots=True)
class ShardPlan:
    """SHARD_COUNT shards, SHARDS_PER_POD per pod: pod i owns [i*K, (i+1)*K)."""

    shard_count: int
    shards_per_pod: int

    def __post_init__(self) -> None:
        """Refuse a plan without shards or pods."""
        if self.shard_count < 1 or self.shards_per_pod < 1:
            raise ValueError("shard count and shards per pod must be at least 1")

    @property
    def pods_needed(self) -> int:
        """Replicas needed to run every shard."""
        return math.ceil(self.shard_count / self.shards_per_pod)

    def shards_of(self, pod_index: int) -> list[int]:
        """The shards pod `pod_index` runs; OutsidePlan when it has none."""
        start = pod_index * self.shards_per_pod
        shards = list(range(start, min(start + self.shards_per_pod, self.shard_count)))
        if pod_index < 0 or not shards:
            raise OutsidePlan(
                f"pod {pod_index} is outside the shard plan: {self.shard_count} shards at "
                f"{self.shards_per_pod} per pod need pods 0..{self.pods_needed - 1}"
            )
        return shards

    def describe(self) -> str:
        """A table of pods and their shards, for `python -m app shard-plan`."""
        lines = [
            f"{self.shard_count} shards, {self.shards_per_pod} per pod: "
            f"{self.pods_needed} pod(s) needed",
        ]
        for pod in range(self.pods_needed):
            shards = self.shards_of(pod)
            lines.append(
                f"  pod {pod}: shards {shards[0]}-{shards[-1]}"
                if len(shards) > 1
                else f"  pod {pod}: shard {shards[0]}"
            )
        return "\n".join(lines)


def pod_index(env: Mapping[str, str] | None = None, hostname: str | None = None) -> int:
    """This pod's index: POD_INDEX (the StatefulSet pod-index label), else the hostname ordinal."""
    env = os.environ if env is None else env
    if env.get("POD_INDEX", "").strip():
        value = env["POD_INDEX"].strip()
        if not value.isdigit():
            raise ValueError(f"POD_INDEX must be a whole number, not {value!r}")
        return int(value)
    hostname = hostname or socket.gethostname()
    match = re.search(r"-(\d+)$", hostname)
    if match is None:
        return 0
    return int(match.group(1))


def shard_for_guild(guild_id: int, shard_count: int) -> int:
    """Discord's rule: the shard that receives a guild's events."""
    return (guild_id >> 22) % shard_count


SHARD_COUNT_KEY = "cluster:shard_count"


async def cluster_shard_count(link: RedisLink | None, fetch: Callable[[], Awaitable[int]]) -> int:
    """SHARD_COUNT=auto: Discord's recommendation, fetched once per cluster and kept in Redis.

    The first pod to ask stores it; every later pod (and restart) uses the stored number, so
    all pods agree even if Discord's recommendation changes meanwhile. Delete the key to
    re-read it (which changes the shard count: see docs/operations.md).
    """
    if link is None:
        return await fetch()
    stored = await link.run(lambda r: r.get(SHARD_COUNT_KEY))
    if stored is None:
        recommended = await fetch()
        await link.run(lambda r: r.set(SHARD_COUNT_KEY, recommended, nx=True))
        stored = await link.run(lambda r: r.get(SHARD_COUNT_KEY))
        assert stored is not None, "SET NX stored ours, or another pod's came first"
    return int(stored)
