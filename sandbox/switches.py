"""The gateway and REST switches, shared by SandboxServer and its Driver."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sandbox.gateway import GatewayHub
    from sandbox.rest.api import RestApi


class Switches:
    """Forced reconnects, invalid sessions, dropped connections, 429s and failures, on demand."""

    gateway: GatewayHub
    rest: RestApi

    def rate_limit_next(
        self,
        route_or_method_path: str,
        count: int = 1,
        retry_after: float = 0.2,
        *,
        is_global: bool = False,
        scope: str = "user",
        proxy: bool = False,
    ) -> None:
        """Answer the next ``count`` matching REST calls with 429 and ``retry_after``.

        Match on ``"POST /channels/{channel_id}/messages"`` (a discord.py route template), a
        concrete path, or either without the method. ``scope`` is Discord's ``user`` or
        ``shared`` (``is_global`` makes it ``global``); ``proxy`` answers as nirn-proxy does
        on its own: ``generated-by-proxy: true`` and no ``Via``.
        """
        scope = "global" if is_global else scope
        self.rest.rate_limits.add(route_or_method_path, count, retry_after, scope, proxy)

    def fail_next(self, route_or_method_path: str, count: int = 1, status: int = 503) -> None:
        """Answer the next ``count`` matching REST calls with ``status`` (Discord unavailable:
        discord.py raises DiscordServerError at once for 503), matched like rate_limit_next."""
        self.rest.rate_limits.add(route_or_method_path, count, status=status)

    def send_reconnect(self, shard_id: int) -> int:
        """op 7 RECONNECT to the shard's live sessions; returns how many got it."""
        return self.gateway.send_reconnect(shard_id)

    def send_invalid_session(self, shard_id: int, resumable: bool = False) -> int:
        """op 9 INVALID_SESSION to the shard's live sessions; returns how many got it."""
        return self.gateway.send_invalid_session(shard_id, resumable)

    def spend_identify(self, shard_id: int) -> None:
        """Use the shard's identify bucket now, as another process of the bot would: the next
        IDENTIFY of its bucket within the window is answered op 9 INVALID_SESSION."""
        self.gateway.spend_identify(shard_id)

    def delay_resumes(self, seconds: float, count: int = 1) -> None:
        """Answer the next ``count`` RESUMEs ``seconds`` late (their replay comes late too)."""
        self.gateway.delay_resumes(seconds, count)

    def drop_connection(self, shard_id: int) -> int:
        """Abort the shard's connections without a close frame; returns how many."""
        return self.gateway.drop_connection(shard_id)
