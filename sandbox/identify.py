"""Discord's IDENTIFY rate limit: one per bucket (shard_id % max_concurrency) per window."""

from __future__ import annotations

import time
from collections.abc import Callable


class IdentifyLimiter:
    """Accepts at most one IDENTIFY per bucket per ``window`` seconds."""

    def __init__(
        self, window: float, max_concurrency: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.window = window
        self.max_concurrency = max(1, max_concurrency)
        self.clock = clock
        self._last: dict[int, float] = {}

    def bucket(self, shard_id: int) -> int:
        """The rate-limit bucket of a shard."""
        return shard_id % self.max_concurrency

    def try_acquire(self, shard_id: int) -> bool:
        """Take the bucket's slot if its window has passed; False means "too fast"."""
        bucket = self.bucket(shard_id)
        moment = self.clock()
        last = self._last.get(bucket)
        if last is not None and moment - last < self.window:
            return False
        self._last[bucket] = moment
        return True

    def spend(self, shard_id: int) -> None:
        """Mark the shard's bucket used now (an IDENTIFY from elsewhere)."""
        self._last[self.bucket(shard_id)] = self.clock()
