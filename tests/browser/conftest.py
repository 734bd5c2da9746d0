"""A real headless Chromium (Debian's package, driven by Playwright) and the web console.

Playwright's own browser download does not work here: it launches /usr/bin/chromium, which
scripts/test.sh installs with apt when it is missing (and under it, a missing chromium fails
these tests instead of skipping them). Screenshots go to SCREENSHOTS_DIR when
set (docs/screenshots is made that way), else to the test's temporary directory.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, BrowserContext, async_playwright

from sandbox import SandboxServer
from tests.conftest import Backend
from tests.web.conftest import sandbox
from tests.web.console import Web, running_console

__all__ = ["sandbox"]  # the same sandbox fixture as the HTTP tests

CHROMIUM = Path("/usr/bin/chromium")
HAVE_CHROMIUM = CHROMIUM.exists()
#: How long the console trusts the bot's view of a member here (production: 60 s).
ACCESS_TTL = 0.5


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    """Headless Chromium for one test module."""
    if not HAVE_CHROMIUM:
        missing = "no /usr/bin/chromium: `apt-get install chromium` (make test does it)"
        if os.environ.get("REQUIRE_CHROMIUM"):  # make test: it should have been installed
            pytest.fail(missing)
        pytest.skip(missing)
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox"]
        )
        yield chromium
        await chromium.close()


@pytest.fixture
async def web(sandbox: SandboxServer, pg: Backend, redis_server_url: str) -> AsyncIterator[Web]:
    """The console over empty tables, trusting the bot's view for ACCESS_TTL seconds."""
    async with running_console(sandbox, redis_server_url, web_access_ttl_s=ACCESS_TTL) as running:
        yield running


@pytest.fixture
async def context(browser: Browser) -> AsyncIterator[BrowserContext]:
    """A fresh browser profile (no cookies), phone-sized pages allowed."""
    context = await browser.new_context(accept_downloads=True)
    yield context
    await context.close()


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    """Where screenshots go."""
    place = Path(os.environ.get("SCREENSHOTS_DIR") or tmp_path)
    place.mkdir(parents=True, exist_ok=True)
    return place
