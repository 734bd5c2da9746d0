"""Sign-in, sessions and the per-request authorization of the console.

A browser is signed in by the `gb_session` cookie (HttpOnly, Secure, SameSite=Lax), the key of
a record in the session store that expires `session_ttl` seconds after sign-in. The sign-in
itself is Discord's OAuth2 code flow: `state` is random, kept in the store for ten minutes and
in a short cookie of the same browser, and taken (deleted) when Discord sends the browser back,
so a missing, foreign or replayed `state` is refused; the PKCE verifier stays server-side.

Every guild page asks `reader()`: the guild as the bot sees it, the user's member and roles
(app/web/discord_api.py, cached at most WEB_ACCESS_TTL_S), and the case rule of
app/domain/authority.py. Anything short of Moderate Members answers 404, exactly like a guild
that does not exist, so a guild id reveals nothing.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from app.domain.authority import MODERATE, Actor
from app.web.discord_api import DiscordApi, GuildView, Pkce, SignInRefused
from app.web.sessions import Store

SESSION_COOKIE, STATE_COOKIE = "gb_session", "gb_state"
STATE_TTL = 600.0


def redirect(location: str) -> web.Response:
    """A 302 to `location` that cookies can be set on."""
    return web.Response(status=302, headers={"Location": location})


@dataclass(frozen=True, slots=True)
class Session:
    """A signed-in user: who, the guilds Discord listed at sign-in, the CSRF token."""

    key: str
    user_id: int
    name: str
    guild_ids: tuple[int, ...]
    csrf: str


@dataclass(frozen=True, slots=True)
class Reader:
    """A signed-in user allowed to read a guild's cases, and their facts there."""

    session: Session
    guild: GuildView
    actor: Actor


class Auth:
    """The sign-in flow and the checks every request goes through."""

    def __init__(
        self,
        store: Store,
        api: DiscordApi,
        *,
        authorize_url: str,
        public_url: str,
        session_ttl: float,
    ) -> None:
        self.store, self.api = store, api
        self.authorize_url, self.session_ttl = authorize_url, session_ttl
        self.redirect_uri = public_url.rstrip("/") + "/callback"

    def _cookie(self, response: web.StreamResponse, name: str, value: str, age: float) -> None:
        response.set_cookie(
            name, value, max_age=int(age), httponly=True, secure=True, samesite="Lax", path="/"
        )

    async def start(self, request: web.Request) -> web.Response:
        """Redirect to Discord's consent page with a fresh state and PKCE challenge."""
        state, pkce = secrets.token_urlsafe(24), Pkce.new()
        await self.store.put(f"state:{state}", {"verifier": pkce.verifier}, STATE_TTL)
        url = self.api.authorize_url(self.authorize_url, self.redirect_uri, state, pkce)
        response = redirect(url)
        self._cookie(response, STATE_COOKIE, state, STATE_TTL)
        return response

    async def finish(self, request: web.Request) -> web.Response:
        """Discord sent the browser back: check state, exchange the code, open a session."""
        state = request.query.get("state", "")
        code = request.query.get("code", "")
        cookie = request.cookies.get(STATE_COOKIE, "")
        if not state or not code or not hmac.compare_digest(state, cookie):
            raise web.HTTPBadRequest(text="This sign-in was not started here. Sign in again.")
        login = await self.store.take(f"state:{state}")
        if login is None:
            raise web.HTTPBadRequest(text="This sign-in expired or was used. Sign in again.")
        try:
            who = await self.api.sign_in(code, self.redirect_uri, str(login["verifier"]))
        except SignInRefused:
            raise web.HTTPBadRequest(text="Discord refused this sign-in. Sign in again.") from None
        key = secrets.token_urlsafe(32)
        record = {
            "user_id": who.user_id,
            "name": who.name,
            "guild_ids": list(who.guild_ids),
            "csrf": secrets.token_urlsafe(24),
        }
        await self.store.put(f"session:{key}", record, self.session_ttl)
        response = redirect("/")
        self._cookie(response, SESSION_COOKIE, key, self.session_ttl)
        response.del_cookie(STATE_COOKIE, path="/")
        return response

    async def session(self, request: web.Request) -> Session | None:
        """The request's live session, None when signed out or expired."""
        key = request.cookies.get(SESSION_COOKIE)
        record: dict[str, Any] | None = await self.store.get(f"session:{key}") if key else None
        if key is None or record is None:
            return None
        return Session(
            key,
            int(record["user_id"]),
            str(record["name"]),
            tuple(int(g) for g in record["guild_ids"]),
            str(record["csrf"]),
        )

    async def signed_in(self, request: web.Request) -> Session:
        """The session, or a redirect to the sign-in page."""
        found = await self.session(request)
        if found is None:
            raise web.HTTPFound("/")
        return found

    async def logout(self, request: web.Request) -> web.Response:
        """End the session (a POST carrying the session's CSRF token)."""
        found = await self.signed_in(request)
        form = await request.post()
        if not hmac.compare_digest(str(form.get("csrf", "")), found.csrf):
            raise web.HTTPForbidden(text="The form is stale or was not sent from this site.")
        await self.store.take(f"session:{found.key}")
        response = redirect("/")
        response.del_cookie(SESSION_COOKIE, path="/")
        return response

    async def reader(self, request: web.Request, guild_id: int) -> Reader:
        """The signed-in user as a reader of the guild's cases; 404 unless they may read them."""
        session = await self.signed_in(request)
        guild = await self.api.guild(guild_id)
        actor = await self.api.actor(guild, session.user_id) if guild else None
        if guild is None or actor is None or MODERATE not in actor.permissions:
            raise web.HTTPNotFound(text="There is nothing here.")
        return Reader(session, guild, actor)

    async def readable_guilds(self, session: Session) -> list[GuildView]:
        """The guilds Discord listed at sign-in where the bot lets the user read cases now."""
        found = []
        for guild_id in session.guild_ids:
            guild = await self.api.guild(guild_id)
            actor = await self.api.actor(guild, session.user_id) if guild else None
            if guild and actor and MODERATE in actor.permissions:
                found.append(guild)
        return found
