"""Per-second counts of what the sandbox's REST limits did, and the records that report them."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Self

from sandbox.records import Record

#: Every REST request, whatever happened to it.
REQUESTS = "requests"
#: Admitted against the global limit (not exempt, not refused by any limit).
GLOBAL_COUNTED = "global_counted"
#: Interaction callbacks and follow-ups: never counted against the global limit.
EXEMPT = "exempt"
#: Counted toward the invalid-request limit (401, 403, 429 unless scope shared or a proxy's).
INVALID = "invalid"
#: Answered by the simulated Cloudflare ban.
BANNED = "banned"
#: 429s by scope: ``429_global``, ``429_user``, ``429_shared``, ``429_proxy``.
SCOPES = ("global", "user", "shared", "proxy")
#: Seconds kept (a day).
KEEP_SECONDS = 86_400


@dataclass
class RateSecond(Record):
    """The counts of one wall-clock second of the sandbox (``int(time)``)."""

    second: int
    counts: dict[str, int] = field(default_factory=dict)

    def get(self, key: str) -> int:
        """The count of ``key`` (0 when nothing happened)."""
        return self.counts.get(key, 0)


@dataclass
class BanRecord(Record):
    """A simulated Cloudflare ban of one client address."""

    client: str
    start: float
    until: float


@dataclass
class RateStats(Record):
    """What the REST limits did: per second (oldest first), in total, invalid counts and bans.

    ``busiest`` is the second with the most ``global_counted`` requests (None before any);
    ``invalid`` is each client address's count in the current sliding window.
    """

    seconds: list[RateSecond] = field(default_factory=list)
    totals: dict[str, int] = field(default_factory=dict)
    busiest: RateSecond | None = None
    invalid: dict[str, int] = field(default_factory=dict)
    bans: list[BanRecord] = field(default_factory=list)
    global_limit: int | None = None

    def peak(self, key: str) -> int:
        """The largest per-second count of ``key``."""
        return max((s.get(key) for s in self.seconds), default=0)

    def total(self, key: str) -> int:
        """The count of ``key`` over every second kept."""
        return self.totals.get(key, 0)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        stats = super().from_dict(data)
        stats.seconds = [RateSecond.from_dict(s) for s in data.get("seconds", [])]
        stats.busiest = RateSecond.from_dict(data["busiest"]) if data.get("busiest") else None
        stats.bans = [BanRecord.from_dict(b) for b in data.get("bans", [])]
        return stats


class RateLedger:
    """Counters per wall-clock second (the last :data:`KEEP_SECONDS`)."""

    def __init__(self) -> None:
        self._seconds: dict[int, Counter[str]] = {}

    def count(self, key: str, now: float) -> None:
        """Add one ``key`` to the second of ``now``."""
        second = int(now)
        counts = self._seconds.get(second)
        if counts is None:
            counts = self._seconds[second] = Counter()
            if len(self._seconds) > KEEP_SECONDS:
                del self._seconds[min(self._seconds)]
        counts[key] += 1

    def reset(self) -> None:
        """Forget every count."""
        self._seconds.clear()

    def seconds(self, since: float | None = None) -> list[RateSecond]:
        """The seconds from ``since`` on (all when None), oldest first."""
        first = int(since) if since is not None else None
        return [
            RateSecond(second, dict(counts))
            for second, counts in sorted(self._seconds.items())
            if first is None or second >= first
        ]


def stats(
    seconds: list[RateSecond],
    invalid: dict[str, int],
    bans: list[BanRecord],
    global_limit: int | None,
) -> RateStats:
    """A :class:`RateStats` from the ledger's seconds, current invalid counts and bans."""
    totals: Counter[str] = Counter()
    for second in seconds:
        totals.update(second.counts)
    busiest = max(seconds, key=lambda s: s.get(GLOBAL_COUNTED), default=None)
    return RateStats(seconds, dict(totals), busiest, invalid, bans, global_limit)
