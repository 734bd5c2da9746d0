"""Discord's OAuth2 authorization-code flow, enough for the web console to sign in.

``GET /oauth2/authorize`` shows a page where you pick which demo user you are (Discord would
ask you to log in and consent); picking one sends the browser back to ``redirect_uri`` with a
one-time ``code`` and the ``state`` it was given. ``POST /api/v10/oauth2/token`` exchanges the
code, checking the client, the redirect URI and the PKCE verifier (S256), for a bearer token;
``GET /api/v10/users/@me`` and ``/users/@me/guilds`` with that token answer for the user.
Bot-token calls to those two paths go on to the REST API as before.
"""

from __future__ import annotations

import base64
import hashlib
import html
import secrets
import time
import urllib.parse
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from sandbox import payloads
from sandbox.core import Core

#: The client secret the sandbox's application accepts (its id is the world's application id).
CLIENT_SECRET = "sandbox-client-secret"
CODE_TTL = 120.0
SHOWN_USERS = 50
AUTHORIZE_FIELDS = ("client_id", "redirect_uri", "state", "code_challenge", "scope")


@dataclass(frozen=True)
class Grant:
    """What a code was issued for."""

    user_id: int
    client_id: str
    redirect_uri: str
    challenge: str
    expires: float


def _s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _error(status: int, code: str) -> web.Response:
    return web.json_response({"error": code}, status=status)


class OAuth2:
    """The authorize page, the token endpoint and the bearer-token user routes."""

    def __init__(self, core: Core) -> None:
        self.core = core
        self.codes: dict[str, Grant] = {}
        self.tokens: dict[str, int] = {}

    def install(self, app: web.Application, prefix: str, rest: Any) -> None:
        """Add the routes (before the REST catch-all, which `rest` is)."""
        self.rest = rest
        app.router.add_get("/oauth2/authorize", self.authorize_page)
        app.router.add_post("/oauth2/authorize", self.authorize)
        app.router.add_post(prefix + "/oauth2/token", self.token)
        app.router.add_get(prefix + "/users/@me", self.me)
        app.router.add_get(prefix + "/users/@me/guilds", self.my_guilds)

    client_secret = CLIENT_SECRET

    @property
    def client_id(self) -> str:
        """The application's id, which is the OAuth2 client id."""
        return str(self.core.world.application_id)

    async def authorize_page(self, request: web.Request) -> web.Response:
        """A form listing demo users; each button signs in as that user."""
        query = request.query
        if query.get("client_id") != self.client_id or query.get("response_type") != "code":
            return web.Response(status=400, text="unknown client_id or response_type")
        if query.get("code_challenge_method", "S256") != "S256" or not query.get("code_challenge"):
            return web.Response(status=400, text="PKCE with S256 is required here")
        hidden = "".join(
            f'<input type="hidden" name="{name}" value="{html.escape(query.get(name, ""))}">'
            for name in AUTHORIZE_FIELDS
        )
        users = [u for u in self.core.world.users.values() if not u.bot][:SHOWN_USERS]
        buttons = "".join(
            f'<button name="user_id" value="{u.id}">{html.escape(u.username)}</button> '
            for u in users
        )
        page = (
            "<!doctype html><meta name=viewport content='width=device-width'>"
            "<title>Sandbox sign-in</title><h1>Sign in to the sandbox as…</h1>"
            f"<p>scopes: {html.escape(query.get('scope', ''))}</p>"
            f'<form method="post" action="/oauth2/authorize">{hidden}{buttons}</form>'
        )
        return web.Response(text=page, content_type="text/html")

    async def authorize(self, request: web.Request) -> web.Response:
        """Issue a code for the chosen user and send the browser back."""
        form = await request.post()
        raw_user = str(form.get("user_id", ""))
        user = self.core.world.users.get(int(raw_user)) if raw_user.isdigit() else None
        if user is None or str(form.get("client_id")) != self.client_id:
            return web.Response(status=400, text="unknown user or client")
        code = secrets.token_urlsafe(16)
        redirect_uri = str(form.get("redirect_uri", ""))
        self.codes[code] = Grant(
            user.id,
            self.client_id,
            redirect_uri,
            str(form.get("code_challenge", "")),
            time.monotonic() + CODE_TTL,
        )
        back = {"code": code, "state": str(form.get("state", ""))}
        return web.Response(
            status=302, headers={"Location": f"{redirect_uri}?{urllib.parse.urlencode(back)}"}
        )

    async def token(self, request: web.Request) -> web.Response:
        """Exchange a code (once) for a bearer token."""
        form = await request.post()
        grant = self.codes.pop(str(form.get("code", "")), None)
        if (
            form.get("grant_type") != "authorization_code"
            or grant is None
            or grant.expires < time.monotonic()
        ):
            return _error(400, "invalid_grant")
        if form.get("client_id") != grant.client_id or form.get("client_secret") != CLIENT_SECRET:
            return _error(401, "invalid_client")
        if form.get("redirect_uri") != grant.redirect_uri:
            return _error(400, "invalid_grant")
        if _s256(str(form.get("code_verifier", ""))) != grant.challenge:
            return _error(400, "invalid_grant")
        token = secrets.token_urlsafe(24)
        self.tokens[token] = grant.user_id
        return web.json_response(
            {
                "access_token": token,
                "token_type": "Bearer",
                "expires_in": 604800,
                "scope": "identify guilds",
            }
        )

    async def _user(self, request: web.Request) -> int | web.StreamResponse:
        """The bearer token's user id; a bot call's REST answer; a 401 for a bad token."""
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Bearer "):
            return await self.rest.handle(request)
        user_id = self.tokens.get(auth.removeprefix("Bearer "))
        return _error(401, "invalid_token") if user_id is None else user_id

    async def me(self, request: web.Request) -> web.StreamResponse:
        """The token's user (a bot token: the bot, as before)."""
        user_id = await self._user(request)
        if not isinstance(user_id, int):
            return user_id
        return web.json_response(payloads.user(self.core.world.users[user_id]))

    async def my_guilds(self, request: web.Request) -> web.StreamResponse:
        """The guilds the token's user is a member of (a bot token: the bot's, as before)."""
        user_id = await self._user(request)
        if not isinstance(user_id, int):
            return user_id
        return web.json_response(
            [
                {"id": str(g.id), "name": g.name, "icon": None, "owner": g.owner_id == user_id}
                for g in self.core.world.guilds.values()
                if user_id in g.members
            ]
        )
