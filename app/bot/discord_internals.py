"""Every place where the bot reaches into discord.py beyond its public API, in one module.

discord.py 2.7 has no public way to launch a shard by RESUMEing a session another process
started, to close a shard without invalidating its session (Shard.close sends close code 1000,
which ends the session for good), to change an AutoShardedBot's shards while it runs, to wrap
every slash command call, to defer one without asking for the response back, to leave the
bot's own messages unparsed, to keep the close code Discord sent when discord.py's answer to it
fails, or to point the client at a Discord-compatible server. These helpers
do it with discord.py's internals. `missing_internals()` lists what an upgrade broke;
tests/bot/test_discord_internals.py fails on it, so an upgrade fails loudly here and nowhere
else, and the bot refuses to start on a discord.py whose internals moved.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import aiohttp
import discord
import discord.gateway
import discord.http
import discord.state
import discord.webhook.async_ as webhook_async
import yarl
from discord import app_commands
from discord.ext import commands
from discord.ext.commands.view import StringView
from discord.gateway import DiscordWebSocket, KeepAliveHandler, ReconnectWebSocket
from discord.shard import AutoShardedClient, Shard
from multidict import CIMultiDict, CIMultiDictProxy

from app.ops import gc_tuning

# Closing with a code other than 1000/1001 keeps the session resumable, as Discord documents.
RESUMABLE_CLOSE = 4000
CONNECT_TIMEOUT = 60.0
#: What `connect_shard` raises when the gateway could not be reached or dropped the socket
#: before IDENTIFY (a close code may still be fatal: see app/bot/fatal.py).
CONNECT_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    aiohttp.ClientError,
    discord.GatewayNotFound,
    discord.HTTPException,
    discord.ConnectionClosed,
    ReconnectWebSocket,
)

#: (what, class or module, attribute) for everything below that is not public API.
REQUIRED: tuple[tuple[str, object, str], ...] = (
    ("AutoShardedClient.launch_shard", AutoShardedClient, "launch_shard"),
    ("Shard._cancel_task", Shard, "_cancel_task"),
    ("Shard.launch", Shard, "launch"),
    ("DiscordWebSocket.from_client", DiscordWebSocket, "from_client"),
    ("DiscordWebSocket.DEFAULT_GATEWAY", DiscordWebSocket, "DEFAULT_GATEWAY"),
    ("Route.BASE", discord.http.Route, "BASE"),
    ("ConnectionState._add_guild_from_data", discord.state.ConnectionState, "_add_guild_from_data"),
    ("ConnectionState._remove_guild", discord.state.ConnectionState, "_remove_guild"),
    ("CommandTree._call", app_commands.CommandTree, "_call"),
    ("InteractionResponse._response_type", discord.InteractionResponse, "_response_type"),
    ("Interaction._session", discord.Interaction, "_session"),
    ("Interaction._state", discord.Interaction, "_state"),
    ("webhook.async_.async_context", webhook_async, "async_context"),
    ("webhook.async_.interaction_response_params", webhook_async, "interaction_response_params"),
    ("StringView.skip_ws", StringView, "skip_ws"),
    ("StringView.get_word", StringView, "get_word"),
    ("StringView.undo", StringView, "undo"),
    ("discord.gateway.KeepAliveHandler", discord.gateway, "KeepAliveHandler"),
    ("KeepAliveHandler.get_payload", KeepAliveHandler, "get_payload"),
    ("KeepAliveHandler.ack", KeepAliveHandler, "ack"),
    ("aiohttp.ClientResponse._headers", aiohttp.ClientResponse, "_headers"),
)
#: Instance attributes that AutoShardedClient.__init__ sets (the shard map is name-mangled).
#: Its event queue (`_AutoShardedClient__queue`) only exists once it connects: connect_shard
#: checks it then.
REQUIRED_ON_CLIENT = ("_connection", "_ready", "_AutoShardedClient__shards")
#: Instance attributes that aiohttp's ClientResponse.__init__ sets: `_cache` holds its cached
#: properties, `headers` among them (retry_proxy_429 drops that copy).
REQUIRED_ON_RESPONSE = ("_cache",)
#: Instance attributes that aiohttp's ClientWebSocketResponse.__init__ sets: `_close_code`
#: backs `close_code` (keep_peer_close_codes restores Discord's there).
REQUIRED_ON_WEBSOCKET = ("_close_code",)
#: Instance attributes of the client's ConnectionState: `parsers` maps each gateway event name
#: to its handler (the websocket calls it with the event's data).
REQUIRED_ON_STATE = ("parsers", "_get_guild")


def missing_internals(client: AutoShardedClient | None = None) -> list[str]:
    """What this module relies on and the installed discord.py lacks (empty when all is well).

    With a client, its instance attributes are checked too.
    """
    missing = [what for what, owner, name in REQUIRED if not hasattr(owner, name)]
    set_by_response = aiohttp.ClientResponse.__init__.__code__.co_names
    missing += [
        f"aiohttp.ClientResponse().{name}"
        for name in REQUIRED_ON_RESPONSE
        if name not in set_by_response
    ]
    set_by_websocket = aiohttp.ClientWebSocketResponse.__init__.__code__.co_names
    missing += [
        f"aiohttp.ClientWebSocketResponse().{name}"
        for name in REQUIRED_ON_WEBSOCKET
        if name not in set_by_websocket
    ]
    if client is not None:
        missing += [f"client.{name}" for name in REQUIRED_ON_CLIENT if not hasattr(client, name)]
        state = getattr(client, "_connection", None)
        missing += [
            f"client._connection.{name}" for name in REQUIRED_ON_STATE if not hasattr(state, name)
        ]
    return missing


# -- where the client connects ---------------------------------------------------------------
def point_discord(api_base: str, gateway_url: str) -> None:
    """Send discord.py's REST calls and gateway connections to a Discord-compatible server."""
    base = api_base.rstrip("/")
    if base != discord.http.Route.BASE:
        discord.http.Route.BASE = base
    if str(DiscordWebSocket.DEFAULT_GATEWAY) != gateway_url:
        DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway_url)


