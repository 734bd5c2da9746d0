"""Discord's REST limits, simulated: all off unless :class:`~sandbox.settings.Settings` asks.

- **Global limit** (``global_limit``, per bot token, raised per token by ``global_limits``): at
  most N admitted requests per wall-clock second across every connection and process; past it
  a 429 with ``global: true``, ``X-RateLimit-Global``, ``X-RateLimit-Scope: global``,
  ``Retry-After`` and ``Via``. Interaction callbacks and interaction webhooks (follow-ups) are
  exempt: neither counted nor limited.
- **Route buckets** (``route_limits``, e.g. :data:`DISCORD_ROUTE_LIMITS`): a bucket per route
  group and top-level resource (channel, guild, or the whole bot); every answer of such a route
  carries ``X-RateLimit-Limit/-Remaining/-Reset/-Reset-After/-Bucket``; an exhausted bucket
  answers 429 with ``X-RateLimit-Scope: user``. A refused request takes no token of either.
- **Invalid requests**: responses 401, 403 and 429 (except scope ``shared`` and a proxy's own)
  counted per client address over a sliding ``invalid_window``; past ``invalid_limit`` the
  address is banned for ``ban_seconds``: every REST request (callbacks too, not the gateway)
  then gets Cloudflare's HTML 429, without ``Via`` or rate-limit headers. The count restarts
  when a ban begins.
- A :class:`~sandbox.rate_ledger.RateLedger` counts all of it per second.

Discord does not publish per-route numbers: the table's are the sandbox's. Clients must read
the headers, never these constants.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sandbox import rate_ledger
from sandbox.rate_ledger import BanRecord, RateLedger, RateStats
from sandbox.settings import Settings

#: Scope of the simulated Cloudflare ban's 429 (not a Discord scope).
CLOUDFLARE = "cloudflare"
#: What Discord's edge adds to its responses; discord.py retries a 429 only when it is there.
VIA = "1.1 google"
_BAN_PAGE = """<!DOCTYPE html>
<html lang="en-US"><head><meta charset="UTF-8" />
<title>Access denied | discord.com used Cloudflare to restrict access</title></head>
<body><div id="cf-error-details"><h1>Error 1015</h1><h2>You are being rate limited</h2>
<p>The owner of this website (discord.com) has banned you temporarily from accessing this
website.</p></div></body></html>
"""


@dataclass(frozen=True, slots=True)
class RouteLimit:
    """A route bucket: ``limit`` requests per ``per`` seconds for each value of ``major``
    (``channel_id``, ``guild_id``, or None for one bucket for the whole bot), shared by every
    route in ``routes`` (``"METHOD /template"``)."""

    name: str
    limit: int
    per: float
    major: str | None
    routes: tuple[str, ...]

    @property
    def bucket(self) -> str:
        """The ``X-RateLimit-Bucket`` hash (the same for every major value, as on Discord)."""
        return hashlib.sha1(self.name.encode()).hexdigest()[:16]


_G = "/guilds/{guild_id}"
_M = "/guilds/{guild_id}/members/{user_id}"
_C = "/channels/{channel_id}"
#: The sandbox's buckets, modelled on Discord's behaviour (its numbers are not published).
#: ``member-edit`` and ``guild-read`` each span several routes: a client that groups routes
#: by ``X-RateLimit-Bucket`` learns that they share one.
DISCORD_ROUTE_LIMITS: tuple[RouteLimit, ...] = (
    RouteLimit("messages", 5, 5.0, "channel_id", (f"POST {_C}/messages",
                                                  f"PATCH {_C}/messages/{{message_id}}")),
    RouteLimit("delete-message", 5, 1.0, "channel_id", (f"DELETE {_C}/messages/{{message_id}}",)),
    RouteLimit("dm-open", 10, 1.0, None, ("POST /users/@me/channels",)),
    RouteLimit("guild-read", 10, 10.0, "guild_id", (f"GET {_G}", f"GET {_G}/channels",
                                                    f"GET {_G}/roles")),
    RouteLimit("member-read", 10, 1.0, "guild_id", (f"GET {_G}/members", f"GET {_M}")),
    RouteLimit("member-edit", 10, 10.0, "guild_id", (f"PATCH {_M}", f"PUT {_M}/roles/{{role_id}}",
                                                     f"DELETE {_M}/roles/{{role_id}}")),
    RouteLimit("kick", 5, 5.0, "guild_id", (f"DELETE {_M}",)),
    RouteLimit("bans", 5, 5.0, "guild_id", (f"PUT {_G}/bans/{{user_id}}",
                                            f"DELETE {_G}/bans/{{user_id}}", f"GET {_G}/bans",
                                            f"GET {_G}/bans/{{user_id}}")),
    RouteLimit("my-guilds", 1, 1.0, None, ("GET /users/@me/guilds",)),
)  # fmt: skip
#: Interaction endpoints, exempt from the global limit.
EXEMPT_PREFIXES = ("/interactions/{interaction_id}/", "/webhooks/{webhook_id}/{webhook_token}")


@dataclass(frozen=True, slots=True)
class Refusal:
    """A 429 sent instead of running the route: JSON body (or HTML text) and headers."""

    body: dict[str, Any] | str
    headers: dict[str, str]


#: What :meth:`RateLimits.admit` decides: a refusal, or admitted with the route bucket's headers
#: (None when the route has no bucket).
Verdict = Refusal | dict[str, str] | None


def discord_429(
    scope: str, retry_after: float, headers: Mapping[str, str] | None = None
) -> Refusal:
    """Discord's 429 for ``scope`` (global, user or shared), on top of the bucket ``headers``."""
    body = {
        "message": "The resource is being rate limited."
        if scope == "shared"
        else "You are being rate limited.",
        "retry_after": round(retry_after, 3),
        "global": scope == "global",
        "code": 0,
    }
    extra = {
        "Retry-After": str(math.ceil(retry_after)),
        "X-RateLimit-Scope": scope,
        "Via": VIA,
    }
    if scope == "global":
        extra["X-RateLimit-Global"] = "true"
    return Refusal(body, {**(headers or {}), **extra})


