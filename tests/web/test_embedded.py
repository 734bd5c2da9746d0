"""`python -m app` without a token: the web console runs beside the sandbox console."""

from __future__ import annotations

import asyncio
import re
import sys
from pathlib import Path

from tests.web.console import Visitor
from testsupport.bots import bot_env


async def test_the_sandbox_console_opens_the_web_console_too(tmp_path: Path) -> None:
    env = {**bot_env(), "WEB_PORT": "0"}  # no token, database or Redis: the embedded default
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "app",
        cwd=tmp_path,
        env=env,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert proc.stdin is not None and proc.stdout is not None
    seen: list[str] = []
    url = None
    while url is None:
        line = (await asyncio.wait_for(proc.stdout.readline(), 90)).decode()
        assert line, "".join(seen)
        seen.append(line)
        found = re.search(r"web console: (http://\S+) ", line)
        url = found.group(1) if found else None
    visitor = Visitor(url)
    try:
        await visitor.sign_in("moderator")
        status, body = await visitor.get("/")
        guild = re.search(r'href="(/g/\d+)"', body)
        assert status == 200 and guild is not None, body
        status, body = await visitor.get(guild.group(1))
        assert status == 200 and "No cases." in body
        alice = Visitor(url)
        try:
            await alice.sign_in("alice")
            assert "No server where you may read cases" in (await alice.get("/"))[1]
            assert (await alice.get(guild.group(1)))[0] == 404
        finally:
            await alice.close()
    finally:
        await visitor.close()
        proc.stdin.close()
        await asyncio.wait_for(proc.wait(), 30)
    assert proc.returncode == 0
