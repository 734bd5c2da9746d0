"""A shard's guild state, left by the process that releases the shard for the one that takes it.

A RESUME in a new process brings no GUILD_CREATE. Rather than load every guild over REST, the
releasing process writes the guilds it holds (plain GUILD_CREATE-shaped dicts) under the
fencing token of its lease, stamped with the session they belong to; the next owner uses them
only if its saved session is that very session at that very sequence. The blob is JSON lines
(a header, then one guild a line), zlib-compressed, and expires with the saved session.
"""

from __future__ import annotations

import contextlib
import json
import logging
import zlib
from dataclasses import dataclass
from typing import Any, Protocol

from app.coord.redis_link import RedisLink, RedisUnavailable

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ShardSnapshot:
    """The guilds of one shard as of one session's sequence number, under one lease."""

    session_id: str
    sequence: int
    fence: int
    guilds: list[dict[str, Any]]

    def encode(self) -> bytes:
        """zlib-compressed JSON lines: the header, then one guild a line."""
        head = {"session_id": self.session_id, "sequence": self.sequence, "fence": self.fence}
        lines = [json.dumps(head), *(json.dumps(g, separators=(",", ":")) for g in self.guilds)]
        return zlib.compress("\n".join(lines).encode(), 1)

    @classmethod
    def decode(cls, blob: bytes) -> ShardSnapshot:
        """The snapshot `encode` wrote; ValueError (or zlib.error) if it is not one."""
        head, *guilds = zlib.decompress(blob).decode().split("\n")
        fields = json.loads(head)
        return cls(
            str(fields["session_id"]),
            int(fields["sequence"]),
            int(fields["fence"]),
            [json.loads(line) for line in guilds],
        )

    def belongs_to(self, session_id: str, sequence: int, fence: int) -> bool:
        """Whether this is the state of exactly that session, sequence and lease."""
        return (self.session_id, self.sequence, self.fence) == (session_id, sequence, fence)


class SnapshotStore(Protocol):
    """Keep a shard's snapshot under a fencing token until its next owner takes it."""

    async def save(self, shard_id: int, fence: int, blob: bytes) -> None:
        """Leave an encoded snapshot for the next owner."""
        ...

    async def take(self, shard_id: int, fence: int) -> bytes | None:
        """The encoded snapshot left under `fence`, removed from the store (None: none)."""
        ...


class LocalSnapshotStore:
    """Snapshots in this process (the embedded default: one process holds every shard)."""

    def __init__(self) -> None:
        self._blobs: dict[tuple[int, int], bytes] = {}

    async def save(self, shard_id: int, fence: int, blob: bytes) -> None:
        """Keep the blob; an older one of the shard is dropped."""
        for key in [k for k in self._blobs if k[0] == shard_id]:
            del self._blobs[key]
        self._blobs[(shard_id, fence)] = blob

    async def take(self, shard_id: int, fence: int) -> bytes | None:
        """The blob under `fence`, if any, removed."""
        return self._blobs.pop((shard_id, fence), None)


class RedisSnapshotStore:
    """`shard:{id}:snapshot:{fence}` keys that expire after `ttl` (with the saved session)."""

    def __init__(self, link: RedisLink, ttl: float = 120.0, prefix: str = "shard") -> None:
        self.link = link
        self.ttl = ttl
        self.prefix = prefix

    def _key(self, shard_id: int, fence: int) -> str:
        return f"{self.prefix}:{shard_id}:snapshot:{fence}"

    async def save(self, shard_id: int, fence: int, blob: bytes) -> None:
        """Store the blob; a failure only means the next owner loads guilds lazily."""
        key, ttl = self._key(shard_id, fence), int(self.ttl * 1000)
        with contextlib.suppress(RedisUnavailable):
            await self.link.run(lambda r: r.set(key, blob, px=ttl))

    async def take(self, shard_id: int, fence: int) -> bytes | None:
        """GETDEL of the blob under `fence` (None also when Redis is away)."""
        key = self._key(shard_id, fence)
        try:
            blob = await self.link.run(lambda r: r.getdel(key))
        except RedisUnavailable:
            log.warning("shard %d: Redis is away; no snapshot", shard_id)
            return None
        return blob if isinstance(blob, bytes) or blob is None else blob.encode()
