"""Helpers shared by the sandbox tests: paths, child-process env, servers, a raw gateway client."""

from __future__ import annotations

import json
import os
import sys
import zlib
from pathlib import Path
from typing import Any

import aiohttp

from app.sandbox import SandboxServer, demo_world
from app.sandbox.world import World

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
TOKEN = "sandbox-token"


def subprocess_env() -> dict[str, str]:
    """Environment for child processes: this checkout's ``app`` first on the path."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), str(HERE), env.get("PYTHONPATH", "")])
    env["PYTHONUNBUFFERED"] = "1"
    return env


PYTHON = sys.executable


def make_server(world: World | None = None, **options: Any) -> SandboxServer:
    options.setdefault("identify_window", 0.2)
    options.setdefault("interaction_deadline", 10.0)
    return SandboxServer(world=world or demo_world(), **options)


class RawGateway:
    """A bare websocket client that speaks the gateway protocol (no discord.py)."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, session: aiohttp.ClientSession):
        self.ws = ws
        self.session = session
        self.inflater = zlib.decompressobj()
        self.binary_frames = 0

    @classmethod
    async def connect(cls, server: SandboxServer, compress: bool = False) -> RawGateway:
        session = aiohttp.ClientSession()
        query = "?v=10&encoding=json" + ("&compress=zlib-stream" if compress else "")
        ws = await session.ws_connect(server.gateway_url + query)
        return cls(ws, session)

    async def recv(self, timeout: float = 5.0) -> dict[str, Any]:  # noqa: ASYNC109
        msg = await self.ws.receive(timeout=timeout)
        if msg.type == aiohttp.WSMsgType.BINARY:
            self.binary_frames += 1
            return json.loads(self.inflater.decompress(msg.data))
        if msg.type == aiohttp.WSMsgType.TEXT:
            return json.loads(msg.data)
        return {"closed": True, "code": self.ws.close_code}

    async def until(self, predicate: Any, timeout: float = 5.0) -> dict[str, Any]:  # noqa: ASYNC109
        """Read frames until one matches ``predicate`` (or the socket closes)."""
        while True:
            frame = await self.recv(timeout)
            if frame.get("closed") or predicate(frame):
                return frame

    async def send(self, op: int, data: Any) -> None:
        await self.ws.send_str(json.dumps({"op": op, "d": data}))

    async def identify(self, shard: list[int] | None = None, intents: int = 513) -> None:
        data: dict[str, Any] = {"token": TOKEN, "intents": intents, "properties": {}}
        if shard is not None:
            data["shard"] = shard
        await self.send(2, data)

    async def close(self) -> None:
        await self.ws.close()
        await self.session.close()