def default_gateway() -> yarl.URL:
    """The gateway URL a shard connects to when it has no session to resume."""
    return DiscordWebSocket.DEFAULT_GATEWAY


# -- a REST proxy's own 429 -------------------------------------------------------------------
#: The `Via` given to a proxy's 429 (discord.py only looks for the header).
PROXY_VIA = "1.1 guildbot (REST proxy 429)"


def retry_proxy_429(response: aiohttp.ClientResponse) -> bool:
    """Make discord.py wait and retry a REST proxy's own 429; True if `response` was one.

    discord.py (HTTPClient.request, and the webhook adapter that sends interaction responses
    and follow-ups) takes a 429 without `Via` for a Cloudflare ban and raises; nirn-proxy's
    own 429 (header `generated-by-proxy`, JSON `retry_after`) has none. Given a `Via`, it is
    waited out and retried like Discord's. Called from an aiohttp trace's on_request_end,
    before discord.py reads the headers.
    """
    headers = response.headers
    if response.status != 429 or "Via" in headers or "generated-by-proxy" not in headers:
        return False
    marked = CIMultiDict(headers)
    marked["Via"] = PROXY_VIA
    response._headers = CIMultiDictProxy(marked)
    response._cache.pop("headers", None)  # `headers` is a cached property
    return True


