"""The REST budget's rules, as plain arithmetic on a clock.

What app/coord/rest_budget.py runs in-process, and what its Lua script runs in Redis (the two
must agree; tests check both).

- **Global pace** (GCRA, no burst): every request that is not an interaction callback reserves
  the next slot, `interval` seconds after the previous one; a request whose slot lies more
  than its priority's `max_backlog` ahead is not reserved and asks again later. So any second
  carries at most `1 / interval + 1` requests, and low-priority work only gets a slot while the
  queue is short.
- **Route buckets**, learned from `X-RateLimit-Bucket/-Limit/-Remaining/-Reset-After`: a
  route's first request (per major parameter) goes alone until its answer tells the bucket;
  a bucket's window is opened by the first request that falls after the last one reset (as on
  Discord) and is judged at the request's slot, not when it asked; a window ends `MARGIN`
  seconds later than Discord's would, to allow for the request's way there.
- **Invalid requests** (401, 403, 429 other than scope `shared` or a proxy's own) are counted
  over a sliding 10 minutes.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import IntEnum

#: Seconds a learned route window outlasts Discord's (the request's way there and back).
MARGIN = 0.25
#: Seconds a route's first request keeps others of its route and major waiting for its answer.
LEARN_TIMEOUT = 2.0
#: Discord's invalid-request window (seconds).
INVALID_WINDOW = 600
#: A route whose answers carry no bucket.
NO_BUCKET = "-"

_MAJOR = re.compile(r"^/(channels|guilds|webhooks)/(\d+)")
_ID = re.compile(r"/\d+(?=/|$)")
EXEMPT_PREFIXES = ("/interactions/", "/webhooks/")


class Priority(IntEnum):
    """Who goes first when the budget is short.

    NORMAL (commands, moderation) before LOW (cache hydration, level-up messages).
    """

    NORMAL = 0
    LOW = 1


@dataclass(frozen=True, slots=True)
class RestCall:
    """One REST request, as the budget sees it.

    Its route (`METHOD /path` with ids as `{id}`), its major parameter, whether it is an
    interaction callback or follow-up (exempt from the global limit), and its priority.
    """

    route: str
    major: str
    exempt: bool = False
    priority: Priority = Priority.NORMAL

    @classmethod
    def of(cls, method: str, path: str, priority: Priority = Priority.NORMAL) -> RestCall:
        """The call of `method path` (a path below the API base, such as `/channels/1/messages`)."""
        match = _MAJOR.match(path)
        major = match.group(2) if match else ""
        route = f"{method.upper()} {_ID.sub('/{id}', path)}"
        return cls(route, major, path.startswith(EXEMPT_PREFIXES), priority)


@dataclass(frozen=True, slots=True)
class Answer:
    """What a response tells the budget: its status and rate-limit headers."""

    status: int
    bucket: str | None = None
    limit: int | None = None
    remaining: int | None = None
    reset_after: float | None = None
    scope: str | None = None
    retry_after: float | None = None
    by_proxy: bool = False

    @classmethod
    def of(cls, status: int, headers: Mapping[str, str]) -> Answer:
        """Read an answer's headers (names in any case)."""
        h = {k.lower(): v for k, v in headers.items()}

        def number(name: str) -> float | None:
            try:
                return float(h[name])
            except (KeyError, ValueError):
                return None

        limit, remaining = number("x-ratelimit-limit"), number("x-ratelimit-remaining")
        return cls(
            status,
            h.get("x-ratelimit-bucket"),
            None if limit is None else int(limit),
            None if remaining is None else int(remaining),
            number("x-ratelimit-reset-after"),
            h.get("x-ratelimit-scope"),
            number("retry-after"),
            "generated-by-proxy" in h,
        )

    @property
    def invalid(self) -> bool:
        """Whether Discord counts it toward the invalid-request limit."""
        if self.status in (401, 403):
            return True
        return self.status == 429 and self.scope != "shared" and not self.by_proxy


@dataclass(frozen=True, slots=True)
class Admission:
    """The budget's verdict on a request.

    `granted` (go after `wait` seconds), or not (ask again after `wait`), `blocked_by`
    "global" or "route" when not.
    """

    granted: bool
    wait: float
    blocked_by: str | None = None
    #: How many requests of the call's route window had been admitted, this one included, in
    #: the local schedule and in the shared one (0: not counted in a window). Given back with
    #: the answer, it tells how many were admitted after this one: the answer's remaining
    #: count does not include them yet.
    local_ticket: int = 0
    shared_ticket: int = 0


@dataclass(frozen=True, slots=True)
class Pacing:
    """How fast the budget admits.

    Seconds between slots, and how far ahead each priority may reserve (LOW: only while the
    queue is short).
    """

    interval: float
    max_backlog: tuple[float, float] = (30.0, 0.5)

    @classmethod
    def of(cls, rate: float, throttled: bool = False) -> Pacing:
        """`rate` requests per second; self-throttling halves it and holds LOW back."""
        if throttled:
            return cls(2.0 / rate, (30.0, -1.0))
        return cls(1.0 / rate)

    def backlog_for(self, priority: Priority) -> float:
        """How far ahead a request of `priority` may reserve (negative: not at all)."""
        return self.max_backlog[priority]


def held_back(backlog: float, allowed: float) -> float:
    """How long a request refused for a `backlog` beyond its `allowed` one waits to ask again."""
    return max(backlog - max(allowed, 0.0), 0.25)


