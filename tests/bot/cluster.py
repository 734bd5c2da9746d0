"""Several bot processes sharing one sandbox, PostgreSQL and Redis, as pods of a cluster."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp

from app.bot.runner import publish_commands
from app.sandbox import SandboxServer
from bench.services import free_port
from tests.bot.harness import TOKEN, bot_settings
from tests.bot.processes import BotProcess, bot_env
from tests.conftest import Backend
from tests.services import wait_for


async def publish(server: SandboxServer, db_url: str) -> None:
    """Register the bot's slash commands with the sandbox (once per sandbox)."""
    await publish_commands(bot_settings(server, db_url, None), TOKEN)


class Cluster:
    """Bot processes, one per pod index, each with its own ops port."""

    def __init__(
        self, server: SandboxServer, pg: Backend, redis_url: str, workdir: Path, **env: str
    ) -> None:
        self.server, self.pg, self.redis_url, self.workdir = server, pg, redis_url, workdir
        self.env = env
        self.pods: dict[int, BotProcess] = {}
        self.ports: dict[int, int] = {}
        self.retired: list[BotProcess] = []

    def process(self, index: int) -> BotProcess:
        self.ports[index] = free_port()
        env = bot_env(
            self.server,
            self.pg.db_url,
            self.redis_url,
            POD_INDEX=str(index),
            OPS_PORT=str(self.ports[index]),
            **self.env,
        )
        return BotProcess(env, self.workdir)

    async def start(self, *indexes: int) -> None:
        procs = [self.process(i) for i in indexes]
        for index, proc in zip(indexes, procs, strict=True):
            if index in self.pods:
                self.retired.append(self.pods[index])
            self.pods[index] = proc
        await asyncio.gather(*(p.start() for p in procs))

    async def wait_ready(self, within: float = 60) -> None:
        shards = int(self.env["SHARD_COUNT"])
        await self.server.driver.wait_for_shards(list(range(shards)), timeout=within)
        for index in self.pods:
            await wait_for(lambda i=index: self.http(i, "/readyz", ok_only=True), within=within)

    async def http(self, index: int, path: str, ok_only: bool = False) -> str | None:
        url = f"http://127.0.0.1:{self.ports[index]}{path}"
        try:
            async with aiohttp.ClientSession() as session, session.get(url) as resp:
                text = await resp.text()
                return text if resp.status == 200 or not ok_only else None
        except aiohttp.ClientError:
            return None

    async def close(self) -> None:
        """Kill what is left; the logs are printed (pytest shows them when a test failed)."""
        for proc in [*self.pods.values(), *self.retired]:
            await proc.kill()
        for index, proc in self.pods.items():
            print(f"--- pod {index} ---\n{proc.log()}")
