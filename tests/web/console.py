"""The web console against the sandbox (its REST and OAuth2) and the test database."""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import aiohttp

from app.config import Settings
from app.domain.types import CaseAction
from app.web.server import Console, build_console, make_app, serve
from app.web.sessions import RedisStore
from sandbox import SandboxServer
from sandbox.oauth import CLIENT_SECRET
from tests.conftest import Backend


@dataclass
class Web:
    """A running console: its URL, the objects behind it, and the sandbox it signs in with."""

    url: str
    console: Console
    sandbox: SandboxServer

    def guild_id(self, index: int = 0) -> int:
        """The id of the sandbox's guild number `index`."""
        return sorted(self.sandbox.world.guilds)[index]

    def user_id(self, name: str) -> int:
        """The id of a sandbox user by name."""
        return self.sandbox.world.user(name).id


def console_settings(sandbox: SandboxServer, **changes: object) -> Settings:
    """Settings of a console signing in with the sandbox's OAuth2 application."""
    return Settings(
        discord_client_id=str(sandbox.world.application_id),
        discord_client_secret=CLIENT_SECRET,
        discord_authorize_url=sandbox.url + "/oauth2/authorize",
        **changes,  # type: ignore[arg-type]  # test overrides of typed fields
    )


@asynccontextmanager
async def running_console(
    sandbox: SandboxServer, redis_url: str, **changes: object
) -> AsyncIterator[Web]:
    """The console on a free port, sessions in Redis, the database the tests have open."""
    store = RedisStore(redis_url)
    console = build_console(
        console_settings(sandbox, **changes), sandbox.rest_base, sandbox.bot_token, store, None
    )
    runner, url = await serve(make_app(console), "127.0.0.1", 0)
    console.auth.redirect_uri = url + "/callback"
    try:
        yield Web(url, console, sandbox)
    finally:
        await runner.cleanup()
        await console.auth.api.close()
        await store.close()


SECRET = "other guild secret"


async def seed(web: Web, pg: Backend) -> None:
    """Cases in Guild 0 (one about `mod`, one with markup) and one in Guild 1; coins for m1."""
    g0, g1, who = web.guild_id(0), web.guild_id(1), web.user_id
    opened = [
        (g0, CaseAction.WARN, "m1", "mod", "spamming links"),
        (g0, CaseAction.NOTE, "m2", "admin", "<script>alert(1)</script> watch them"),
        (g0, CaseAction.WARN, "mod", "admin", "the reader's own case"),
        (g0, CaseAction.NOTE, "m3", "mod", '=HYPERLINK("http://x") raid'),
        (g0, CaseAction.WARN, "m1", "admin", "raid bot invite"),
        (g1, CaseAction.WARN, "m1", "admin", SECRET),
    ]
    for name in ("m1", "m2", "m3", "mod", "admin"):  # the names the bot records as they chat
        await pg.bank.profile(g0, who(name), name.capitalize())
    for guild, action, target, moderator, reason in opened:
        await pg.moderation.open_case(guild, action, who(target), who(moderator), reason)
    await pg.moderation.pardon(g0, 1, who("admin"), "first offence, talked it through")
    await pg.bank.grant(g0, who("admin"), who("m1"), 50, reason="event prize")


class Visitor:
    """A browser without JavaScript: follows nothing by itself, keeps cookies by hand.

    (aiohttp's cookie jar refuses Secure cookies over plain http; a browser accepts them from
    127.0.0.1.)
    """

    def __init__(self, web_: Web | str) -> None:
        self.url = web_ if isinstance(web_, str) else web_.url
        self.cookies: dict[str, str] = {}
        self.http = aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar())

    async def close(self) -> None:
        """Close the HTTP session."""
        await self.http.close()

    def _keep(self, response: aiohttp.ClientResponse) -> None:
        for name, morsel in response.cookies.items():
            if morsel["max-age"] == "0" or not morsel.value:
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = morsel.value

    async def request(
        self, method: str, path: str, data: dict[str, str] | None = None
    ) -> tuple[int, str, aiohttp.ClientResponse]:
        """(status, body, response) of one request, cookies sent and kept."""
        url = path if path.startswith("http") else self.url + path
        cookie = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        async with self.http.request(
            method,
            url,
            data=data,
            headers={"Cookie": cookie} if cookie else {},
            allow_redirects=False,
        ) as response:
            body = await response.text()
            self._keep(response)
            return response.status, body, response

    async def get(self, path: str) -> tuple[int, str]:
        """(status, body) of a GET."""
        status, body, _ = await self.request("GET", path)
        return status, body

    async def start_sign_in(self, user: str) -> str:
        """Go to Discord (the sandbox), pick `user`: the callback URL Discord sends back."""
        status, _, response = await self.request("GET", "/login")
        assert status == 302, status
        authorize = urllib.parse.urlsplit(response.headers["Location"])
        fields = dict(urllib.parse.parse_qsl(authorize.query))
        assert fields["code_challenge_method"] == "S256" and fields["scope"] == "identify guilds"
        status, page, _ = await self.request("GET", response.headers["Location"])
        assert status == 200, page
        found = re.search(rf'name="user_id" value="(\d+)">{re.escape(user)}<', page)
        assert found is not None, f"{user} is not offered on the sign-in page"
        fields["user_id"] = found.group(1)
        target = f"{authorize.scheme}://{authorize.netloc}{authorize.path}"
        status, _, back = await self.request("POST", target, fields)
        assert status == 302, status
        return back.headers["Location"]

    async def sign_in(self, user: str) -> None:
        """Sign in as `user` through the whole OAuth2 flow."""
        status, body, _ = await self.request("GET", await self.start_sign_in(user))
        assert status == 302 and "gb_session" in self.cookies, (status, body)
