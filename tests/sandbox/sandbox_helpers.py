"""Helpers shared by the sandbox tests: paths, child-process env, servers, a raw gateway client."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
import zlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp

from sandbox import SANDBOX_TOKEN, SandboxServer, demo_world
from sandbox.world import World
from testsupport.bots import REPO

HERE = Path(__file__).resolve().parent


def subprocess_env() -> dict[str, str]:
    """Environment for child processes: this checkout and this directory first on the path."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), str(HERE), env.get("PYTHONPATH", "")])
    env["PYTHONUNBUFFERED"] = "1"
    return env


PYTHON = sys.executable


async def output_line(proc: asyncio.subprocess.Process, pattern: str, timeout: float = 30) -> str:  # noqa: ASYNC109
    """The first stdout line of ``proc`` matching ``pattern``."""
    assert proc.stdout is not None
    async with asyncio.timeout(timeout):
        while line := (await proc.stdout.readline()).decode():
            if re.search(pattern, line):
                return line.strip()
    raise AssertionError(f"process exited before printing {pattern!r}")


@asynccontextmanager
async def process(*args: str) -> AsyncIterator[asyncio.subprocess.Process]:
    """``python ARGS`` in this directory; SIGTERM (then SIGKILL) when the block ends."""
    proc = await asyncio.create_subprocess_exec(
        PYTHON,
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        env=subprocess_env(),
        cwd=HERE,
    )
    try:
        yield proc
    finally:
        if proc.returncode is None:
            assert proc.stdin is not None
            proc.stdin.close()
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                proc.kill()
                await proc.wait()


class FakeClock:
    """A clock that stands still until a test moves ``now``."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def is_dispatch(name: str) -> Callable[[dict[str, Any]], bool]:
    """Whether a gateway frame is the dispatch ``name``."""
    return lambda frame: frame.get("t") == name


def make_server(world: World | None = None, **options: Any) -> SandboxServer:
    options.setdefault("identify_window", 0.2)
    options.setdefault("interaction_deadline", 10.0)
    return SandboxServer(world=world or demo_world(), **options)


class Rest:
    """Plain HTTP calls to a sandbox's REST API with the bot's token: (status, body, headers),
    the body parsed as JSON when it is JSON, else text."""

    def __init__(
        self, server: SandboxServer, session: aiohttp.ClientSession, token: str = SANDBOX_TOKEN
    ) -> None:
        self.server, self.session = server, session
        self.headers = {"Authorization": f"Bot {token}"}

    async def __call__(
        self, method: str, path: str, body: Any = None, **params: str
    ) -> tuple[int, Any, Any]:
        url = self.server.rest_base + path
        async with self.session.request(
            method, url, json=body, headers=self.headers, params=params
        ) as resp:
            data: Any = None
            if resp.status != 204:
                json_body = resp.content_type == "application/json"
                data = await resp.json() if json_body else await resp.text()
            return resp.status, data, resp.headers


class RawGateway:
    """A bare websocket client that speaks the gateway protocol (no discord.py)."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, session: aiohttp.ClientSession):
        self.ws = ws
        self.session = session
        self.inflater = zlib.decompressobj()
        self.binary_frames = 0

    @classmethod
    async def connect(
        cls, server: SandboxServer, compress: bool = False, version: str = "10"
    ) -> RawGateway:
        session = aiohttp.ClientSession()
        query = f"?v={version}&encoding=json" + ("&compress=zlib-stream" if compress else "")
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
        data: dict[str, Any] = {"token": SANDBOX_TOKEN, "intents": intents, "properties": {}}
        if shard is not None:
            data["shard"] = shard
        await self.send(2, data)

    async def close(self) -> None:
        await self.ws.close()
        await self.session.close()
