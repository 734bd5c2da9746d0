"""A shard's guild state, left by the process that releases the shard for the one that takes it.

A RESUME in a new process brings no GUILD_CREATE. Rather than load every guild over REST, the
releasing process writes the guilds it holds (GUILD_CREATE-shaped payloads) under the fencing
token of its lease, stamped with the session they belong to; the next owner uses them only if
its saved session is that very session at that very sequence.

Each guild is an entry of its own (compact JSON, zlib-compressed), so that the releasing
process can encode them while the shard still serves and the next owner can rebuild each one
when first needed rather than all before RESUME. The blob is a header line (JSON: session,
sequence, fence) then, per guild, its id (8 bytes), the entry's length (4 bytes) and the entry.
It expires with the saved session.
"""

from __future__ import annotations

import contextlib
import json
import logging
import struct
import zlib
from dataclasses import dataclass
from typing import Any, Protocol

from app.coord.redis_link import RedisLink, RedisUnavailable

log = logging.getLogger(__name__)

MAGIC = b"guilds/2 "
_FRAME = struct.Struct(">QI")  # guild id, entry length


def pack_guild(payload: dict[str, Any]) -> bytes:
    """One guild's entry: its payload as compact JSON, zlib-compressed."""
    return zlib.compress(json.dumps(payload, separators=(",", ":")).encode(), 1)


def unpack_guild(entry: bytes) -> dict[str, Any]:
    """The payload `pack_guild` wrote; ValueError (or zlib.error) if it is not one."""
    payload = json.loads(zlib.decompress(entry))
    if not isinstance(payload, dict):
        raise ValueError("a guild entry is not a JSON object")
    return payload


@dataclass(frozen=True, slots=True)
class ShardSnapshot:
    """The guilds of one shard as of one session's sequence number, under one lease."""

    session_id: str
    sequence: int
    fence: int
    #: Guild id -> its entry (`pack_guild`).
    guilds: dict[int, bytes]

    def encode(self) -> bytes:
        """The header line, then each guild's id, entry length and entry."""
        head = {"session_id": self.session_id, "sequence": self.sequence, "fence": self.fence}
        parts = [MAGIC, json.dumps(head).encode(), b"\n"]
        for guild_id, entry in self.guilds.items():
            parts += [_FRAME.pack(guild_id, len(entry)), entry]
        return b"".join(parts)

    @classmethod
    def decode(cls, blob: bytes) -> ShardSnapshot:
        """The snapshot `encode` wrote (its entries still packed); ValueError if it is not one."""
        if not blob.startswith(MAGIC):
            raise ValueError("not a guild snapshot of this version")
        end = blob.find(b"\n")
        fields = json.loads(blob[len(MAGIC) : end])
        view, at, guilds = memoryview(blob), end + 1, {}
        while at < len(blob):
            if at + _FRAME.size > len(blob):
                raise ValueError("a guild snapshot cut short")
            guild_id, size = _FRAME.unpack_from(view, at)
            at += _FRAME.size
            if at + size > len(blob):
                raise ValueError("a guild snapshot cut short")
            guilds[guild_id] = bytes(view[at : at + size])
            at += size
        return cls(str(fields["session_id"]), int(fields["sequence"]), int(fields["fence"]), guilds)

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
