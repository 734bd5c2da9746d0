"""A local Discord-compatible server (REST + gateway), its driver and an interactive console.

See docs/sandbox.md. Main entry points::

    from sandbox import SandboxServer, Driver, RemoteDriver, point_discord_at
    from sandbox import build_world, demo_world
"""

from sandbox.builders import build_world, demo_world
from sandbox.client_patch import point_discord_at
from sandbox.core import SandboxTimeout
from sandbox.driver import Driver, InteractionHandle
from sandbox.errors import SandboxError
from sandbox.records import MessageView, Reply
from sandbox.remote import RemoteDriver
from sandbox.server import SandboxServer
from sandbox.settings import SANDBOX_TOKEN

__all__ = [
    "SANDBOX_TOKEN",
    "Driver",
    "InteractionHandle",
    "MessageView",
    "RemoteDriver",
    "Reply",
    "SandboxError",
    "SandboxServer",
    "SandboxTimeout",
    "build_world",
    "demo_world",
    "point_discord_at",
]