def proxy_429(retry_after: float, now: float) -> Refusal:
    """nirn-proxy's own 429 (its exact shape, ``x-ratelimit-after`` included): no ``Via``."""
    body = {"global": False, "message": "You are being rate limited.", "retry_after": retry_after}
    headers = {
        "generated-by-proxy": "true",
        "x-ratelimit-scope": "user",
        "x-ratelimit-limit": "1",
        "x-ratelimit-remaining": "0",
        "x-ratelimit-reset": str(int(now + 1)),
        "x-ratelimit-after": "1",
        "retry-after": str(math.ceil(retry_after)),
    }
    return Refusal(body, headers)


def cloudflare_429() -> Refusal:
    """Cloudflare's "Error 1015" page: HTML, no ``Via``, no rate-limit headers."""
    return Refusal(_BAN_PAGE, {"Content-Type": "text/html; charset=UTF-8", "Server": "cloudflare"})


def scope_of(status: int, headers: Mapping[str, str]) -> str | None:
    """The scope of a 429 from its headers (``proxy`` for a proxy's own); None otherwise."""
    if status != 429:
        return None
    lowered = {k.lower(): v for k, v in headers.items()}
    if "generated-by-proxy" in lowered:
        return "proxy"
    return lowered.get("x-ratelimit-scope", "user")


def is_exempt(template: str) -> bool:
    """Whether a route is an interaction endpoint (exempt from the global limit)."""
    return template.startswith(EXEMPT_PREFIXES)


@dataclass(slots=True)
class _Window:
    reset_at: float
    remaining: int


class RouteBuckets:
    """The state of every route bucket, by (bucket, major value)."""

    def __init__(self, limits: Iterable[RouteLimit]) -> None:
        self._by_route = {spec: limit for limit in limits for spec in limit.routes}
        self._windows: dict[tuple[str, str], _Window] = {}

    def find(self, method: str, template: str) -> RouteLimit | None:
        """The bucket of ``method template``, if it has one."""
        return self._by_route.get(f"{method} {template}")

    def window(self, limit: RouteLimit, major: str, now: float) -> _Window:
        """The current window of ``limit`` for ``major`` (a new one once the last has reset)."""
        key = (limit.name, major)
        found = self._windows.get(key)
        if found is None or now >= found.reset_at:
            found = self._windows[key] = _Window(now + limit.per, limit.limit)
        return found

    @staticmethod
    def headers(limit: RouteLimit, window: _Window, now: float) -> dict[str, str]:
        """The ``X-RateLimit-*`` headers of an answer in ``window``."""
        return {
            "X-RateLimit-Limit": str(limit.limit),
            "X-RateLimit-Remaining": str(max(window.remaining, 0)),
            "X-RateLimit-Reset": f"{window.reset_at:.3f}",
            "X-RateLimit-Reset-After": f"{window.reset_at - now:.3f}",
            "X-RateLimit-Bucket": limit.bucket,
        }


class GlobalWindows:
    """Admitted requests per key (a token, or an address without one) per wall-clock second."""

    def __init__(self) -> None:
        self._current: dict[str, tuple[int, int]] = {}

    def wait(self, key: str, limit: int, now: float) -> float | None:
        """Seconds until ``key`` may send again, or None when it may now."""
        second, used = self._current.get(key, (-1, 0))
        return second + 1 - now if second == int(now) and used >= limit else None

    def take(self, key: str, now: float) -> None:
        """Count one admitted request of ``key``."""
        second, used = self._current.get(key, (-1, 0))
        self._current[key] = (second, used + 1) if second == int(now) else (int(now), 1)


