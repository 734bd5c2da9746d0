"""The PostgreSQL server behind DATABASE_URL: its addresses, and one connection.

The address is given in asyncpg's form and, for messages, without the password. Every failure
to connect becomes a `Fatal` error whose line names the server, the database and the role
(never the password), so `migrate` and `run` stop with one line, not a traceback.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import asyncpg

from app.ops.exits import Exit, Fatal

CONNECT_TIMEOUT = 10.0


def asyncpg_dsn(url: str) -> str:
    """The same database URL in the form asyncpg accepts."""
    for prefix in ("asyncpg://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql://" + url.removeprefix(prefix)
    return url


def server_of(url: str) -> str:
    """`host:port` of a PostgreSQL URL."""
    parts = urlsplit(url)
    return f"{parts.hostname or 'localhost'}:{parts.port or 5432}"


def database_of(url: str) -> str:
    """`database 'name' on host:port`, for messages."""
    name = urlsplit(url).path.lstrip("/") or "postgres"
    return f"database {name!r} on {server_of(url)}"


async def connect(url: str) -> asyncpg.Connection:
    """One connection to the configured database, or `Fatal` with the reason in one line."""
    server = server_of(url)
    try:
        return await asyncpg.connect(asyncpg_dsn(url), timeout=CONNECT_TIMEOUT)
    except asyncpg.InvalidCatalogNameError:
        raise Fatal(f"{database_of(url)} does not exist (DATABASE_URL)", Exit.CONFIG) from None
    except (asyncpg.InvalidPasswordError, asyncpg.InvalidAuthorizationSpecificationError) as e:
        role = urlsplit(url).username or "postgres"
        raise Fatal(
            f"PostgreSQL at {server} refused role {role!r}: {e} (DATABASE_URL)", Exit.REFUSED
        ) from None
    except (OSError, TimeoutError, asyncpg.CannotConnectNowError) as error:
        reason = str(error) or type(error).__name__
        raise Fatal(
            f"cannot reach PostgreSQL at {server} (DATABASE_URL): {reason}", Exit.UNREACHABLE
        ) from None
