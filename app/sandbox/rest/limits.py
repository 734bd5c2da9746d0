"""The rate-limit switch: make the next matching REST calls answer 429 like Discord."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any


@dataclass
class RateLimitRule:
    method: str | None
    path: str
    remaining: int
    retry_after: float
    is_global: bool = False

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
        self, spec: str, count: int = 1, retry_after: float = 0.2, is_global: bool = False
    ) -> None:
        method, _, path = spec.strip().rpartition(" ")
        path = path.removeprefix("/api/v10")
        self.rules.append(
            RateLimitRule(method.upper() or None, path, count, retry_after, is_global)
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


def limited(rule: RateLimitRule, bucket: str) -> tuple[dict[str, Any], dict[str, str]]:
    """Body and headers of Discord's 429 (``Via`` and JSON ``retry_after`` make clients retry)."""
    body = {
        "message": "You are being rate limited.",
        "retry_after": rule.retry_after,
        "global": rule.is_global,
        "code": 0,
    }
    headers = {
        "X-RateLimit-Limit": "5",
        "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset": f"{time.time() + rule.retry_after:.3f}",
        "X-RateLimit-Reset-After": f"{rule.retry_after:.3f}",
        "X-RateLimit-Bucket": bucket,
        "X-RateLimit-Scope": "global" if rule.is_global else "user",
        "Retry-After": str(math.ceil(rule.retry_after)),
        "Via": "1.1 google",
    }
    if rule.is_global:
        headers["X-RateLimit-Global"] = "true"
    return body, headers
