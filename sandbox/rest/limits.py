"""The REST switch: make the next matching REST calls answer 429 like Discord (or like a REST
proxy in front of it), or fail with another status (a 5xx, as when Discord is unavailable)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from sandbox.ratelimits import Refusal, discord_429, proxy_429


@dataclass
class RateLimitRule:
    method: str | None
    path: str
    remaining: int
    retry_after: float
    #: ``global``, ``user`` or ``shared`` (Discord's scopes).
    scope: str = "user"
    #: Answer as nirn-proxy does on its own (no ``Via``) instead of as Discord.
    proxy: bool = False
    #: 429 (a rate limit), or the status of a failure.
    status: int = 429

    def matches(self, method: str, path: str, template: str | None) -> bool:
        if self.method is not None and self.method != method:
            return False
        return self.path in (path, template)


class RateLimitSwitch:
    """Pending 429s. A spec is ``"POST /channels/{channel_id}/messages"``, a concrete path such as
    ``"/channels/123/messages"``, with or without the method."""

    def __init__(self) -> None:
        self.rules: list[RateLimitRule] = []

    def add(
        self,
        spec: str,
        count: int = 1,
        retry_after: float = 0.2,
        scope: str = "user",
        proxy: bool = False,
        status: int = 429,
    ) -> None:
        if scope not in ("global", "user", "shared"):
            raise ValueError(f"unknown rate limit scope {scope!r}")
        method, _, path = spec.strip().rpartition(" ")
        path = path.removeprefix("/api/v10")
        self.rules.append(
            RateLimitRule(method.upper() or None, path, count, retry_after, scope, proxy, status)
        )

    def take(self, method: str, path: str, template: str | None) -> RateLimitRule | None:
        """Consume one pending 429 for this call, if any."""
        for rule in self.rules:
            if rule.remaining > 0 and rule.matches(method, path, template):
                rule.remaining -= 1
                if rule.remaining == 0:
                    self.rules.remove(rule)
                return rule
        return None


def ok_headers(bucket: str) -> dict[str, str]:
    """Generous X-RateLimit-* headers for a successful call (the client never throttles)."""
    return {
        "X-RateLimit-Limit": "10000",
        "X-RateLimit-Remaining": "9999",
        "X-RateLimit-Reset": f"{time.time() + 1:.3f}",
        "X-RateLimit-Reset-After": "1.000",
        "X-RateLimit-Bucket": bucket,
    }


def failure(rule: RateLimitRule) -> dict[str, Any]:
    """The body of a forced failure: Discord's shape for a 5xx."""
    return {"message": f"{rule.status}: Service Unavailable", "code": 0}


def limited(rule: RateLimitRule, bucket: str, now: float) -> Refusal:
    """The 429 of a switch rule: Discord's (``Via`` and JSON ``retry_after`` make clients retry)
    or, with ``proxy``, nirn-proxy's own."""
    if rule.proxy:
        return proxy_429(rule.retry_after, now)
    bucket_headers = {
        "X-RateLimit-Limit": "5",
        "X-RateLimit-Remaining": "4" if rule.scope == "shared" else "0",
        "X-RateLimit-Reset": f"{now + rule.retry_after:.3f}",
        "X-RateLimit-Reset-After": f"{rule.retry_after:.3f}",
        "X-RateLimit-Bucket": bucket,
    }
    return discord_429(rule.scope, rule.retry_after, bucket_headers)
