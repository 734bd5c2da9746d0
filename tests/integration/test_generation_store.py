"""The shard generation record in Redis: changed only under its fence, restored after a loss."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from app.coord.generations import GenerationStore, Record, Refused
from app.coord.redis_link import RedisLink
from testsupport.keys import delete_keys


@pytest.fixture
async def store(redis_server_url: str) -> AsyncIterator[GenerationStore]:
    link = RedisLink(redis_server_url)
    generations = GenerationStore(link, key="test:generations")
    await delete_keys(link.client, "test:generations")
    yield generations
    await delete_keys(link.client, "test:generations")
    await link.close()


async def test_a_change_applies_to_the_record_it_read(store: GenerationStore) -> None:
    assert await store.read() is None  # never resharded
    started = await store.change(4, lambda rec, now: rec.start(8, now, "test"))
    assert started is not None and started.fence == 1
    stored = await store.read()
    assert stored == started and stored.in_progress() is not None
    with pytest.raises(Refused, match="in progress"):
        await store.change(4, lambda rec, now: rec.start(16, now, "second"))
    assert await store.change(4, lambda rec, now: None) is None  # nothing wanted: no write
    assert (await store.read()) == started


async def test_a_writer_with_a_stale_fence_is_not_applied(store: GenerationStore) -> None:
    stale = Record.first(4)
    await store.change(4, lambda rec, now: rec.start(8, now, "first"))
    assert not await store._swap(stale.fence, stale.start(16, 0, "late").dumps())
    stored = await store.read()
    assert stored is not None and stored.in_progress().shard_count == 8  # type: ignore[union-attr]


async def test_a_lost_record_is_restored_once(store: GenerationStore) -> None:
    record = await store.change(4, lambda rec, now: rec.start(8, now, "test"))
    assert record is not None
    await delete_keys(store.link.client, "test:generations")  # Redis restarted empty
    assert await store.restore(record)
    assert not await store.restore(Record.first(4))  # a second pod's older view loses
    assert await store.read() == record