@dataclass(slots=True)
class _Window:
    remaining: int
    reset_at: float


@dataclass(slots=True)
class _Meta:
    limit: int
    per: float


@dataclass
class Schedule:
    """The global pace and the learned route buckets of one budget.

    The in-process twin of the Lua scripts in rest_budget.py.
    """

    tat: float = 0.0
    #: How many processes split each route bucket, each alone (a pod's fallback while Redis is
    #: away): each takes `limit // share` of a window (at least 1), not the whole of it.
    share: int = 1
    routes: dict[str, str] = field(default_factory=dict)
    meta: dict[str, _Meta] = field(default_factory=dict)
    windows: dict[tuple[str, str], _Window] = field(default_factory=dict)
    learning: dict[tuple[str, str], float] = field(default_factory=dict)
    #: Requests admitted into each (bucket, major)'s windows so far, all windows together.
    admitted: dict[tuple[str, str], int] = field(default_factory=dict)

    def admit(self, call: RestCall, pacing: Pacing, now: float) -> Admission:
        """Reserve a slot for `call` (global, then its route bucket at that slot).

        An interaction's callback and follow-ups go at once: they are exempt from the global
        limit, and their bucket is their interaction's own (nothing is kept per interaction).
        """
        if call.exempt:
            return Admission(True, 0.0)
        slot = max(self.tat, now)
        backlog = pacing.backlog_for(call.priority)
        if slot - now > backlog:
            return Admission(False, held_back(slot - now, backlog), "global")
        bucket = self.routes.get(call.route)
        if bucket is None:
            until = self.learning.get((call.route, call.major), 0.0)
            if until > now:
                return Admission(False, until - now, "route")
            self.learning[(call.route, call.major)] = now + LEARN_TIMEOUT
        ticket = 0
        if bucket is not None and bucket != NO_BUCKET:
            window = self._window(bucket, call.major, slot)
            if window is not None:
                if window.remaining <= 0:
                    return Admission(False, window.reset_at - now, "route")
                window.remaining -= 1
                key = (bucket, call.major)
                ticket = self.admitted[key] = self.admitted.get(key, 0) + 1
        self.tat = slot + pacing.interval
        return Admission(True, slot - now, local_ticket=ticket)

    def pace(self, pacing: Pacing, now: float) -> float:
        """Reserve the next global slot whatever the backlog; seconds until it."""
        slot = max(self.tat, now)
        self.tat = slot + pacing.interval
        return slot - now

    def _window(self, bucket: str, major: str, slot: float) -> _Window | None:
        meta = self.meta.get(bucket)
        if meta is None:
            return None
        window = self.windows.get((bucket, major))
        if window is None or slot >= window.reset_at:
            window = _Window(self._quota(meta.limit), slot + meta.per + MARGIN)
            self.windows[(bucket, major)] = window
        return window

    def _quota(self, limit: int) -> int:
        return max(1, limit // self.share)

    def learn(self, call: RestCall, answer: Answer, now: float, ticket: int = 0) -> None:
        """What `answer` (to `call`, at `now`, admitted with `ticket`) tells of its bucket.

        Its remaining count is the bucket's just after `call`: the requests admitted since
        (sent or about to be) are taken off it, since Discord counts them in the same window
        when theirs and ours do not line up.
        """
        if call.exempt:
            return  # one interaction's own bucket: not worth keeping
        self.learning.pop((call.route, call.major), None)
        if answer.bucket is None:
            if 200 <= answer.status < 300:
                self.routes.setdefault(call.route, NO_BUCKET)
            return
        self.routes[call.route] = answer.bucket
        reset_after = answer.reset_after or answer.retry_after or 0.0
        old = self.meta.get(answer.bucket)
        if answer.limit is not None:
            self.meta[answer.bucket] = _Meta(answer.limit, max(reset_after, old.per if old else 0))
        remaining = 0 if answer.status == 429 else answer.remaining
        if remaining is None:
            return
        key, reset_at = (answer.bucket, call.major), now + reset_after
        if ticket:
            remaining = max(0, remaining - (self.admitted.get(key, 0) - ticket))
        window = self.windows.get(key)
        if window is None or now >= window.reset_at:
            meta = self.meta.get(answer.bucket)
            quota = remaining if meta is None else min(remaining, self._quota(meta.limit))
            self.windows[key] = _Window(quota, reset_at)
        elif reset_at > window.reset_at - self.meta[answer.bucket].per / 2:
            # The answer belongs to our current window (not to the one before).
            window.remaining = min(window.remaining, remaining)
            window.reset_at = max(window.reset_at, reset_at)


class InvalidCount:
    """Invalid responses per second over a sliding :data:`INVALID_WINDOW`."""

    def __init__(self, window: int = INVALID_WINDOW) -> None:
        self.window = window
        self._seconds: deque[list[int]] = deque()

    def add(self, now: float, count: int = 1) -> None:
        """Count `count` invalid responses at `now`."""
        second = int(now)
        if self._seconds and self._seconds[-1][0] == second:
            self._seconds[-1][1] += count
        else:
            self._seconds.append([second, count])

    def total(self, now: float) -> int:
        """The count within the window before `now`."""
        while self._seconds and self._seconds[0][0] <= now - self.window:
            self._seconds.popleft()
        return sum(n for _, n in self._seconds)
