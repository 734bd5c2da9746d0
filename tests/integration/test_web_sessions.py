"""The web console's session stores: the database's (embedded default) and Redis."""

from __future__ import annotations

import asyncio

from app.web.sessions import DatabaseStore, RedisStore, Store
from tests.conftest import Backend


async def _behaves(store: Store) -> None:
    await store.put("session:a", {"user_id": 1, "csrf": "x"}, 60)
    assert await store.get("session:a") == {"user_id": 1, "csrf": "x"}
    await store.put("session:a", {"user_id": 2}, 60)  # a second put replaces
    assert await store.get("session:a") == {"user_id": 2}
    takers = await asyncio.gather(*(store.take("session:a") for _ in range(4)))
    assert takers.count({"user_id": 2}) == 1 and takers.count(None) == 3  # used once
    assert await store.get("session:a") is None and await store.take("missing") is None
    await store.put("state:b", {"verifier": "v"}, 0.001)
    await asyncio.sleep(0.01)  # the record's own clock, not synchronisation
    assert await store.get("state:b") is None and await store.take("state:b") is None


async def test_the_database_store(backend: Backend) -> None:
    await _behaves(DatabaseStore())


async def test_the_redis_store(pg: Backend, redis_server_url: str) -> None:
    store = RedisStore(redis_server_url)
    try:
        await _behaves(store)
    finally:
        await store.close()
