"""Tunable behaviour of a sandbox server."""

from __future__ import annotations

from dataclasses import dataclass


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
    #: What GET /gateway/bot recommends; default one shard per 1000 guilds.
    shards_recommended: int | None = None
    session_start_total: int = 1000
    #: An interaction must be answered within this many seconds (Discord: 3).
    interaction_deadline: float = 3.0
    #: How long a disconnected session stays resumable.
    session_ttl: float = 300.0
    #: Dispatches kept per session for RESUME replay.
    resume_buffer: int = 50_000
    #: When set, REST and IDENTIFY must present this token.
    token: str | None = None
    #: REST calls kept in the call log.
    record_limit: int = 200_000
