"""The shared heart of a sandbox: world, settings, change notification and event emission."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from sandbox.settings import Settings
from sandbox.world import Attachment, World

if TYPE_CHECKING:
    from sandbox.interactions import InteractionStore

T = TypeVar("T")


class SandboxTimeout(TimeoutError):
    """A driver wait ran out of time; the message says what was awaited."""


class EventSink(Protocol):
    def dispatch(self, event: str, data: dict[str, Any], guild_id: int | None) -> None: ...


class ChangeFeed:
    """Wakes waiters whenever sandbox state changes; waiting is purely event-driven."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def notify(self) -> None:
        """Signal a change to every current waiter."""
        self._event.set()
        self._event = asyncio.Event()

    async def wait_for(self, probe: Callable[[], T | None], within: float, what: str) -> T:
        """Return the first non-None ``probe()`` result, re-probing after each change."""
        try:
            async with asyncio.timeout(within):
                while True:
                    event = self._event
                    result = probe()
                    if result is not None:
                        return result
                    await event.wait()
        except TimeoutError:
            raise SandboxTimeout(f"timed out after {within:g}s waiting for {what}") from None


class Core:
    """State every part of the sandbox works on."""

    def __init__(self, world: World, settings: Settings) -> None:
        self.world = world
        self.settings = settings
        self.feed = ChangeFeed()
        self.sink: EventSink | None = None
        #: Set by the server once it listens, e.g. ``http://127.0.0.1:5000``.
        self.base_url = ""
        #: Every uploaded file by attachment id, served under /attachments/.
        self.uploads: dict[int, Attachment] = {}
        #: (author id, nonce) -> (message id, when) of messages created with enforce_nonce within
        #: the nonce window, oldest first.
        self.nonces: dict[tuple[int, str], tuple[int, float]] = {}
        #: How many creates returned an earlier message because of its nonce.
        self.nonce_repeats = 0
        from sandbox.interactions import InteractionStore

        self.interactions: InteractionStore = InteractionStore(self)

    def emit(self, event: str, data: dict[str, Any], guild_id: int | None = None) -> None:
        """Dispatch a gateway event to the sessions that should see it and wake waiters."""
        if self.sink is not None:
            self.sink.dispatch(event, data, guild_id)
        self.feed.notify()

    def changed(self) -> None:
        """Wake waiters after a state change that has no gateway event."""
        self.feed.notify()
