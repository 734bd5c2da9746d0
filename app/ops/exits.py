"""Exit codes of the command line for failures of the environment, and the error that carries one.

A `Fatal` error stops a command with one line naming what failed and where (never a secret),
and the exit code below; `python -m app` prints the line, not a traceback. The codes follow
sysexits.h, so that they never collide with the small numbers of the start-up causes. The table
is in docs/operations.md ("Exit codes").
"""

from __future__ import annotations

import errno
import os
from enum import IntEnum
from typing import TYPE_CHECKING

import aiohttp

if TYPE_CHECKING:
    from app.config import Settings


class Exit(IntEnum):
    """Why a command ended without doing its work."""

    #: Invalid settings or command line (also pydantic's one line from app/config.py).
    SETTINGS = 2
    #: The database is not at the head migration: run `python -m app migrate` first.
    SCHEMA = 65
    #: `migrate` found no migrations where it looked (MIGRATIONS_DIR).
    NO_MIGRATIONS = 66
    #: PostgreSQL or Discord did not answer (refused, timed out, no such host).
    UNREACHABLE = 69
    #: PostgreSQL refused the role or its password.
    REFUSED = 77
    #: A setting names something that is not there or not free: the database, the ops address.
    CONFIG = 78


class Fatal(Exception):
    """A failure the command line reports as one line and an exit code."""

    def __init__(self, line: str, code: Exit) -> None:
        super().__init__(line)
        self.line = line
        self.code = code


def serving_failure(error: OSError, settings: Settings) -> Fatal | None:
    """The one line for an OSError that stopped `run`, when it names a known cause.

    Discord's REST address not answering (aiohttp's connector error, DNS included), or the ops
    endpoints' address taken or not on this host. None for anything else.
    """
    if isinstance(error, aiohttp.ClientConnectorError):
        reason = error.os_error.strerror or str(error.os_error) or type(error.os_error).__name__
        return Fatal(
            f"cannot reach Discord at {settings.discord_api_base} (DISCORD_API_BASE): {reason}",
            Exit.UNREACHABLE,
        )
    binding = error.errno in (errno.EADDRINUSE, errno.EADDRNOTAVAIL, errno.EACCES)
    if binding and "bind" in str(error):
        where = f"{settings.ops_host}:{settings.ops_port}"
        reason = os.strerror(error.errno or 0).lower()
        return Fatal(f"cannot listen on {where} (OPS_HOST, OPS_PORT): {reason}", Exit.CONFIG)
    return None
