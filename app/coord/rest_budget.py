"""One REST budget for the whole bot token: every pod's requests pass one limiter.

`RedisRestBudget` keeps the global pace, the route buckets and the invalid-request count in
Redis (one EVAL per request to admit it, on Redis's clock; one more to report an answer that
teaches something). `LocalRestBudget` runs the same rules (app/coord/rest_schedule.py) in the
process: the embedded default, and each pod's fallback while Redis is away (an admission or
the once-a-second refresh found it unreachable), at `global / pods` (pods from the membership
view); only the refresh asks Redis whether it is back. When it is, the pod keeps its local
rules as well for `RECOVERY_S` (more than the breaker's cooldown, so every pod is back on the
shared pace before any leaves its own): each request takes its local slot first, then a shared
slot no earlier than that, which also puts the shared queue behind what the pod reserved
alone. So the hand back brings no burst.

Past 80 % of the invalid-request limit (per pod, or for the cluster with Redis: every pod
behind one egress address shares it) the budget throttles itself: half the rate, low priority
held back.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Protocol

from redis.asyncio import Redis

from app.config import Settings
from app.coord.membership import Membership
from app.coord.redis_link import RedisLink, RedisUnavailable
from app.coord.rest_schedule import (
    INVALID_WINDOW,
    LEARN_TIMEOUT,
    MARGIN,
    Admission,
    Answer,
    InvalidCount,
    Pacing,
    RestCall,
    Schedule,
)

#: Seconds a pod keeps its local pace after Redis answers again.
RECOVERY_S = 3.0
#: Seconds per slot of the cluster's invalid-request counters.
INVALID_SLOT = 10

_ADMIT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local route, major = ARGV[1], ARGV[2]
local interval, backlog = tonumber(ARGV[3]), tonumber(ARGV[4])
local margin, learn_ms = tonumber(ARGV[5]), tonumber(ARGV[6])
local not_before = now + tonumber(ARGV[7])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
local slot = math.max(tat, not_before)
if slot - now > backlog then
  local ahead = math.max(slot - now - math.max(backlog, 0), 0.25)
  return {0, tostring(ahead), 'global', tostring(tat - now)}
end
local bucket = redis.call('HGET', KEYS[2], route)
local learning, ticket = 0, 0
if not bucket then
  local learn = 'rest:learn:' .. route .. ':' .. major
  if not redis.call('SET', learn, '1', 'NX', 'PX', learn_ms) then
    local left = math.max(redis.call('PTTL', learn), 1) / 1000
    return {0, tostring(left), 'route', tostring(tat - now)}
  end
  learning = 1
elseif bucket ~= '-' then
  local meta = redis.call('HMGET', 'rest:meta:' .. bucket, 'limit', 'per')
  if meta[1] then
    local win = 'rest:win:' .. bucket .. ':' .. major
    local w = redis.call('HMGET', win, 'remaining', 'reset')
    local remaining, reset = tonumber(w[1]), tonumber(w[2])
    if not reset or slot >= reset then
      remaining, reset = tonumber(meta[1]), slot + tonumber(meta[2]) + margin
    end
    if remaining <= 0 then
      return {0, tostring(reset - now), 'route', tostring(tat - now)}
    end
    redis.call('HSET', win, 'remaining', remaining - 1, 'reset', tostring(reset))
    redis.call('PEXPIRE', win, math.ceil((reset - now) * 1000) + 60000)
    local admitted = 'rest:admitted:' .. bucket .. ':' .. major
    ticket = redis.call('INCR', admitted)
    redis.call('PEXPIRE', admitted, math.ceil((reset - now) * 1000) + 60000)
  end
end
tat = slot + interval
redis.call('SET', KEYS[1], tostring(tat), 'PX', math.ceil((tat - now) * 1000) + 60000)
return {1, tostring(slot - now), '', tostring(tat - now), learning, ticket}
"""

_REPORT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local route, major, status, bucket = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4]
redis.call('DEL', 'rest:learn:' .. route .. ':' .. major)
if ARGV[8] == '1' then
  redis.call('INCR', KEYS[3])
  redis.call('EXPIRE', KEYS[3], tonumber(ARGV[9]))
end
if bucket == '' then
  if status >= 200 and status < 300 then redis.call('HSETNX', KEYS[2], route, '-') end
  return 0
end
redis.call('HSET', KEYS[2], route, bucket)
local reset_after = tonumber(ARGV[7]) or 0
local meta = 'rest:meta:' .. bucket
if ARGV[5] ~= '' then
  local per = tonumber(redis.call('HGET', meta, 'per') or '0')
  redis.call('HSET', meta, 'limit', ARGV[5], 'per', tostring(math.max(per, reset_after)))