# -- heartbeat latency -----------------------------------------------------------------------
class RoundTripKeepAlive(KeepAliveHandler):
    """discord.py's keep-alive thread, with the latency measured from each heartbeat's send.

    discord.py stamps `_last_send` in the keep-alive thread after the event loop reports the
    heartbeat sent; an ACK the loop handles before that thread runs again is measured from the
    previous heartbeat, a whole interval earlier ("Can't keep up, shard ID 0 websocket is 41.2s
    behind", and `bot.latencies` reads 41 s). Here the time is taken when the heartbeat is
    built, just before it is handed to the loop, and `ack` measures from it.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._built_at = self._last_send

    def get_payload(self) -> dict[str, Any]:
        """The heartbeat frame; remembers when it was built."""
        self._built_at = time.perf_counter()
        return super().get_payload()

    def ack(self) -> None:
        """A HEARTBEAT_ACK: the latency is the time since the last heartbeat was built."""
        self._last_send = self._built_at
        super().ack()


def measure_round_trips() -> None:
    """Make every gateway connection of this process use :class:`RoundTripKeepAlive`."""
    discord.gateway.KeepAliveHandler = RoundTripKeepAlive  # type: ignore[misc]  # replacing the class is the point


# -- slash commands ----------------------------------------------------------------------------
class WrappedTree(app_commands.CommandTree):
    """A command tree whose every command call runs inside `around` (override it)."""

    async def around(
        self, interaction: discord.Interaction, call: Callable[[], Awaitable[None]]
    ) -> None:
        """Run `call` (the command); subclasses add what surrounds every command."""
        await call()

    async def _call(self, interaction: discord.Interaction) -> None:
        async def call() -> None:
            await super(WrappedTree, self)._call(interaction)

        await self.around(interaction, call)


async def defer_without_response(interaction: discord.Interaction, *, ephemeral: bool) -> None:
    """Defer a slash command as `interaction.response.defer` does, minus the returned response.

    discord.py asks Discord to return every callback's response (`with_response=1`) and
    builds a message from it; a deferral's is the "thinking..." placeholder, which the bot never
    reads. Without the parameter Discord answers 204 and neither side builds it. The request
    goes through the same adapter and session as discord.py's (so through the REST gate too),
    and raises the same HTTPException subclasses.
    """
    if interaction.response.is_done():
        raise discord.InteractionResponded(interaction)
    kind = discord.InteractionResponseType.deferred_channel_message
    params = webhook_async.interaction_response_params(
        type=kind.value, data={"flags": 64} if ephemeral else None
    )
    route = discord.http.Route(
        "POST",
        "/interactions/{webhook_id}/{webhook_token}/callback",
        webhook_id=interaction.id,
        webhook_token=interaction.token,
    )
    http = interaction._state.http
    await webhook_async.async_context.get().request(
        route,
        session=interaction._session,
        proxy=http.proxy,
        proxy_auth=http.proxy_auth,
        payload=params.payload,
    )
    interaction.response._response_type = kind


def mark_answered(interaction: discord.Interaction) -> None:
    """Record that the interaction was answered already, by an earlier delivery of it.

    Discord refused our deferral with 40060: a first delivery (in a process that then stopped,
    or in another session on the shard) deferred it. Its reply is still ours to send, through
    the follow-up webhook for 15 minutes; marked done, `ctx.send` goes there and the command's
    deadline counts that window instead of the 3 s of a first response.
    """
    interaction.response._response_type = discord.InteractionResponseType.deferred_channel_message


# -- prefix command arguments ------------------------------------------------------------------
# A converter sees one word; these let it read an argument that spans several ("1h 30m") from
# the command's StringView (its `index` and `previous` attributes are not documented).
def words_ahead(ctx: commands.Context[Any], count: int) -> list[tuple[str, int]]:
    """Up to `count` words after the current argument, each with the index just past it.

    The view does not move: follow with `skip_to` to consume some of them.
    """
    view = ctx.view
    start, previous = view.index, view.previous
    found: list[tuple[str, int]] = []
    try:
        while len(found) < count:
            view.skip_ws()
            if view.eof:
                break
            word = view.get_word()
            found.append((word, view.index))
    finally:
        view.index, view.previous = start, previous
    return found


def skip_to(ctx: commands.Context[Any], index: int) -> None:
    """Consume a prefix command's text up to `index` (one returned by `words_ahead`)."""
    ctx.view.index = index


def rest_of(ctx: commands.Context[Any]) -> str:
    """The prefix command's text not read yet (the extra words of a TooManyArguments)."""
    return ctx.view.buffer[ctx.view.index :].strip()


def give_back(ctx: commands.Context[Any]) -> None:
    """Leave the current argument for the next parameter (an optional one that is absent)."""
    ctx.view.undo()


