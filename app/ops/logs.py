"""Logging: JSON lines when not on a terminal, with the shard and guild of the work in hand."""

from __future__ import annotations

import json
import logging
import math
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

_context: ContextVar[dict[str, Any] | None] = ContextVar("log_context", default=None)


@contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Attach fields (shard_id, guild_id, ...) to every log line written inside the block."""
    token = _context.set({**(_context.get() or {}), **fields})
    try:
        yield
    finally:
        _context.reset(token)


class Throttle:
    """Lets a repeated log line through at most once every `every` seconds.

    For conditions that last (an outage) or repeat in bulk (retries): the first occurrence is
    logged at once, the next ones at most once per interval, with how many were held back.
    """

    def __init__(self, every: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.every = every
        self.clock = clock
        self._last = -math.inf
        self._held = 0

    def due(self) -> int | None:
        """None while the line must stay quiet; else how many were held back since it ran."""
        now = self.clock()
        if now - self._last < self.every:
            self._held += 1
            return None
        held, self._held, self._last = self._held, 0, now
        return held


def bind(**fields: Any) -> None:
    """Attach fields to every later log line of the current task."""
    _context.set({**(_context.get() or {}), **fields})


class ContextFilter(logging.Filter):
    """Copies the current log context onto each record."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Add the context's fields the record does not have yet; keep every record."""
        for key, value in (_context.get() or {}).items():
            if not hasattr(record, key):
                setattr(record, key, value)
        return True


class WithoutVoiceWarnings(logging.Filter):
    """Drops discord.py's warnings that its optional voice libraries are missing.

    discord.py warns once per process that PyNaCl and davey are not installed; this bot has no
    voice, so they would only be noise at every start. Nothing else of discord.py is dropped.
    """

    MESSAGES = ("PyNaCl is not installed", "davey is not installed")

    def filter(self, record: logging.LogRecord) -> bool:
        """False for the two voice warnings."""
        return not (record.levelno == logging.WARNING and str(record.msg).startswith(self.MESSAGES))


_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, context fields, exception."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line of JSON."""
        payload: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                payload[key] = value
        if record.exc_info:
            payload["exception"] = self.formatException(record.exc_info)
        return json.dumps(payload, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """Human-readable lines for a terminal, with shard and guild when known."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as a text line, with its shard and guild when known."""
        where = " ".join(
            f"{k}={getattr(record, k)}" for k in ("shard_id", "guild_id") if hasattr(record, k)
        )
        line = super().format(record)
        return f"{line} [{where}]" if where else line


def setup_logging(level: str, json_lines: bool | None = None) -> None:
    """Configure the root logger once: JSON unless stderr is a terminal."""
    if json_lines is None:
        json_lines = not sys.stderr.isatty()
    handler = logging.StreamHandler()
    handler.addFilter(ContextFilter())
    handler.setFormatter(
        JsonFormatter()
        if json_lines
        else TextFormatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("discord.gateway").setLevel(max(logging.INFO, root.level))
    voice = logging.getLogger("discord.client")  # where discord.py logs the voice warnings
    if not any(isinstance(f, WithoutVoiceWarnings) for f in voice.filters):
        voice.addFilter(WithoutVoiceWarnings())
