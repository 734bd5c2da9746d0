"""The deadline of a request: one rule for every command, slash or prefix.

Discord gives an interaction 3 s for its first response; once that response is sent (a deferral
is one), the interaction's token takes follow-ups until 15 minutes after the interaction was
made. A prefix command has no such window: the bot gives it PREFIX_COMMAND_MAX_AGE_S. Ages are
read from the request's snowflake against this machine's clock, which may be CLOCK_SKEW_S off
Discord's:

- a request that reaches the bot later than its window (3 s, or the prefix limit) plus the skew
  is not executed at all: Discord would refuse its answer, or the member has given up on it;
- its database work, retries included, stops at `work_until`: COMMAND_TIMEOUT_S after it
  arrived, and never later than the reply can still be sent (the window, less the skew and
  REPLY_RESERVE_S for sending the reply). Work that has not begun to commit by then is
  abandoned (`DeadlineExceeded`, nothing written) and the member is told to try again.

The command wrappers (app/bot) make the `Deadline` and set it for the command with `applying`;
the retry helper (app/db/retry.py) reads it with `current`. Work outside any request (gateway
event handlers, background tasks) has no deadline: nobody waits for its answer.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

#: Discord: an interaction's first response must come within 3 s of its creation...
FIRST_RESPONSE_S = 3.0
#: ...and its token takes follow-ups for 15 minutes.
TOKEN_LIFETIME_S = 15 * 60.0
#: Kept back from a reply window for sending the reply ("try again" included).
REPLY_RESERVE_S = 1.0


class DeadlineExceeded(Exception):
    """The request's time ran out before its work committed: nothing was written."""


@dataclass(frozen=True, slots=True)
class Deadline:
    """When a request must be answered, from the moment it was made (its snowflake)."""

    #: "slash" or "prefix".
    form: str
    #: Unix time the request was made, and the time it reached the bot.
    created: float
    arrived: float
    #: Seconds after `created` within which the request may still be started.
    window: float
    #: How far this machine's clock may be from Discord's.
    skew: float
    #: The longest its database work may take after arrival (COMMAND_TIMEOUT_S).
    timeout: float
    #: Slash: whether the first response was sent (then follow-ups have 15 minutes).
    acknowledged: Callable[[], bool] | None = None

    @property
    def age_on_arrival(self) -> float:
        """Seconds between the request being made and reaching the bot."""
        return self.arrived - self.created

    def expired(self) -> bool:
        """True when the request arrived too late to be executed at all."""
        return self.age_on_arrival > self.window + self.skew

    def reply_by(self) -> float:
        """Unix time after which the reply could not be delivered (infinite for prefix)."""
        if self.form != "slash":
            return math.inf
        done = self.acknowledged is not None and self.acknowledged()
        return self.created + (TOKEN_LIFETIME_S if done else FIRST_RESPONSE_S) - self.skew

    def work_until(self) -> float:
        """Unix time by which the database work must have begun to commit."""
        return min(self.reply_by() - REPLY_RESERVE_S, self.arrived + self.timeout)

    def remaining(self) -> float:
        """Seconds left for the database work (negative once past)."""
        return self.work_until() - time.time()


_current: ContextVar[Deadline | None] = ContextVar("request_deadline", default=None)


def current() -> Deadline | None:
    """The deadline of the request being handled, if any."""
    return _current.get()


@contextmanager
def applying(deadline: Deadline) -> Iterator[None]:
    """Make `deadline` the current one for the block (and the tasks it creates)."""
    token = _current.set(deadline)
    try:
        yield
    finally:
        _current.reset(token)
