"""A local Discord-compatible server (REST + gateway), its driver and an interactive console.

See docs/sandbox.md. Main entry points::

    from app.sandbox import SandboxServer, Driver, RemoteDriver, point_discord_at
    from app.sandbox import build_world, demo_world
"""

from app.sandbox.builders import build_world, demo_world
from app.sandbox.client_patch import point_discord_at
from app.sandbox.core import SandboxTimeout
from app.sandbox.driver import Driver, InteractionHandle
from app.sandbox.errors import SandboxError
from app.sandbox.records import MessageView, Reply
from app.sandbox.remote import RemoteDriver
from app.sandbox.server import SandboxServer

__all__ = [
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
