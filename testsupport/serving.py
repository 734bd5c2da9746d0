"""Whether every guild is served, sampled: for resharding tests and benchmarks.

Served means a connected sandbox session, of the shard count of the generation acting at that
moment (app/coord/generations.py), holds the guild's shard; with no generation record (no
reshard yet, or a stop and start), a connected session of any count.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import redis.asyncio as redis

from app.coord.generations import KEY, Record
from app.coord.shard_plan import shard_for_guild
from sandbox import SandboxServer


@dataclass
class ServingSampler:
    """Every 50 ms: does every guild have a connected session of the generation acting now?"""

    server: SandboxServer
    redis_client: redis.Redis
    #: Per guild, the longest time (s) it had none, and when the current such time began.
    longest: dict[int, float] = field(default_factory=dict)
    _since: dict[int, float] = field(default_factory=dict)
    samples: int = 0
    _task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            raw = await self.redis_client.get(KEY)
            live = {
                (s.shard_count, s.shard_id) for s in self.server.driver.sessions() if s.connected
            }
            counts = sorted({count for count, _ in live})
            if raw:
                record = Record.loads(raw)
                gen = record.acting_at(int(time.time() * 1000)) or record.active()
                counts = [gen.shard_count]
            now = time.monotonic()
            for guild in self.server.world.guilds:
                if any((c, shard_for_guild(guild, c)) in live for c in counts):
                    began = self._since.pop(guild, None)
                    if began is not None:
                        gap = now - began
                        self.longest[guild] = max(self.longest.get(guild, 0.0), gap)
                else:
                    self._since.setdefault(guild, now)
            self.samples += 1
            await asyncio.sleep(0.05)  # the sampling period itself

    async def stop(self) -> float:
        """Stop; the longest time any guild had no session of the acting generation."""
        assert self._task is not None
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        now = time.monotonic()
        for guild, began in self._since.items():
            self.longest[guild] = max(self.longest.get(guild, 0.0), now - began)
        return max(self.longest.values(), default=0.0)
