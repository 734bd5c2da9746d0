"""The web console's authorization, one test per row of docs/moderation.md's web table.

Everything goes over HTTP: the console signs in with the sandbox's OAuth2 and asks the
sandbox's REST API (bot token) who may read what; cases live in the test PostgreSQL,
sessions in the test Redis.
"""

from __future__ import annotations

import csv
import io
import json
import time
from datetime import UTC, datetime, timedelta

from app.web.sessions import RedisStore
from sandbox import SandboxServer
from tests.conftest import Backend
from tests.web.console import SECRET, Visitor, Web, running_console, seed


async def test_signed_out_visitors_are_sent_to_sign_in(web: Web, visitor: Visitor) -> None:
    g0 = web.guild_id()
    for path in ["/", f"/g/{g0}", f"/g/{g0}/cases/1", f"/g/{g0}/export.csv"]:
        status, _ = await visitor.get(path)
        assert status == (200 if path == "/" else 302), path
    status, body = await visitor.get("/")
    assert "Sign in with Discord" in body and "spamming" not in body


async def test_a_moderator_lists_searches_and_reads(
    web: Web, pg: Backend, visitor: Visitor
) -> None:
    await seed(web, pg)
    await visitor.sign_in("mod")
    g0, g1 = web.guild_id(0), web.guild_id(1)
    status, body = await visitor.get("/")
    assert status == 200 and f"/g/{g0}" in body and f"/g/{g1}" in body
    status, body = await visitor.get(f"/g/{g0}")
    assert status == 200 and "spamming links" in body and "raid bot invite" in body
    assert "the reader&#39;s own case" not in body and "reader's own" not in body
    assert SECRET not in body
    status, body = await visitor.get(f"/g/{g0}?q=raid&action=warn")
    assert "raid bot invite" in body and "HYPERLINK" not in body and "spamming" not in body
    status, body = await visitor.get(f"/g/{g0}/cases/1")
    assert status == 200 and "spamming links" in body and "DM to the member" in body
    today = datetime.now(UTC).date()
    _, body = await visitor.get(f"/g/{g0}?since={today}&until={today}")  # "to" includes the day
    assert "spamming links" in body and "raid bot invite" in body
    _, body = await visitor.get(f"/g/{g0}?until={today - timedelta(days=1)}")
    assert "No cases." in body
    for path in ["/cases/99", "/cases/99999999999", "/members/99999999999999999999999"]:
        assert (await visitor.get(f"/g/{g0}{path}"))[0] == 404, path
    status, body = await visitor.get(f"/g/{g0}?member=bob&action=bans")
    assert status == 400 and "must be a number" in body and "spamming" not in body


async def test_markup_in_a_reason_is_shown_as_text(web: Web, pg: Backend, visitor: Visitor) -> None:
    await seed(web, pg)
    await visitor.sign_in("mod")
    for path in [f"/g/{web.guild_id()}", f"/g/{web.guild_id()}/cases/2"]:
        _, body = await visitor.get(path)
        assert "&lt;script&gt;alert(1)&lt;/script&gt; watch them" in body, path
        assert "<script>" not in body, path


async def test_security_headers_on_every_page(web: Web, visitor: Visitor) -> None:
    status, _, response = await visitor.request("GET", "/")
    csp = response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "script-src" not in csp
    assert response.headers["X-Frame-Options"] == "DENY"
    status, _, response = await visitor.request("GET", f"/g/{web.guild_id()}")
    assert status == 302 and "default-src 'none'" in response.headers["Content-Security-Policy"]


async def test_a_plain_member_sees_no_guild(web: Web, pg: Backend, visitor: Visitor) -> None:
    await seed(web, pg)
    await visitor.sign_in("m1")
    status, body = await visitor.get("/")
    assert status == 200 and "No server where you may read cases" in body
    for path in ["", "/cases/1", f"/members/{web.user_id('m2')}", "/export.csv"]:
        status, body = await visitor.get(f"/g/{web.guild_id()}{path}")
        assert status == 404 and "spamming" not in body, path


async def test_a_guild_you_may_not_read_answers_like_one_that_does_not_exist(
    web: Web, pg: Backend, visitor: Visitor, sandbox: SandboxServer
) -> None:
    await seed(web, pg)
    g1 = web.guild_id(1)
    sandbox.driver.member(g1, "mod").roles = []  # staff in Guild 0 only
    await visitor.sign_in("mod")
    missing = await visitor.get("/g/123456789012345678")
    for path in [f"/g/{g1}", f"/g/{g1}/cases/1", f"/g/{g1}/export.json?q=secret"]:
        status, body = await visitor.get(path)
        assert (status, body) == missing and status == 404, path
    status, body = await visitor.get("/")
    assert f"/g/{g1}" not in body and f"/g/{web.guild_id(0)}" in body


async def test_cases_about_yourself_are_never_shown(
    web: Web, pg: Backend, visitor: Visitor
) -> None:
    await seed(web, pg)
    await visitor.sign_in("mod")
    g0, me = web.guild_id(), web.user_id("mod")
    assert (await visitor.get(f"/g/{g0}/cases/3"))[0] == 404
    assert (await visitor.get(f"/g/{g0}/members/{me}"))[0] == 404
    status, body = await visitor.get(f"/g/{g0}?member={me}")
    assert status == 200 and "own case" not in body and "No cases." in body
    status, body = await visitor.get(f"/g/{g0}/export.json")
    assert sorted(row["number"] for row in json.loads(body)) == [1, 2, 4, 5]


