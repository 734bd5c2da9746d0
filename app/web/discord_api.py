"""What the console asks Discord: the OAuth2 sign-in, and the bot's view of a member.

Sign-in is the authorization-code flow with `state` and PKCE (S256); the user's access token
is used once, for who they are and which guilds to look at, and then forgotten. What a user
may do in a guild is always computed from the bot's view (bot token): the guild's owner and
roles and the member's roles, cached for at most `access_ttl` seconds, so that a demotion
takes effect within that time whatever the sign-in said.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
import urllib.parse
from dataclasses import dataclass
from typing import Any

import aiohttp

from app.domain.authority import BAN, KICK, MANAGE, MODERATE, Actor

#: Discord's permission bits for the permissions the case rules name.
BITS = {MODERATE: 1 << 40, BAN: 1 << 2, KICK: 1 << 1, MANAGE: 1 << 5}
ADMINISTRATOR = 1 << 3
#: Cached answers kept before the stale ones are dropped.
CACHE_MAX = 10_000


class DiscordError(Exception):
    """Discord refused (`status`) or did not answer (None): the page answers 502."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class SignInRefused(DiscordError):
    """Discord did not accept the sign-in's code (used, expired, or not for this client)."""


@dataclass(frozen=True, slots=True)
class Pkce:
    """A PKCE pair: the verifier kept in the session, the challenge sent to Discord."""

    verifier: str
    challenge: str

    @classmethod
    def new(cls) -> Pkce:
        """A fresh random verifier and its S256 challenge."""
        verifier = secrets.token_urlsafe(48)
        digest = hashlib.sha256(verifier.encode()).digest()
        return cls(verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode())


@dataclass(frozen=True, slots=True)
class SignedIn:
    """Who signed in, and the guilds Discord listed for them (a hint of where to look only)."""

    user_id: int
    name: str
    guild_ids: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class GuildView:
    """A guild as the bot sees it: its name and owner, and each role's position and bits."""

    guild_id: int
    name: str
    owner_id: int
    roles: dict[int, tuple[int, int]]


def actor_in(guild: GuildView, user_id: int, role_ids: list[int]) -> Actor:
    """The member's case-rule facts: top-role position and permissions.

    The owner and Administrator hold every permission.
    """
    everyone = guild.roles.get(guild.guild_id, (0, 0))
    held = [guild.roles[r] for r in role_ids if r in guild.roles]
    bits = everyone[1]
    for _, permissions in held:
        bits |= permissions
    if user_id == guild.owner_id or bits & ADMINISTRATOR:
        granted = frozenset(BITS)
    else:
        granted = frozenset(name for name, bit in BITS.items() if bits & bit)
    return Actor(user_id, max((position for position, _ in held), default=0), granted)


class DiscordApi:
    """REST calls of the console, with the bot's views cached for `access_ttl` seconds."""

    def __init__(
        self,
        api_base: str,
        bot_token: str,
        client_id: str,
        client_secret: str,
        access_ttl: float = 60.0,
    ) -> None:
        self.api_base = api_base.rstrip("/")
        self.bot_token, self.client_id, self.client_secret = bot_token, client_id, client_secret
        self.access_ttl = access_ttl
        self._cache: dict[str, tuple[float, Any]] = {}
        self._http: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        """Close the HTTP session."""
        if self._http is not None:
            await self._http.close()

    def _session(self) -> aiohttp.ClientSession:
        if self._http is None:
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        return self._http

    async def _call(
        self, method: str, path: str, auth: str, data: dict[str, str] | None = None
    ) -> Any:
        """The JSON answer; None for a 404; DiscordError for anything else that is not 2xx."""
        try:
            async with self._session().request(
                method, self.api_base + path, headers={"Authorization": auth}, data=data
            ) as response:
                if response.status == 404:
                    return None
                if response.status >= 300:
                    raise DiscordError(
                        f"Discord answered {response.status} to {path}", response.status
                    )
                return await response.json(content_type=None)
        except aiohttp.ClientError as error:
            raise DiscordError(f"Discord did not answer ({error})") from None

    async def sign_in(self, code: str, redirect_uri: str, verifier: str) -> SignedIn:
        """Exchange the code (with the PKCE verifier) and read the user and their guilds."""
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": verifier,
            "client_id": self.client_id,
            "client_secret": self.client_secret,
        }
        try:
            token = await self._call("POST", "/oauth2/token", "", form)
        except DiscordError as error:
            if error.status is not None and 400 <= error.status < 500:
                raise SignInRefused(str(error), error.status) from None
            raise
        if not isinstance(token, dict) or "access_token" not in token:
            raise SignInRefused("Discord did not accept the sign-in code")
        bearer = f"Bearer {token['access_token']}"
        user = await self._call("GET", "/users/@me", bearer)
        guilds = await self._call("GET", "/users/@me/guilds", bearer) or []
        if not isinstance(user, dict):
            raise DiscordError("Discord did not say who signed in")
        name = user.get("global_name") or user.get("username") or str(user["id"])
        return SignedIn(int(user["id"]), name, tuple(int(g["id"]) for g in guilds))

    async def _cached(self, key: str, path: str) -> Any:
        now = time.monotonic()
        hit = self._cache.get(key)
        if hit is not None and now - hit[0] < self.access_ttl:
            return hit[1]
        value = await self._call("GET", path, f"Bot {self.bot_token}")
        if len(self._cache) >= CACHE_MAX:  # forget what is stale anyway
            self._cache = {k: v for k, v in self._cache.items() if now - v[0] < self.access_ttl}
        self._cache[key] = (now, value)
        return value

    async def guild(self, guild_id: int) -> GuildView | None:
        """The guild as the bot sees it, or None when the bot is not in it."""
        data = await self._cached(f"g:{guild_id}", f"/guilds/{guild_id}")
        if not isinstance(data, dict):
            return None
        roles = {int(r["id"]): (int(r["position"]), int(r["permissions"])) for r in data["roles"]}
        return GuildView(guild_id, str(data["name"]), int(data["owner_id"]), roles)

    async def actor(self, guild: GuildView, user_id: int) -> Actor | None:
        """The user's facts in the guild, None when they are not a member of it."""
        data = await self._cached(
            f"m:{guild.guild_id}:{user_id}", f"/guilds/{guild.guild_id}/members/{user_id}"
        )
        if not isinstance(data, dict):
            return None
        return actor_in(guild, user_id, [int(r) for r in data.get("roles", [])])

    def authorize_url(self, base: str, redirect_uri: str, state: str, pkce: Pkce) -> str:
        """Discord's consent page for this sign-in (scopes identify and guilds)."""
        query = {
            "client_id": self.client_id,
            "response_type": "code",
            "redirect_uri": redirect_uri,
            "scope": "identify guilds",
            "state": state,
            "code_challenge": pkce.challenge,
            "code_challenge_method": "S256",
            "prompt": "none",
        }
        return f"{base}?{urllib.parse.urlencode(query)}"
