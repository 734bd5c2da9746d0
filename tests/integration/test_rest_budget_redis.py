"""The REST budget's Lua scripts against the real Redis: two budgets stand for two pods."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as redis

from app.coord.membership import Membership
from app.coord.redis_link import RedisLink
from app.coord.rest_budget import ROUTES_KEY, RedisRestBudget, RestPolicy
from app.coord.rest_schedule import MARGIN, Answer, Priority, RestCall
from tests.services import private_redis
from tests.unit.test_rest_schedule import BUCKET, MESSAGES
from testsupport.keys import delete_keys
from testsupport.waiting import wait_for

POLICY = RestPolicy(global_limit=20, invalid_limit=10)


def pods(url: str, count: int = 2) -> list[RedisRestBudget]:
    """`count` budgets on one Redis, as `count` pods would have them."""
    links = [RedisLink(url) for _ in range(count)]
    return [
        RedisRestBudget(link, POLICY, Membership(link, f"pod-{i}", grace=60.0))
        for i, link in enumerate(links)
    ]


@pytest.fixture
async def budgets(
    redis_server_url: str, raw_redis: redis.Redis
) -> AsyncIterator[list[RedisRestBudget]]:
    await delete_keys(raw_redis, "rest:*", "cluster:members")
    made = pods(redis_server_url)
    yield made
    for budget in made:
        await budget.link.close()


async def slots(budget: RedisRestBudget, call: RestCall, count: int) -> list[float]:
    """Reserve `count` turns for `call`, one after the other; when each may go (local clock)."""
    granted = []
    for _ in range(count):
        admission = await budget.admit(call)
        assert admission.granted, admission
        granted.append(time.time() + admission.wait)
    return granted


def busiest_second(times: list[float]) -> int:
    """The most of `times` within any one second."""
    ordered = sorted(times)
    return max(sum(1 for u in ordered[i:] if u < t + 1.0) for i, t in enumerate(ordered))


async def test_two_pods_never_admit_more_than_the_rate_in_any_second(
    budgets: list[RedisRestBudget],
) -> None:
    plain = RestCall.of("GET", "/guilds/1/members")
    await budgets[0].report(plain, Answer(200))  # a route without a bucket: the global pace alone
    a, b = await asyncio.gather(*(slots(budget, plain, 60) for budget in budgets))
    assert busiest_second(a + b) <= POLICY.global_limit
    assert max(a + b) - min(a + b) > 119 / POLICY.rate - 0.2  # one queue, not two
    low = RestCall(plain.route, plain.major, priority=Priority.LOW)
    refused = await budgets[1].admit(low)  # the queue is seconds long: low priority waits
    assert (refused.granted, refused.blocked_by) == (False, "global")
    callback = RestCall.of("POST", "/interactions/1/tok/callback")
    assert (await budgets[1].admit(callback)).wait == 0.0  # never queued


async def test_a_route_bucket_learned_by_one_pod_is_respected_by_the_other(
    budgets: list[RedisRestBudget],
) -> None:
    a, b = budgets
    assert (await a.admit(MESSAGES)).granted
    assert (await b.admit(MESSAGES)).blocked_by == "route"  # the first request goes alone
    await a.report(MESSAGES, Answer.of(200, BUCKET))  # one left in this 5 s window
    assert (await b.admit(MESSAGES)).granted
    blocked = await a.admit(MESSAGES)
    assert blocked.blocked_by == "route" and 4.0 < blocked.wait <= 5.0 + 0.25
    other = RestCall.of("POST", "/channels/8/messages")  # another channel: its own window
    assert [(await pod.admit(other)).granted for pod in (b, a, b)] == [True, True, False]


async def test_an_answer_takes_off_what_any_pod_admitted_after_it(
    budgets: list[RedisRestBudget],
) -> None:
    """Our window ends; Discord's began with `first`: of its 4 left, b's two are taken."""
    a, b = budgets
    short = {**BUCKET, "X-RateLimit-Limit": "5", "X-RateLimit-Reset-After": "0.2"}
    assert (await a.admit(MESSAGES)).granted
    await a.report(MESSAGES, Answer.of(200, {**short, "X-RateLimit-Remaining": "4"}))
    first = await a.admit(MESSAGES)
    assert [(await b.admit(MESSAGES)).granted for _ in range(2)] == [True, True]
    assert first.shared_ticket > 0
    ended = time.time() + 0.2 + MARGIN + 0.05
    await wait_for(lambda: time.time() > ended, within=2)  # the condition is our window's end
    discords = {**BUCKET, "X-RateLimit-Limit": "5", "X-RateLimit-Remaining": "4"}
    await a.report(MESSAGES, Answer.of(200, discords), first)
    assert [(await pod.admit(MESSAGES)).granted for pod in (a, b, a)] == [True, True, False]


async def test_invalid_requests_are_counted_for_the_cluster(
    budgets: list[RedisRestBudget],
) -> None:
    a, b = budgets
    call = RestCall.of("PUT", "/guilds/1/bans/2")
    for _ in range(3):
        await a.report(call, Answer.of(429, {"X-RateLimit-Scope": "global", "Retry-After": "1"}))
    await b.report(call, Answer.of(403, {}))
    await b.report(call, Answer.of(429, {"X-RateLimit-Scope": "shared", "Retry-After": "1"}))
    await b.report(call, Answer.of(429, {"generated-by-proxy": "true", "Retry-After": "1"}))
    seen_a, seen_b = await a.refresh(), await b.refresh()
    assert (seen_a.pod_invalid, seen_a.cluster_invalid) == (3, 4)
    assert (seen_b.pod_invalid, seen_b.cluster_invalid, seen_b.pods) == (1, 4, 2)
    assert not seen_b.throttled
    await b.report(call, Answer.of(401, {}))  # 5 of 10 for the cluster: not yet 80 %
    await b.report(call, Answer.of(401, {}))
    await b.report(call, Answer.of(401, {}))  # 7 ...
    await b.report(call, Answer.of(401, {}))  # ... 8: both pods throttle, not only the one
    assert (await a.refresh()).throttled and (await b.refresh()).throttled


async def test_a_pod_that_left_is_not_brought_back_by_its_budget_refresh(
    budgets: list[RedisRestBudget],
) -> None:
    """The budget heartbeats to count the pods; after a pod left (SIGTERM) that must not make
    it a member again, or the others would never take over its shards."""
    a, b = budgets
    assert (await a.refresh()).pods == 1 and (await b.refresh()).pods == 2
    await b.membership.leave()
    assert (await b.refresh()).pods == 1
    assert await a.membership.members() == ["pod-0"]


async def test_back_from_an_outage_the_shared_queue_starts_behind_what_a_pod_took_alone() -> None:
    async with private_redis() as server:
        a, b = pods(server.url)
        plain = RestCall.of("GET", "/guilds/1/members")
        try:
            await a.report(plain, Answer(200))
            await b.membership.heartbeat()
            assert (await a.refresh()).pods == 2  # each one's share: half the rate
            await server.stop()
            assert (await a.refresh()).local
            alone = await slots(a, plain, 8)
            gaps = [later - earlier for earlier, later in itertools.pairwise(alone)]
            assert min(gaps) > 2 / POLICY.rate - 0.01  # its share: half the rate
            await server.start()  # empty: the shared queue and the learned routes are gone
            await wait_for(lambda: a.link.usable, within=5)  # the breaker's cooldown
            assert (await a.refresh()).local  # back, and keeping its own pace for a while
            assert a.link.down_for is None
            first = (await slots(a, plain, 1))[0]
            assert first >= max(alone) + 2 / POLICY.rate - 0.01
            await a.report(plain, Answer(200))  # teaches the new Redis the route again
            other = await b.admit(plain)  # b never saw the outage: the shared pace alone
            assert other.granted and time.time() + other.wait >= first
        finally:
            for pod in (a, b):
                await pod.link.close()


async def test_interaction_calls_never_reach_redis_unless_invalid(
    budgets: list[RedisRestBudget], raw_redis: redis.Redis
) -> None:
    """Each interaction is a route of its own: stored in Redis, they would grow without end."""
    a, b = budgets
    bucket = {"X-RateLimit-Bucket": "i", "X-RateLimit-Limit": "5", "X-RateLimit-Remaining": "4"}
    for i in range(20):
        for path in (f"/interactions/{i}/tok{i}/callback", f"/webhooks/1/tok{i}"):
            call = RestCall.of("POST", path)
            assert (await a.admit(call)).granted
            await a.report(call, Answer.of(200, bucket))
    assert [key async for key in raw_redis.scan_iter("rest:*")] == []
    expired = RestCall.of("POST", "/interactions/99/late/callback")
    await a.report(expired, Answer.of(401, bucket))  # still counted as an invalid request
    assert ((await b.refresh()).cluster_invalid, await raw_redis.hlen(ROUTES_KEY)) == (1, 0)
