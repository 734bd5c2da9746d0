"""Tunable behaviour of a sandbox server."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sandbox.ratelimits import RouteLimit

from sandbox.intents import PRIVILEGED

#: The token bots present to a sandbox that checks none (any token does, unless one is required).
SANDBOX_TOKEN = "sandbox-token"


@dataclass
class Settings:
    """Server switches. Defaults follow Discord; tests shrink the windows."""

    host: str = "127.0.0.1"
    port: int = 0
    #: One accepted IDENTIFY per bucket (shard_id % max_concurrency) per window, in seconds.
    identify_window: float = 5.0
    max_concurrency: int = 1
    #: Honour ``compress=zlib-stream`` in the gateway query; otherwise send plain text frames.
    compress: bool = True
    heartbeat_interval_ms: int = 41250
    #: Seconds before a HEARTBEAT is acknowledged: a round trip to Discord takes tens of
    #: milliseconds. An instant ACK races discord.py's keep-alive thread, which stamps the
    #: send time only after the loop has sent the heartbeat: the ACK is then measured from the
    #: previous heartbeat ("Can't keep up ... 41.2s behind", a latency of 41 s).
    heartbeat_ack_delay: float = 0.03
    #: What GET /gateway/bot recommends; default one shard per 1000 guilds.
    shards_recommended: int | None = None
    session_start_total: int = 1000
    #: An interaction must be answered within this many seconds (Discord: 3).
    interaction_deadline: float = 3.0
    #: A message created with `enforce_nonce` whose nonce its author used within this many
    #: seconds is not posted again: the earlier message is returned (Discord: "a few minutes").
    nonce_window: float = 180.0
    #: How long a disconnected session stays resumable.
    session_ttl: float = 300.0
    #: Dispatches kept per session for RESUME replay.
    resume_buffer: int = 50_000
    #: When set, REST and IDENTIFY must present this token.
    token: str | None = None
    #: REST calls kept in the call log.
    record_limit: int = 200_000
    #: REST limits (:mod:`sandbox.ratelimits`), all off by default. Admitted requests per
    #: second per bot token (Discord: 50), and raised limits by token.
    global_limit: int | None = None
    global_limits: dict[str, int] = field(default_factory=dict)
    #: Route buckets (e.g. ``ratelimits.DISCORD_ROUTE_LIMITS``); empty: generous headers only.
    route_limits: tuple[RouteLimit, ...] = ()
    #: Invalid requests (401, 403, 429) per client address per window before a Cloudflare ban
    #: of ``ban_seconds`` (None: counted, never banned). Discord: 10,000 per 600 s.
    invalid_limit: int | None = None
    invalid_window: float = 600.0
    ban_seconds: float = 3600.0
    #: Privileged intents enabled for the bot (in Discord's developer portal); an IDENTIFY
    #: asking for another one is closed with 4014.
    privileged_intents: int = PRIVILEGED
    #: More guilds than this on one shard: IDENTIFY is closed with 4011 (sharding required).
    max_guilds_per_shard: int = 2500
    #: Large bots must run a multiple of the shard count Discord assigns them; another count
    #: is closed with 4010 (invalid shard).
    shard_count_multiple: int = 1
    #: Seconds between an accepted IDENTIFY and its READY (a slow Discord).
    ready_delay: float = 0.0
    #: Seconds before each GUILD_CREATE that follows READY (a slow start of a big shard).
    guild_create_interval: float = 0.0