# -- shards ------------------------------------------------------------------------------------
def keep_peer_close_codes(bot: commands.AutoShardedBot) -> None:
    """Let discord.py see the close code Discord sent (4011, 4014 ...), whatever its answer met.

    Discord closes the TCP connection right after its close frame. discord.py answers a close
    with one of its own (code 4000); when that write finds the socket already closed, aiohttp
    records 1006 over Discord's code, and discord.py, reading 1006, reconnects and identifies
    again instead of stopping on a fatal code (a shard refused with 4011 was identified five
    times, and the process blamed another process's identifies). Each gateway socket the bot
    opens keeps Discord's own codes (4000 and above) once received.
    """
    connect = bot.http.ws_connect

    async def ws_connect(url: str, *, compress: int = 0) -> aiohttp.ClientWebSocketResponse:
        socket = await connect(url, compress=compress)
        receive, close = socket.receive, socket.close
        sent: list[int] = []

        async def receive_noting_close(timeout: float | None = None) -> aiohttp.WSMessage:  # noqa: ASYNC109 (aiohttp's signature)
            msg = await receive(timeout)
            if msg.type is aiohttp.WSMsgType.CLOSE and isinstance(msg.data, int):
                sent.append(msg.data)
            return msg

        async def close_keeping_code(*, code: int = 1000, message: bytes = b"") -> bool:
            try:
                return await close(code=code, message=message)
            finally:
                if sent and sent[0] >= RESUMABLE_CLOSE:
                    socket._close_code = sent[0]

        setattr(socket, "receive", receive_noting_close)  # noqa: B010
        setattr(socket, "close", close_keeping_code)  # noqa: B010
        return socket

    setattr(bot.http, "ws_connect", ws_connect)  # noqa: B010


def shards_of(bot: commands.AutoShardedBot) -> dict[int, Shard]:
    """The bot's live Shard objects by id."""
    shards: dict[int, Shard] = getattr(bot, "_AutoShardedClient__shards")  # noqa: B009
    return shards


def set_shards(bot: commands.AutoShardedBot, shard_ids: list[int], count: int | None) -> None:
    """Change which shards (of how many) the running client considers its own."""
    bot.shard_ids = shard_ids
    state: Any = getattr(bot, "_connection")  # noqa: B009
    state.shard_ids = shard_ids
    if count is not None:
        state.shard_count = count


def session_of(shard: Shard) -> tuple[str | None, int | None, str | None]:
    """(session id, last sequence, resume URL) of a shard's current connection."""
    ws = shard.ws  # ws.gateway is READY's resume_gateway_url once the shard is connected
    return ws.session_id, ws.sequence, str(ws.gateway) if ws.gateway else None


async def connect_shard(
    bot: commands.AutoShardedBot,
    shard_id: int,
    gateway: yarl.URL,
    *,
    on_end: Callable[[int], None],
    initial: bool = False,
    session: tuple[str, int] | None = None,
) -> None:
    """Connect `shard_id` once: IDENTIFY, or RESUME `session` = (id, sequence).

    This replaces AutoShardedBot.launch_shard, which retries for ever, logging a traceback each
    time.

    Raises one of CONNECT_ERRORS when the gateway could not be reached. `on_end(shard_id)` is
    called the moment each of the shard's connections ends (op 9, a close, a dropped socket),
    before discord.py queues its reconnect: the caller learns at once that an identify failed.
    If Discord refuses a resume it answers INVALID_SESSION and discord.py re-identifies
    (through before_identify_hook, so through the identify queue).
    """
    session_id, sequence = session if session is not None else (None, None)
    ws = await asyncio.wait_for(
        DiscordWebSocket.from_client(
            bot,
            initial=initial,
            gateway=gateway,
            shard_id=shard_id,
            session=session_id,
            sequence=sequence,
            resume=session is not None,
        ),
        timeout=CONNECT_TIMEOUT,
    )
    queue: asyncio.Queue[Any] | None = getattr(bot, "_AutoShardedClient__queue", None)
    if queue is None:
        raise RuntimeError("discord.py internals moved: AutoShardedClient has no event queue")
    put = queue.put_nowait

    def ended(item: Any) -> None:
        on_end(shard_id)
        put(item)

    shard = Shard(ws, bot, ended)
    shards_of(bot)[shard_id] = shard
    shard.launch()


async def park_shard(shard: Shard) -> None:
    """Stop a shard but leave its session resumable for the next owner."""
    shard._cancel_task()
    await shard.ws.close(code=RESUMABLE_CLOSE)