async def test_export_is_the_current_search_and_formula_safe(
    web: Web, pg: Backend, visitor: Visitor
) -> None:
    await seed(web, pg)
    await visitor.sign_in("admin")
    status, body, response = await visitor.request("GET", f"/g/{web.guild_id()}/export.csv?q=raid")
    assert status == 200 and response.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(body)))
    assert [r["number"] for r in rows] == ["5", "4"]
    assert rows[1]["reason"].startswith("'=HYPERLINK")
    assert 'filename="cases-' in response.headers["Content-Disposition"]


async def test_the_ledger_needs_manage_server(web: Web, pg: Backend, visitor: Visitor) -> None:
    await seed(web, pg)
    page = f"/g/{web.guild_id()}/members/{web.user_id('m1')}"
    await visitor.sign_in("mod")  # Moderator: no Manage Server
    status, body = await visitor.get(page)
    assert status == 200 and "spamming links" in body and "event prize" not in body
    admin = Visitor(web)
    try:
        await admin.sign_in("admin")
        status, body = await admin.get(page)
        assert status == 200 and "event prize" in body and "Coins" in body
    finally:
        await admin.close()


async def test_a_demoted_moderator_loses_access_within_the_cache_ttl(
    sandbox: SandboxServer, pg: Backend, redis_server_url: str
) -> None:
    ttl = 0.3
    async with running_console(sandbox, redis_server_url, web_access_ttl_s=ttl) as web:
        await seed(web, pg)
        visitor = Visitor(web)
        try:
            await visitor.sign_in("mod2")
            page = f"/g/{web.guild_id()}"
            assert (await visitor.get(page))[0] == 200
            await sandbox.driver.set_roles(web.guild_id(), "owner", "mod2", ["Member"])
            demoted = time.monotonic()
            while (await visitor.get(page))[0] != 404:
                assert time.monotonic() - demoted < ttl + 2, "still readable after the TTL"
            assert "spamming" not in (await visitor.get("/"))[1]
        finally:
            await visitor.close()


async def test_sign_in_state_must_be_this_browsers_and_fresh(web: Web, visitor: Visitor) -> None:
    callback = await visitor.start_sign_in("mod")
    stolen = Visitor(web)  # another browser, without the state cookie
    try:
        assert (await stolen.get(callback))[0] == 400
    finally:
        await stolen.close()
    missing = callback.split("&state=")[0].replace("state=", "x=")
    assert (await visitor.get(missing))[0] == 400
    forged = Visitor(web)  # a fresh sign-in of its own, then a code Discord never issued
    try:
        state = (await forged.start_sign_in("mod")).rsplit("state=", 1)[1]
        status, body = await forged.get(f"/callback?code=forged&state={state}")
        assert status == 400 and "Discord refused" in body and "gb_session" not in forged.cookies
    finally:
        await forged.close()
    status, _ = await visitor.get(callback)
    assert status == 302 and "gb_session" in visitor.cookies
    replay = Visitor(web)
    try:
        replay.cookies["gb_state"] = callback.rsplit("state=", 1)[1]
        status, body = await replay.get(callback)
        assert status == 400 and "expired or was used" in body
    finally:
        await replay.close()


async def test_sign_out_needs_the_csrf_token_and_ends_the_session(
    web: Web, pg: Backend, visitor: Visitor
) -> None:
    await visitor.sign_in("mod")
    session = visitor.cookies["gb_session"]
    status, _, _ = await visitor.request("POST", "/logout", {"csrf": "forged"})
    assert status == 403 and (await visitor.get(f"/g/{web.guild_id()}"))[0] == 200
    _, body = await visitor.get("/")
    token = body.split('name="csrf" value="', 1)[1].split('"', 1)[0]
    status, _, _ = await visitor.request("POST", "/logout", {"csrf": token})
    assert status == 302 and "gb_session" not in visitor.cookies
    visitor.cookies["gb_session"] = session  # the old cookie, kept by someone
    assert (await visitor.get(f"/g/{web.guild_id()}"))[0] == 302


async def test_a_session_expires(
    sandbox: SandboxServer, pg: Backend, redis_server_url: str
) -> None:
    async with running_console(sandbox, redis_server_url, web_session_ttl_s=60) as web:
        visitor = Visitor(web)
        try:
            await visitor.sign_in("mod")
            key = visitor.cookies["gb_session"]
            assert (await visitor.get(f"/g/{web.guild_id()}"))[0] == 200
            store = web.console.auth.store
            assert isinstance(store, RedisStore)
            assert 0 < await store.client.pttl(f"web:session:{key}") <= 60_000
            assert await _session_cookie_age(visitor) == "60"
            # What Redis does when the TTL runs out (to the session now in use):
            await store.take(f"session:{visitor.cookies['gb_session']}")
            assert (await visitor.get(f"/g/{web.guild_id()}"))[0] == 302
        finally:
            await visitor.close()


async def _session_cookie_age(visitor: Visitor) -> str:
    """Max-Age of the session cookie a fresh sign-in sets (signs in again as mod)."""
    callback = await visitor.start_sign_in("mod")
    _, _, response = await visitor.request("GET", callback)
    morsel = response.cookies["gb_session"]
    assert morsel["httponly"] and morsel["secure"] and morsel["samesite"] == "Lax"
    return str(morsel["max-age"])
