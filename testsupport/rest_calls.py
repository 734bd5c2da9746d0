"""What the sandbox's REST log says about a bot loading guild state (app/bot/hydration.py)."""

from __future__ import annotations

from sandbox import SandboxServer
from sandbox.records import RestCall

#: The routes that load a guild's state over REST: the guild, its channels, the bot's member.
GUILD_STATE = frozenset(
    {"/guilds/{guild_id}", "/guilds/{guild_id}/channels", "/guilds/{guild_id}/members/{user_id}"}
)


def guild_state_calls(server: SandboxServer, since: float) -> list[RestCall]:
    """The REST calls that loaded guild state since `since` (Unix time)."""
    calls = server.driver.rest_calls(method="GET")
    return [c for c in calls if c.time >= since and c.route in GUILD_STATE]