end
local remaining = tonumber(ARGV[6])
if status == 429 then remaining = 0 end
if remaining == nil then return 0 end
local ticket = tonumber(ARGV[10])
if ticket > 0 then
  -- admitted after this call: not in the answer's count yet
  local admitted = tonumber(redis.call('GET', 'rest:admitted:' .. bucket .. ':' .. major) or '0')
  remaining = math.max(0, remaining - math.max(0, admitted - ticket))
end
local per = tonumber(redis.call('HGET', meta, 'per') or '0')
local win = 'rest:win:' .. bucket .. ':' .. major
local w = redis.call('HMGET', win, 'remaining', 'reset')
local reset_at = now + reset_after
local reset = tonumber(w[2])
if not reset or now >= reset then
  redis.call('HSET', win, 'remaining', remaining, 'reset', tostring(reset_at))
elseif reset_at > reset - per / 2 then
  redis.call('HSET', win, 'remaining', math.min(tonumber(w[1]), remaining),
             'reset', tostring(math.max(reset, reset_at)))
end
redis.call('PEXPIRE', win, math.ceil(math.max(reset or 0, reset_at) - now) * 1000 + 60000)
return 0
"""

GLOBAL_KEY = "rest:tat"
ROUTES_KEY = "rest:routes"


@dataclass(frozen=True, slots=True)
class RestPolicy:
    """The budget's numbers.

    Discord's global limit and the share of it used; the invalid-request limit per 10 minutes
    and the share past which the budget throttles itself.
    """

    global_limit: int = 50
    fraction: float = 0.9
    invalid_limit: int = 10_000
    throttle_at: float = 0.8

    @classmethod
    def of(cls, settings: Settings) -> RestPolicy:
        """REST_GLOBAL_LIMIT and REST_INVALID_LIMIT."""
        return cls(settings.rest_global_limit, invalid_limit=settings.rest_invalid_limit)

    @property
    def rate(self) -> float:
        """Requests per second admitted across the cluster."""
        return self.global_limit * self.fraction

    def throttles(self, invalid: int) -> bool:
        """Whether `invalid` responses within the window call for self-throttling."""
        return invalid >= self.throttle_at * self.invalid_limit


@dataclass(frozen=True, slots=True)
class BudgetState:
    """What the budget reports (for metrics and the runbook)."""

    pod_invalid: int
    cluster_invalid: int
    throttled: bool
    #: Limiting on its own (Redis away, or just back).
    local: bool
    pods: int


class RestBudget(Protocol):
    """Admits REST requests and learns from their answers."""

    async def admit(self, call: RestCall) -> Admission:
        """Reserve `call`'s turn, or say how long to wait before asking again."""
        ...

    async def report(
        self, call: RestCall, answer: Answer, admission: Admission | None = None
    ) -> None:
        """What the answer to `call` (admitted by `admission`) teaches: buckets, invalid ones."""
        ...

    async def refresh(self) -> BudgetState:
        """Re-read the shared state (about once a second): counts, throttling, pods."""
        ...


class LocalRestBudget:
    """The budget of one process (`pods` = 1), or its share of the cluster's."""

    def __init__(self, policy: RestPolicy) -> None:
        self.policy = policy
        self.schedule = Schedule()
        self.invalid = InvalidCount()
        self.throttled = False

    @property
    def pods(self) -> int:
        """The processes sharing the limits (this one takes its share of each)."""
        return self.schedule.share

    @pods.setter
    def pods(self, count: int) -> None:
        self.schedule.share = count

    @property
    def pacing(self) -> Pacing:
        """This process's pace: its share of the rate, halved while throttled."""
        return Pacing.of(self.policy.rate / self.pods, self.throttled)

    async def admit(self, call: RestCall) -> Admission:
        """Reserve `call`'s turn in this process."""
        return self.schedule.admit(call, self.pacing, time.time())

    async def report(
        self, call: RestCall, answer: Answer, admission: Admission | None = None
    ) -> None:
        """Learn the bucket; count an invalid answer."""
        now = time.time()
        self.schedule.learn(call, answer, now, admission.local_ticket if admission else 0)
        if answer.invalid:
            self.invalid.add(now)

    async def refresh(self) -> BudgetState:
        """The invalid count decides the throttling."""
        count = self.invalid.total(time.time())
        self.throttled = self.policy.throttles(count)
        return BudgetState(count, count, self.throttled, True, self.pods)


