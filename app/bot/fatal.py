"""Why a bot process stops for good: each cause is one log line and a documented exit code.

Discord ends some sessions for reasons no retry can fix (a refused token, a shard
configuration it rejects, intents the bot is not granted); the bot's own guards stop it when
identifying again would burn the daily session-start budget. Each of those ends the process
with one line naming the cause and an exit code of its own (the table in docs/operations.md),
instead of a retry loop or a traceback.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import discord


class ExitCode(IntEnum):
    """The exit codes of `python -m app run` (docs/operations.md lists them)."""

    STOPPED = 0
    UNEXPECTED = 1
    CONFIGURATION = 2
    TOKEN_REFUSED = 20
    SHARDS_REFUSED = 21
    API_VERSION_REFUSED = 22
    INTENTS_REFUSED = 23
    IDENTIFY_BUDGET_EXHAUSTED = 24
    IDENTIFY_REJECTED = 25
    GATEWAY_UNREACHABLE = 69  # EX_UNAVAILABLE, as when Discord or PostgreSQL does not answer


@dataclass(frozen=True, slots=True)
class Fatal:
    """A cause that ends the process: its exit code and the one line that names it."""

    code: ExitCode
    line: str


class FatalError(Exception):
    """Raised by the bot's own guards when it must stop (carries the cause)."""

    def __init__(self, fatal: Fatal) -> None:
        super().__init__(fatal.line)
        self.fatal = fatal


_TOKEN = "Discord refused the token ({how}): check DISCORD_TOKEN"
_INTENTS = (
    "Discord refused the intents (close {code}): enable the Message Content intent for the bot"
    " in the developer portal, or set MESSAGE_CONTENT_INTENT=0"
)
#: Gateway close codes after which reconnecting cannot help (discord-api-docs).
CLOSE_CODES: dict[int, tuple[ExitCode, str]] = {
    4004: (ExitCode.TOKEN_REFUSED, _TOKEN.format(how="close 4004, authentication failed")),
    4010: (
        ExitCode.SHARDS_REFUSED,
        "Discord refused shard {shard} of {count} (close 4010, invalid shard): check"
        " SHARD_COUNT (a multiple of what Discord assigns large bots) and SHARD_IDS",
    ),
    4011: (
        ExitCode.SHARDS_REFUSED,
        "Discord requires more shards (close 4011, sharding required: shard {shard} of {count}"
        " has too many guilds): raise SHARD_COUNT",
    ),
    4012: (
        ExitCode.API_VERSION_REFUSED,
        "Discord refused the gateway API version (close 4012): upgrade discord.py",
    ),
    4013: (ExitCode.INTENTS_REFUSED, _INTENTS.format(code="4013, invalid intents")),
    4014: (ExitCode.INTENTS_REFUSED, _INTENTS.format(code="4014, disallowed intents")),
}


def closed_by_discord(code: int, shard_id: int | None, shard_count: int | None) -> Fatal | None:
    """The cause for a fatal gateway close code, or None when reconnecting may help."""
    found = CLOSE_CODES.get(code)
    if found is None:
        return None
    exit_code, line = found
    return Fatal(exit_code, line.format(shard=shard_id, count=shard_count))


def classify(error: BaseException, shard_count: int | None) -> Fatal:
    """The cause behind an error that ended `bot.start`: a known one, else UNEXPECTED."""
    if isinstance(error, FatalError):
        return error.fatal
    if isinstance(error, discord.LoginFailure):
        return Fatal(ExitCode.TOKEN_REFUSED, _TOKEN.format(how="HTTP 401 at login"))
    if isinstance(error, discord.PrivilegedIntentsRequired):
        return Fatal(ExitCode.INTENTS_REFUSED, _INTENTS.format(code="4014, disallowed intents"))
    if isinstance(error, discord.ConnectionClosed) and error.code is not None:
        known = closed_by_discord(error.code, error.shard_id, shard_count)
        if known is not None:
            return known
    return Fatal(ExitCode.UNEXPECTED, f"stopped by an unexpected error: {error!r}")


def budget_exhausted(shard_id: int, remaining: int, floor: int, resets_in: float) -> FatalError:
    """The identify budget is below IDENTIFY_MIN_REMAINING: identifying again risks the token."""
    return FatalError(
        Fatal(
            ExitCode.IDENTIFY_BUDGET_EXHAUSTED,
            f"identify budget exhausted: {remaining} session starts left today, below"
            f" IDENTIFY_MIN_REMAINING={floor}; not identifying shard {shard_id} (the budget"
            f" resets in {resets_in:.0f} s)",
        )
    )


def identify_rejected(shard_id: int, times: int) -> FatalError:
    """Discord answered op 9 to every identify of a shard: something else spends its bucket."""
    return FatalError(
        Fatal(
            ExitCode.IDENTIFY_REJECTED,
            f"Discord rejected {times} identifies of shard {shard_id} in a row (op 9): another"
            " process identifies with this token outside the shared identify queue (REDIS_URL)",
        )
    )


def gateway_unreachable(shard_id: int, url: str, attempts: int, error: BaseException) -> FatalError:
    """The gateway did not accept a connection for any of `attempts` tries."""
    return FatalError(
        Fatal(
            ExitCode.GATEWAY_UNREACHABLE,
            f"could not connect shard {shard_id} to the gateway at {url} in {attempts}"
            f" attempts: {describe(error)}",
        )
    )


def describe(error: BaseException) -> str:
    """An error in a few words, for a one-line log."""
    if isinstance(error, TimeoutError):
        return "timed out"
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
