"""The web console in headless Chromium: sign in, guilds, search, a case, export, and refusals."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

from playwright.async_api import BrowserContext, Download, Page, ViewportSize

from sandbox import SandboxServer
from tests.browser.conftest import ACCESS_TTL
from tests.conftest import Backend
from tests.web.console import SECRET, Web, seed

PHONE = ViewportSize(width=390, height=844)
DESKTOP = ViewportSize(width=1280, height=720)


async def sign_in(context: BrowserContext, web: Web, user: str) -> Page:
    """Sign in as `user` by clicking through the sandbox's Discord sign-in page."""
    page = await context.new_page()
    await page.goto(web.url)
    await page.click("text=Sign in with Discord")
    await page.click(f"button:text-is('{user}')")
    await page.wait_for_url(web.url + "/")
    return page


async def saved(download: Download) -> str:
    """The text of a finished download."""
    return await asyncio.to_thread(Path(await download.path()).read_text)


async def test_a_moderator_signs_in_searches_reads_and_exports(
    context: BrowserContext, web: Web, pg: Backend, shots: Path
) -> None:
    await seed(web, pg)
    page = await sign_in(context, web, "mod")
    await page.screenshot(path=shots / "guilds.png")
    await page.click("text=Guild 0")
    assert await page.locator("table.cases tbody tr").count() == 4  # not the case about mod
    await page.fill("input[name=q]", "raid")
    await page.click("button:text-is('Search')")
    await page.wait_for_url("**q=raid**")
    reasons = await page.locator("td.reason").all_inner_texts()
    assert reasons == ["raid bot invite", '=HYPERLINK("http://x") raid']
    await page.select_option("select[name=action]", "note")
    await page.click("button:text-is('Search')")
    await page.wait_for_url("**action=note**")
    assert await page.locator("td.reason").all_inner_texts() == ['=HYPERLINK("http://x") raid']
    await page.fill("input[name=q]", "")
    await page.select_option("select[name=action]", "")
    await page.click("button:text-is('Search')")
    await page.wait_for_url("**q=&**")
    await page.screenshot(path=shots / "cases.png", full_page=True)
    await page.set_viewport_size(PHONE)
    await page.screenshot(path=shots / "cases-phone.png", full_page=True)
    await page.set_viewport_size(DESKTOP)
    await page.click("table.cases a:text-is('1')")
    await page.wait_for_url("**/cases/1")
    assert "spamming links" in await page.inner_text("dd.reason")
    assert "DM to the member" in await page.inner_text("dl.case")
    await page.screenshot(path=shots / "case.png", full_page=True)
    await page.go_back()
    await page.fill("input[name=q]", "raid")
    await page.click("button:text-is('Search')")
    await page.wait_for_url("**q=raid**")
    async with page.expect_download() as download_info:
        await page.click("a:text-is('JSON')")
    rows = json.loads(await saved(await download_info.value))
    assert [r["number"] for r in rows] == [5, 4]
    async with page.expect_download() as download_info:
        await page.click("a:text-is('CSV')")
    csv_text = await saved(await download_info.value)
    assert "'=HYPERLINK" in csv_text and SECRET not in csv_text


async def test_a_script_in_a_reason_is_shown_as_text(
    context: BrowserContext, web: Web, pg: Backend
) -> None:
    await seed(web, pg)
    page = await sign_in(context, web, "mod")
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: dialogs.append(dialog.message))
    await page.goto(f"{web.url}/g/{web.guild_id()}/cases/2")
    assert await page.inner_text("dd.reason") == "<script>alert(1)</script> watch them"
    await page.goto(f"{web.url}/g/{web.guild_id()}")
    assert "<script>alert(1)</script>" in await page.inner_text("table.cases")
    assert dialogs == [] and await page.locator("script").count() == 0


async def test_a_plain_member_sees_no_cases(
    context: BrowserContext, web: Web, pg: Backend, shots: Path
) -> None:
    await seed(web, pg)
    page = await sign_in(context, web, "m1")
    assert "No server where you may read cases" in await page.inner_text("main")
    response = await page.goto(f"{web.url}/g/{web.guild_id()}")
    assert response is not None and response.status == 404
    assert "spamming" not in await page.content()


async def test_another_guilds_id_answers_404(
    context: BrowserContext, web: Web, pg: Backend, sandbox: SandboxServer
) -> None:
    await seed(web, pg)
    sandbox.driver.member(web.guild_id(1), "helper").roles = []  # staff in Guild 0 only
    page = await sign_in(context, web, "helper")
    for path in [f"/g/{web.guild_id(1)}", f"/g/{web.guild_id(1)}/cases/1", "/g/42"]:
        response = await page.goto(web.url + path)
        assert response is not None and response.status == 404, path
        assert SECRET not in await page.content()
    response = await page.goto(f"{web.url}/g/{web.guild_id(0)}")
    assert response is not None and response.status == 200


async def test_a_demoted_moderator_loses_access(
    context: BrowserContext, web: Web, pg: Backend, sandbox: SandboxServer
) -> None:
    await seed(web, pg)
    page = await sign_in(context, web, "mod2")
    cases = f"{web.url}/g/{web.guild_id()}"
    response = await page.goto(cases)
    assert response is not None and response.status == 200
    await sandbox.driver.set_roles(web.guild_id(), "owner", "mod2", ["Member"])
    demoted = time.monotonic()
    while (response := await page.goto(cases)) is not None and response.status == 200:
        assert time.monotonic() - demoted < ACCESS_TTL + 5, "still readable after the TTL"
    assert response is not None and response.status == 404


async def test_a_replayed_or_missing_state_is_refused(context: BrowserContext, web: Web) -> None:
    page = await context.new_page()
    await page.goto(web.url)
    await page.click("text=Sign in with Discord")
    seen: list[str] = []
    page.on("request", lambda request: seen.append(request.url))
    await page.click("button:text-is('mod')")
    await page.wait_for_url(web.url + "/")
    assert await page.locator("text=Sign out").count() == 1
    callback = next(u for u in seen if "/callback?" in u)
    response = await page.goto(callback)  # the same code and state again
    assert response is not None and response.status == 400
    assert "Sign in again." in await page.content()  # this browser's state cookie is spent
    response = await page.goto(callback.split("&state=")[0])  # no state at all
    assert response is not None and response.status == 400