class RedisRestBudget:
    """The cluster's budget in Redis, with a local fallback at `global / pods`."""

    def __init__(self, link: RedisLink, policy: RestPolicy, membership: Membership) -> None:
        self.link = link
        self.policy = policy
        self.membership = membership
        self.local = LocalRestBudget(policy)
        #: The shared queue's end as this pod last saw it (local clock).
        self.horizon = 0.0
        self.cluster_invalid = 0
        #: Limiting alone (Redis away); then, until when the local pace applies beside the shared.
        self._alone = False
        self._recovering_until = 0.0
        self._plain_routes: set[str] = set()
        #: The (route, major) whose first request this pod sent: its answer must reach Redis.
        self._learning: set[tuple[str, str]] = set()

    @property
    def pacing(self) -> Pacing:
        """The cluster's pace, halved while throttled."""
        return Pacing.of(self.policy.rate, self.local.throttled)

    async def admit(self, call: RestCall) -> Admission:
        """One EVAL; the local rules alone while Redis is away, and before it just after.

        An interaction's callback and follow-ups never ask Redis: exempt from the global
        limit, their bucket is their interaction's own, and one pod handles an interaction.

        While alone, only the refresh asks Redis whether it is back: a request never waits for
        that probe.
        """
        if self._alone or call.exempt:
            return await self.local.admit(call)
        own: Admission | None = None
        if time.time() < self._recovering_until:
            own = await self.local.admit(call)
            if not own.granted:
                return own
        pacing = self.pacing
        args = (
            call.route,
            call.major,
            pacing.interval,
            pacing.backlog_for(call.priority),
            MARGIN,
            int(LEARN_TIMEOUT * 1000),
            own.wait if own else 0.0,
        )
        try:
            [raw] = await self.link.direct(("EVAL", _ADMIT, 2, GLOBAL_KEY, ROUTES_KEY, *args))
        except RedisUnavailable:
            self._go_alone()
            return own or await self.local.admit(call)
        granted, wait, blocked, ahead = (_text(v) for v in raw[:4])
        self.horizon = max(self.horizon, time.time() + float(ahead))
        learning, ticket = (int(v) for v in raw[4:6]) if len(raw) > 5 else (0, 0)
        if learning:
            self._learning.add((call.route, call.major))
        return Admission(
            granted == "1",
            float(wait),
            blocked or None,
            local_ticket=own.local_ticket if own else 0,
            shared_ticket=ticket,
        )

    def _go_alone(self) -> None:
        """Redis is unreachable: pace alone, after what this pod reserved in the shared queue."""
        if not self._alone:
            self._alone = True
            self.local.schedule.tat = max(self.local.schedule.tat, self.horizon)

    def _back(self, now: float) -> None:
        """Redis answered: keep the local rules beside the shared ones for RECOVERY_S."""
        if self._alone:
            self._alone = False
            self._recovering_until = now + RECOVERY_S

    async def report(
        self, call: RestCall, answer: Answer, admission: Admission | None = None
    ) -> None:
        """Teach the cluster (and this pod's fallback) what the answer says."""
        await self.local.report(call, answer, admission)
        if call.exempt and not answer.invalid:
            return  # its bucket is its interaction's own, which only this pod uses: no Redis
        teaches = (call.route, call.major) in self._learning
        self._learning.discard((call.route, call.major))
        if answer.bucket is None and not answer.invalid and not teaches:
            if call.route in self._plain_routes:
                return
            if 200 <= answer.status < 300:
                self._plain_routes.add(call.route)
        slot_key = f"rest:invalid:{int(time.time()) // INVALID_SLOT}"
        args = (
            call.route,
            call.major,
            answer.status,
            "" if call.exempt else answer.bucket or "",  # an exempt call only counts as invalid
            "" if answer.limit is None else answer.limit,
            "" if answer.remaining is None else answer.remaining,
            answer.reset_after or answer.retry_after or 0.0,
            int(answer.invalid),
            INVALID_WINDOW + 2 * INVALID_SLOT,
            admission.shared_ticket if admission else 0,
        )
        try:
            await self.link.direct(("EVAL", _REPORT, 3, GLOBAL_KEY, ROUTES_KEY, slot_key, *args))
        except RedisUnavailable:
            return

    async def refresh(self) -> BudgetState:
        """Heartbeat, count the pods and the cluster's invalid requests, see the queue's end."""
        slot = int(time.time()) // INVALID_SLOT
        keys = [f"rest:invalid:{s}" for s in range(slot - INVALID_WINDOW // INVALID_SLOT + 1,
                                                    slot + 1)]  # fmt: skip

        async def read(r: Redis) -> list[Any]:
            pipe = r.pipeline(transaction=False)
            pipe.mget(keys)
            pipe.get(GLOBAL_KEY)
            return await pipe.execute()

        try:
            await self.membership.heartbeat()
            self.local.pods = max(1, len(await self.membership.members()))
            counts, tat = await self.link.run(read)
            self.cluster_invalid = sum(int(c) for c in counts if c)
            if tat is not None:
                # Redis's clock and ours agree closely enough for a seed (NTP on every node).
                self.horizon = max(self.horizon, float(tat))
            self._back(time.time())
        except RedisUnavailable:
            self._go_alone()
        state = await self.local.refresh()
        worst = max(state.pod_invalid, self.cluster_invalid)
        self.local.throttled = self.policy.throttles(worst)
        local = self._alone or time.time() < self._recovering_until
        return BudgetState(
            state.pod_invalid, self.cluster_invalid, self.local.throttled, local, self.local.pods
        )


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
