"""Deleting Redis keys by pattern: the servers may be shared, so never FLUSHDB."""

from __future__ import annotations

import redis.asyncio as redis


async def delete_keys(client: redis.Redis, *patterns: str) -> None:
    """Delete the keys matching `patterns` (SCAN, then DEL in batches of what was found)."""
    for pattern in patterns:
        keys = [key async for key in client.scan_iter(match=pattern, count=1000)]
        if keys:
            await client.delete(*keys)