def mark_ready(bot: commands.AutoShardedBot) -> None:
    """Set the client ready when its shards came up by RESUME (discord.py waits for READY)."""
    if not bot.is_ready():
        ready: asyncio.Event = getattr(bot, "_ready")  # noqa: B009
        ready.set()
        bot.dispatch("ready")


# -- the guild cache ---------------------------------------------------------------------------
def add_guild(bot: commands.AutoShardedBot, data: Any) -> None:
    """Put a guild (a GUILD_CREATE-shaped payload) into discord.py's cache.

    Nothing is dispatched, as with READY's guild list.
    """
    state: Any = getattr(bot, "_connection")  # noqa: B009
    state._add_guild_from_data(data)


def on_guild_miss(bot: commands.AutoShardedBot, miss: Callable[[int], None]) -> None:
    """Call `miss(guild_id)` whenever discord.py looks up a guild it does not hold, then again.

    Every parser and `bot.get_guild` look guilds up through the state's `_get_guild`, so `miss`
    can put the guild into the cache (`add_guild`) just in time.
    """
    state: Any = getattr(bot, "_connection")  # noqa: B009
    lookup = state._get_guild

    def get_guild(guild_id: int | None) -> discord.Guild | None:
        guild: discord.Guild | None = lookup(guild_id)
        if guild is None and guild_id is not None:
            miss(guild_id)
            guild = lookup(guild_id)
        return guild

    state._get_guild = get_guild


def skip_own_messages(bot: commands.AutoShardedBot) -> None:
    """Leave the bot's own messages (MESSAGE_CREATE) unparsed: nothing here acts on them.

    Discord sends the bot every message it posts, its answers included. discord.py would build
    a Message and dispatch `on_message`, where every listener ignores bots, and with no message
    cache (`max_messages=None`) nothing keeps it. Parser wrappers installed later (the handled
    sequence, the acting gate) still see the event.
    """
    state: Any = getattr(bot, "_connection")  # noqa: B009

    def unless_own(_event: str, parse: Callable[[Any], None]) -> Callable[[Any], None]:
        def handle(data: Any) -> None:
            author = data.get("author") if isinstance(data, dict) else None
            own = state.self_id
            if own is not None and author is not None and author.get("id") == str(own):
                return
            parse(data)

        return handle

    wrap_parsers(bot, ["MESSAGE_CREATE"], unless_own)


def intercept_guild_events(
    bot: commands.AutoShardedBot, hold: Callable[[int, Callable[[], None]], bool]
) -> None:
    """Offer every gateway event about a guild not in the cache to `hold` first.

    `hold(guild_id, handle)` returns True when it keeps the event, to call `handle()` later
    (once the guild is cached); False lets discord.py handle it now. Events of cached guilds
    and events without a guild_id are not offered.
    """
    state: Any = getattr(bot, "_connection")  # noqa: B009

    def offered(_event: str, parse: Callable[[Any], None]) -> Callable[[Any], None]:
        def handle(data: Any) -> None:
            raw = data.get("guild_id") if isinstance(data, dict) else None
            guild_id = int(raw) if raw is not None else None
            unknown = guild_id is not None and state._get_guild(guild_id) is None
            if unknown and guild_id is not None and hold(guild_id, lambda: parse(data)):
                return
            parse(data)

        return handle

    wrap_parsers(bot, list(state.parsers), offered)


def wrap_parsers(
    bot: commands.AutoShardedBot,
    events: Iterable[str],
    wrap: Callable[[str, Callable[[Any], None]], Callable[[Any], None]],
) -> None:
    """Replace the parser of each gateway event in `events` by `wrap(event, parser)`.

    The gateway calls parsers synchronously, right after recording the event's sequence.
    """
    state: Any = getattr(bot, "_connection")  # noqa: B009
    parsers: dict[str, Callable[[Any], None]] = state.parsers
    for event in events:
        parsers[event] = wrap(event, parsers[event])


def forget_guilds(bot: commands.AutoShardedBot, shard_id: int) -> None:
    """Drop a released shard's guilds from the cache: another process serves them now.

    The collector is given the frozen objects back: the dropped guilds are cycles of objects.
    """
    state: Any = getattr(bot, "_connection")  # noqa: B009
    for guild in [g for g in bot.guilds if g.shard_id == shard_id]:
        state._remove_guild(guild)
    gc_tuning.thaw()