class InvalidRequests:
    """Invalid responses per client address over a sliding window, and the bans they earn."""

    def __init__(self) -> None:
        self._seconds: dict[str, deque[list[int]]] = {}
        self._banned_until: dict[str, float] = {}
        self.bans: list[BanRecord] = []

    def banned(self, client: str, now: float) -> bool:
        """Whether ``client`` is banned at ``now``."""
        return self._banned_until.get(client, 0.0) > now

    def count(self, client: str, now: float, window: float) -> int:
        """``client``'s invalid responses within ``window`` seconds before ``now``."""
        seconds = self._seconds.get(client)
        if not seconds:
            return 0
        while seconds and seconds[0][0] <= now - window:
            seconds.popleft()
        return sum(n for _, n in seconds)

    def add(self, client: str, now: float, settings: Settings) -> None:
        """Count one invalid response; past ``invalid_limit`` ban ``client`` and restart."""
        seconds = self._seconds.setdefault(client, deque())
        if seconds and seconds[-1][0] == int(now):
            seconds[-1][1] += 1
        else:
            seconds.append([int(now), 1])
        limit = settings.invalid_limit
        if limit is not None and self.count(client, now, settings.invalid_window) > limit:
            until = now + settings.ban_seconds
            self._banned_until[client] = until
            self.bans.append(BanRecord(client, now, until))
            seconds.clear()

    def counts(self, now: float, window: float) -> dict[str, int]:
        """Each client's count within the window (clients with none left out)."""
        counts = {c: self.count(c, now, window) for c in list(self._seconds)}
        return {client: n for client, n in counts.items() if n}


class RateLimits:
    """The global limit, route buckets, invalid-request counter and ledger of one server.

    ``clock`` (wall-clock seconds) may be replaced by tests.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.clock: Callable[[], float] = time.time
        self.ledger = RateLedger()
        self.routes = RouteBuckets(settings.route_limits)
        self.global_windows = GlobalWindows()
        self.invalid = InvalidRequests()

    def banned(self, client: str) -> Refusal | None:
        """Cloudflare's answer when ``client`` is banned, else None."""
        return cloudflare_429() if self.invalid.banned(client, self.clock()) else None

    def admit(
        self,
        authorization: str | None,
        client: str,
        method: str,
        template: str,
        params: Mapping[str, str],
    ) -> Verdict:
        """Take the global and route tokens of a request (both or neither)."""
        now = self.clock()
        if is_exempt(template):
            self.ledger.count(rate_ledger.EXEMPT, now)
            return None
        key, allowed = self._global_allowance(authorization, client)
        wait = None if allowed is None else self.global_windows.wait(key, allowed, now)
        if wait is not None:
            return discord_429("global", wait)
        headers = None
        limit = self.routes.find(method, template)
        if limit is not None:
            window = self.routes.window(limit, params.get(limit.major or "", ""), now)
            if window.remaining <= 0:
                retry_after = window.reset_at - now
                return discord_429("user", retry_after, self.routes.headers(limit, window, now))
            window.remaining -= 1
            headers = self.routes.headers(limit, window, now)
        self.global_windows.take(key, now)
        self.ledger.count(rate_ledger.GLOBAL_COUNTED, now)
        return headers

    def _global_allowance(self, authorization: str | None, client: str) -> tuple[str, int | None]:
        """The global window key (the token, or the address without one) and its limit."""
        if not authorization:
            return f"address {client}", self.settings.global_limit
        token = authorization.removeprefix("Bot ")
        return token, self.settings.global_limits.get(token, self.settings.global_limit)

    def observe(self, client: str, status: int, scope: str | None) -> None:
        """Count an answer: its 429 scope, and toward ``client``'s invalid requests."""
        now = self.clock()
        self.ledger.count(rate_ledger.REQUESTS, now)
        if scope == CLOUDFLARE:
            self.ledger.count(rate_ledger.BANNED, now)
            return
        if scope is not None:
            self.ledger.count(f"429_{scope}", now)
        if status in (401, 403) or scope in ("global", "user"):
            self.ledger.count(rate_ledger.INVALID, now)
            self.invalid.add(client, now, self.settings)

    def stats(self, since: float | None = None) -> RateStats:
        """The ledger from ``since`` on, invalid counts now and every ban."""
        now = self.clock()
        return rate_ledger.stats(
            self.ledger.seconds(since),
            self.invalid.counts(now, self.settings.invalid_window),
            list(self.invalid.bans),
            self.settings.global_limit,
        )
