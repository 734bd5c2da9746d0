"""Exactly one reply per prefix command, however many times its message is delivered.

After a process is killed, the next owner of its shards RESUMEs their sessions from the last
saved sequence (the last handled, saved about once a second: app/bot/handled_sequence.py), so
Discord replays messages the dead process had already handled. Their effects are applied once
(idempotency keys), but the reply would be sent again. So the first reply of a command claims
its message: `claim(message_id)` is True for exactly one caller while the claim lives (`ttl`,
longer than any replay). What a later delivery does with a claimed message (answer under the
same nonce while Discord remembers it, else stay silent) is app/bot/replies.py's rule.

Interactions need none of this: Discord accepts one response per interaction (40060).
When Redis is away, every claim succeeds: a duplicate reply is better than none.
"""

from __future__ import annotations

import time
from typing import Protocol

from app.coord.redis_link import RedisLink, RedisUnavailable

#: How long a claim lives: longer than a session stays resumable, so longer than any replay.
CLAIM_TTL = 15 * 60.0


class ReplyClaims(Protocol):
    """claim(message_id) -> True for the one caller that may answer the message."""

    async def claim(self, message_id: int) -> bool:
        """True for the first caller that claims `message_id`, False for every later one."""
        ...


class LocalReplyClaims:
    """Claims in this process (the embedded default), bounded in size."""

    def __init__(self, ttl: float = CLAIM_TTL, max_claims: int = 100_000) -> None:
        self.ttl = ttl
        self.max_claims = max_claims
        self._until: dict[int, float] = {}

    async def claim(self, message_id: int) -> bool:
        """True unless the message was claimed within the TTL."""
        now = time.monotonic()
        if self._until.get(message_id, 0.0) > now:
            return False
        if len(self._until) >= self.max_claims:
            self._until = {k: v for k, v in self._until.items() if v > now}
        self._until[message_id] = now + self.ttl
        return True


class RedisReplyClaims:
    """`answered:{message id}` keys (SET NX PX), shared by every process."""

    def __init__(self, link: RedisLink, ttl: float = CLAIM_TTL) -> None:
        self.link = link
        self.ttl = ttl

    async def claim(self, message_id: int) -> bool:
        """True for the first process to claim the message (and while Redis is away)."""
        key, ttl_ms = f"answered:{message_id}", int(self.ttl * 1000)
        try:
            [claimed] = await self.link.direct(("SET", key, b"1", "NX", "PX", ttl_ms))
            return bool(claimed)
        except RedisUnavailable:
            return True
