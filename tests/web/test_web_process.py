"""`python -m app web` as a pod runs it: probes, metrics, pages, SIGTERM."""

from __future__ import annotations

from pathlib import Path

from sandbox import SandboxServer
from tests.conftest import Backend
from tests.web.console import Visitor
from testsupport.bots import bot_env
from testsupport.processes import BotProcess
from testsupport.servers import free_port


async def test_the_web_process_serves_pages_probes_and_metrics(
    sandbox: SandboxServer, pg: Backend, pg_url: str, redis_server_url: str, tmp_path: Path
) -> None:
    web_port = free_port()
    env = bot_env(
        sandbox,
        DATABASE_URL=pg_url,
        REDIS_URL=redis_server_url,
        OPS_PORT=str(free_port()),
        WEB_PORT=str(web_port),
        WEB_URL=f"http://127.0.0.1:{web_port}",
        DISCORD_CLIENT_ID=sandbox.oauth.client_id,
        DISCORD_CLIENT_SECRET=sandbox.oauth.client_secret,
        DISCORD_AUTHORIZE_URL=sandbox.url + "/oauth2/authorize",
    )
    process = await BotProcess("web", env, tmp_path, args=("web",)).start()
    try:
        await process.wait_log("web console on")
        assert await process.http("/readyz") == (200, "ready\n")
        visitor = Visitor(f"http://127.0.0.1:{web_port}")
        try:
            await visitor.sign_in("mod")
            assert (await visitor.get("/"))[0] == 200
        finally:
            await visitor.close()
        metrics = await process.http("/metrics")
        assert (
            metrics is not None
            and 'guildbot_web_requests_total{route="/",status="200"}' in (metrics[1])
        )
        assert await process.stop() == 0
    finally:
        await process.kill()
