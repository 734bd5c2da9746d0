"""Prometheus metrics of one bot process.

The names are a contract with deploy/grafana-dashboard.json and deploy/prometheus-alerts.yml.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

REGISTRY = CollectorRegistry(auto_describe=True)


def _gauge(name: str, doc: str, labels: Sequence[str] = ()) -> Gauge:
    return Gauge(f"guildbot_{name}", doc, labels, registry=REGISTRY)


def _counter(name: str, doc: str, labels: Sequence[str] = ()) -> Counter:
    return Counter(f"guildbot_{name}", doc, labels, registry=REGISTRY)


def _histogram(
    name: str, doc: str, buckets: Sequence[float], labels: Sequence[str] = ()
) -> Histogram:
    return Histogram(f"guildbot_{name}", doc, labels, buckets=buckets, registry=REGISTRY)


class OptionalGauge(Collector):
    """A gauge with no labels whose series is absent while it has no value (`set(None)`).

    /metrics then says nothing rather than something untrue.
    """

    def __init__(self, name: str, documentation: str) -> None:
        self.name = f"guildbot_{name}"
        self.documentation = documentation
        self.value: float | None = None
        REGISTRY.register(self)

    def set(self, value: float | None) -> None:
        """The value to export, or None for no series."""
        self.value = value

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """The family, with its one sample when there is a value."""
        family = GaugeMetricFamily(self.name, self.documentation)
        if self.value is not None:
            family.add_metric([], self.value)
        yield family


SHARD_UP = _gauge("shard_up", "1 when the shard is READY", ["shard"])
SHARD_LATENCY = _gauge("shard_latency_seconds", "Heartbeat latency per shard", ["shard"])
SHARD_GUILDS = _gauge("shard_guilds", "Guilds per shard", ["shard"])
EVENTS = _counter("events", "Gateway dispatch events received", ["shard"])
COMMANDS = _counter("commands", "Commands handled, by outcome", ["command", "outcome"])
COMMANDS_EXPIRED = _counter(
    "commands_expired",
    "Commands not executed because their deadline passed (on arrival, or before they committed)",
    ["command", "form"],
)
COMMAND_DURATION = _histogram(
    "command_duration_seconds",
    "Time from a command's arrival to its reply",
    (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
    ["command"],
)
ERRORS = _counter("errors", "Unexpected errors", ["kind"])
IDENTIFIES = _counter("identifies", "IDENTIFY sent, by outcome", ["shard", "outcome"])
SESSION_STARTS_REMAINING = _gauge("session_starts_remaining", "Session starts left today")
DB_POOL_SIZE = _gauge("db_pool_size", "Database connections open")
DB_POOL_IDLE = _gauge("db_pool_idle", "Database connections idle")
DB_POOL_MAX = _gauge("db_pool_max", "Database pool maximum size")
REDIS_UP = OptionalGauge("redis_up", "1 when Redis answers, 0 when not; absent without REDIS_URL")
REDIS_LOCK_WAIT = _histogram(
    "redis_lock_wait_seconds",
    "Time spent waiting for account locks",
    (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 2, 5),
)
REST_INVALID = _gauge(
    "rest_invalid_requests",
    "Responses 401, 403 and 429 (not scope shared) in the last 10 minutes, by scope (pod, cluster)",
    ["scope"],
)
REST_INVALID_LIMIT = _gauge("rest_invalid_limit", "Invalid requests allowed per 10 minutes")
REST_GLOBAL_LIMIT = _gauge("rest_global_limit", "The bot token's global REST limit per second")
REST_SELF_THROTTLING = _gauge(
    "rest_self_throttling", "1 while the REST budget runs at half rate (invalid requests >= 80 %)"
)
REST_LOCAL_LIMITING = _gauge(
    "rest_local_limiting", "1 while this pod limits its REST requests alone (Redis away)"
)
REST_PODS = _gauge("rest_pods", "Pods sharing the REST budget, as this pod sees them")
REST_WAIT = _histogram(
    "rest_wait_seconds",
    "Time a REST request waited for its turn in the budget, by priority",
    (0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
    ["priority"],
)
REST_429 = _counter("rest_429", "429 answers to REST requests, by scope", ["scope"])
REST_PROXY_429 = _counter("rest_proxy_429", "A REST proxy's own 429s, retried")
CASES_OPENED = _counter("cases_opened", "Moderation cases opened", ["action"])
COINS_MOVED = _counter("coins_moved", "Coins moved", ["kind"])
OWNED_SHARDS = _gauge("owned_shards", "Shards this process holds")
READY = _gauge("ready", "1 when every owned shard is READY")
REBALANCES = _counter("rebalances", "Shard assignment changes applied")
HANDOVERS = _counter("handovers", "Shards taken over, by kind", ["kind"])
HANDOVER_GUILDS = _counter(
    "handover_guilds",
    "Guilds of shards taken over, by how they were loaded (snapshot, lazy, rest)",
    ["how"],
)
HANDOVER_DURATION = _histogram(
    "handover_duration_seconds",
    "Time from taking a shard's lease to sending RESUME (guild state loaded), by handover mode",
    (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300),
    ["mode"],
)
SNAPSHOT_BYTES = _histogram(
    "handover_snapshot_bytes",
    "Size of the compressed guild snapshot a released shard left for its next owner",
    (2**16, 2**18, 2**20, 2**21, 2**22, 2**23, 2**24, 2**25, 2**26),
)
SNAPSHOT_WRITE = _histogram(
    "handover_snapshot_write_seconds",
    "Time to write a released shard's guild snapshot (the shard has no session meanwhile)",
    (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30),
)
REBALANCE_CONVERGENCE = _histogram(
    "rebalance_convergence_seconds",
    "Time from a membership change to this pod holding exactly its share of shards",
    (0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300),
)
GENERATION_ACTIVE = _gauge("generation_active", "Number of the shard generation that acts")
GENERATION_SHARDS = _gauge(
    "generation_shards", "Shard count of each live generation, by state", ["generation", "state"]
)
GENERATION_SKIPPED = _counter(
    "generation_skipped_events", "Events left to the other generation of a reshard", ["event"]
)
RESHARDS = _counter("reshards", "Reshards ended, by outcome", ["outcome"])
RESHARD_RECOMMENDED = _gauge(
    "reshard_recommended", "1 when the largest shard passed RESHARD_AT of 2,500 guilds"
)
WEB_REQUESTS = _counter(
    "web_requests", "Web console requests, by route and status", ["route", "status"]
)
WEB_DURATION = _histogram(
    "web_request_duration_seconds",
    "Web console request time, by route",
    (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
    ["route"],
)
WEB_RENDER = _histogram(
    "web_render_seconds",
    "Time to render a web console page's template",
    (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1),
    ["page"],
)


def forget_shard(shard_id: int) -> None:
    """Drop a shard's per-shard series once this process no longer runs it."""
    for family in (SHARD_UP, SHARD_LATENCY, SHARD_GUILDS):
        with contextlib.suppress(KeyError):
            family.remove(str(shard_id))
