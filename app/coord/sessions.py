"""Gateway sessions kept across processes, so that a shard's next owner can RESUME it.

A process saves each shard's session id, last sequence number and resume URL (under the shard's
lease, stamped with its fencing token) and deletes it when the session ends for good. The next
process that holds the lease RESUMEs the session if it is there, instead of spending an
identify, and Discord replays what the shard missed in between.
"""

from __future__ import annotations

import contextlib
import json
import logging
from dataclasses import asdict, dataclass
from typing import Protocol

from app.coord.redis_link import RedisLink, RedisUnavailable

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SavedSession:
    """What RESUME needs."""

    session_id: str
    sequence: int
    resume_url: str
    fence: int = 0


class SessionStore(Protocol):
    """Save, load and forget shard sessions."""

    async def save(self, shard_id: int, session: SavedSession) -> None:
        """Remember the shard's session for its next owner."""
        ...

    async def load(self, shard_id: int) -> SavedSession | None:
        """The saved session, if any."""
        ...

    async def forget(self, shard_id: int) -> None:
        """Drop the saved session."""
        ...


class LocalSessionStore:
    """Sessions in this process only: nothing survives a restart (the embedded default)."""

    def __init__(self) -> None:
        self._sessions: dict[int, SavedSession] = {}

    async def save(self, shard_id: int, session: SavedSession) -> None:
        """Remember the session."""
        self._sessions[shard_id] = session

    async def load(self, shard_id: int) -> SavedSession | None:
        """The remembered session, if any."""
        return self._sessions.get(shard_id)

    async def forget(self, shard_id: int) -> None:
        """Drop the session."""
        self._sessions.pop(shard_id, None)


class RedisSessionStore:
    """`shard:{id}:session` keys that expire after `ttl` (Discord forgets sessions too)."""

    def __init__(self, link: RedisLink, ttl: float = 120.0, prefix: str = "shard") -> None:
        self.link = link
        self.ttl = ttl
        self.prefix = prefix

    def _key(self, shard_id: int) -> str:
        return f"{self.prefix}:{shard_id}:session"

    async def save(self, shard_id: int, session: SavedSession) -> None:
        """Store the session; a failure only means the next owner identifies instead."""
        data = json.dumps(asdict(session))
        with contextlib.suppress(RedisUnavailable):
            await self.link.run(lambda r: r.set(self._key(shard_id), data, px=int(self.ttl * 1000)))

    async def load(self, shard_id: int) -> SavedSession | None:
        """The stored session, or None (also when Redis is away)."""
        try:
            raw = await self.link.run(lambda r: r.get(self._key(shard_id)))
        except RedisUnavailable:
            return None
        if raw is None:
            return None
        try:
            return SavedSession(**json.loads(raw))
        except (TypeError, ValueError):
            log.warning("ignoring an unreadable saved session for shard %d", shard_id)
            return None

    async def forget(self, shard_id: int) -> None:
        """Delete the stored session."""
        with contextlib.suppress(RedisUnavailable):
            await self.link.run(lambda r: r.delete(self._key(shard_id)))
