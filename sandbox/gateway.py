"""The gateway: websocket sessions, shard routing, identify limit, resume buffers, zlib-stream."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
import zlib
from collections import deque
from collections.abc import Callable
from typing import Any, ClassVar

from aiohttp import WSMsgType, web

from sandbox import intents as gw_intents
from sandbox import payloads
from sandbox.core import Core
from sandbox.identify import IdentifyLimiter
from sandbox.records import DuplicateRecord, IdentifyRecord, SessionInfo
from sandbox.snowflake import shard_for

log = logging.getLogger(__name__)

DISPATCH, HEARTBEAT, IDENTIFY, PRESENCE, VOICE_STATE = 0, 1, 2, 3, 4
RESUME, RECONNECT, REQUEST_MEMBERS, INVALID_SESSION, HELLO, HEARTBEAT_ACK = 6, 7, 8, 9, 10, 11
CHUNK_SIZE = 1000
#: Gateway versions Discord still serves; a client asking for another is closed with 4012.
SUPPORTED_VERSIONS = {"9", "10"}


class Connection:
    """One websocket. Frames go through a queue so they leave in dispatch order."""

    def __init__(self, ws: web.WebSocketResponse, request: web.Request, compress: bool) -> None:
        self.ws = ws
        self.transport = request.transport
        #: The gateway version the client asked for (``?v=``), if any.
        self.version = request.query.get("v")
        self.compressor = zlib.compressobj() if compress else None
        self.session: GatewaySession | None = None
        self.queue: asyncio.Queue[str | int] = asyncio.Queue()
        self.writer = asyncio.get_running_loop().create_task(self._write())

    def send(self, text: str) -> None:
        """Queue a text frame (already JSON)."""
        self.queue.put_nowait(text)

    def send_op(self, op: int, data: Any) -> None:
        """Queue a non-dispatch opcode."""
        self.send(json.dumps({"op": op, "d": data, "s": None, "t": None}))

    def close(self, code: int) -> None:
        """Close with ``code`` after the frames queued so far."""
        self.queue.put_nowait(code)

    def abort(self) -> None:
        """Drop the TCP connection without a close frame (the client sees 1006)."""
        if self.transport is not None:
            self.transport.abort()

    async def _write(self) -> None:
        while True:
            item = await self.queue.get()
            try:
                if isinstance(item, int):
                    await self.ws.close(code=item)
                    return
                if self.compressor is None:
                    await self.ws.send_str(item)
                else:
                    data = self.compressor.compress(item.encode())
                    await self.ws.send_bytes(data + self.compressor.flush(zlib.Z_SYNC_FLUSH))
            except (ConnectionError, RuntimeError):
                return


class GatewaySession:
    """A gateway session: survives its connection so that RESUME can replay missed events."""

    def __init__(
        self,
        shard: tuple[int, int],
        intents: int,
        large_threshold: int,
        buffer_size: int,
        compressed: bool,
    ) -> None:
        self.id = uuid.uuid4().hex
        self.shard_id, self.shard_count = shard
        self.intents = intents
        self.large_threshold = large_threshold
        self.compressed = compressed
        self.seq = 0
        self.buffer: deque[tuple[int, str]] = deque(maxlen=buffer_size)
        self.conn: Connection | None = None
        self.resumes = 0
        #: Dispatches re-sent by RESUMEs (events the client had missed).
        self.replayed = 0
        self.created = time.time()
        self.disconnected_at: float | None = None

    def holds(self, guild_id: int | None) -> bool:
        """Whether events of ``guild_id`` (None: DMs and guild-less events) go to this session."""
        if guild_id is None:
            return self.shard_id == 0
        return shard_for(guild_id, self.shard_count) == self.shard_id

    def dispatch(self, event: str, data: dict[str, Any]) -> None:
        """Number, buffer and (when connected) send a dispatch."""
        self.seq += 1
        text = json.dumps({"op": DISPATCH, "t": event, "s": self.seq, "d": data})
        self.buffer.append((self.seq, text))
        if self.conn is not None:
            self.conn.send(text)

    def missed_since(self, seq: int) -> list[str] | None:
        """Frames after ``seq`` for a RESUME, or None when they are no longer all buffered."""
        if seq > self.seq:
            return None
        if seq == self.seq:
            return []
        if not self.buffer or self.buffer[0][0] > seq + 1:
            return None
        return [text for s, text in self.buffer if s > seq]

    def info(self) -> SessionInfo:
        return SessionInfo(
            id=self.id,
            shard_id=self.shard_id,
            shard_count=self.shard_count,
            connected=self.conn is not None,
            seq=self.seq,
            intents=self.intents,
            resumes=self.resumes,
            replayed=self.replayed,
            compressed=self.compressed,
            created=self.created,
        )


class GatewayHub:
    """All sessions; routes events to the sessions holding each guild's shard."""

    def __init__(self, core: Core) -> None:
        self.core = core
        settings = core.settings
        self.limiter = IdentifyLimiter(settings.identify_window, settings.max_concurrency)
        self.sessions: dict[str, GatewaySession] = {}
        self.connections: set[Connection] = set()
        self.identifies: list[IdentifyRecord] = []
        self.duplicates: list[DuplicateRecord] = []
        self.start_limit_remaining = settings.session_start_total
        #: HEARTBEAT_ACKs sent, over every connection.
        self.heartbeats_acked = 0
        #: Delays (seconds) of the next RESUMEs, set by ``delay_resumes``.
        self.resume_delays: deque[float] = deque()
        self._later: set[asyncio.Task[None]] = set()

    # -- routing ---------------------------------------------------------------------------
    def dispatch(self, event: str, data: dict[str, Any], guild_id: int | None) -> None:
        """Send an event to every session (connected or resumable) holding its shard."""
        bot_id = self.core.world.bot.id
        for session in self.holders(guild_id):
            shaped = gw_intents.filter_event(session.intents, event, data, guild_id, bot_id)
            if shaped is not None:
                session.dispatch(event, shaped)

    def holders(self, guild_id: int | None) -> list[GatewaySession]:
        """The sessions (connected or resumable, of every shard count) holding ``guild_id``."""
        return [s for s in self._resumable() if s.holds(guild_id)]

    def guild_joined(self, guild_id: int) -> None:
        """The bot joined a guild: its GUILD_CREATE (shaped per session, as after READY) to
        every session holding it."""
        for session in self.holders(guild_id):
            self._send_guild(session, guild_id)

    def _resumable(self) -> list[GatewaySession]:
        cutoff = time.time() - self.core.settings.session_ttl
        expired = [
            s.id
            for s in self.sessions.values()
            if s.disconnected_at is not None and s.disconnected_at < cutoff
        ]
        for session_id in expired:
            del self.sessions[session_id]
        return list(self.sessions.values())

    def live_sessions(self, shard_id: int | None = None) -> list[GatewaySession]:
        """Connected sessions, optionally only those holding ``shard_id``."""
        return [
            s
            for s in self.sessions.values()
            if s.conn is not None and (shard_id is None or s.shard_id == shard_id)
        ]

    def shard_holders(self) -> dict[int, list[str]]:
        """shard id -> ids of the connected sessions holding it."""
        holders: dict[int, list[str]] = {}
        for session in self.live_sessions():
            holders.setdefault(session.shard_id, []).append(session.id)
        return holders

    def shard_holders_by_count(self) -> dict[int, dict[int, list[str]]]:
        """shard count -> shard id -> ids of the connected sessions holding it."""
        holders: dict[int, dict[int, list[str]]] = {}
        for session in self.live_sessions():
            shards = holders.setdefault(session.shard_count, {})
            shards.setdefault(session.shard_id, []).append(session.id)
        return holders

    def _check_duplicates(self, session: GatewaySession) -> None:
        same = [
            s.id
            for s in self.live_sessions(session.shard_id)
            if s.shard_count == session.shard_count
        ]
        if len(same) > 1:
            log.warning("shard %s held by %d sessions", session.shard_id, len(same))
            self.duplicates.append(
                DuplicateRecord(time.time(), session.shard_id, session.shard_count, same)
            )

    # -- control hooks ---------------------------------------------------------------------
    def send_reconnect(self, shard_id: int) -> int:
        """Send op 7 RECONNECT to the live sessions of a shard; returns how many."""
        targets = self.live_sessions(shard_id)
        for session in targets:
            assert session.conn is not None
            session.conn.send_op(RECONNECT, None)
        return len(targets)

    def send_invalid_session(self, shard_id: int, resumable: bool = False) -> int:
        """Send op 9; unless resumable the sessions are forgotten so the client re-identifies."""
        targets = self.live_sessions(shard_id)
        for session in targets:
            assert session.conn is not None
            session.conn.send_op(INVALID_SESSION, resumable)
            if not resumable:
                self._forget(session)
        return len(targets)

    def drop_connection(self, shard_id: int) -> int:
        """Abort the TCP connections of a shard's live sessions (no close frame)."""
        targets = self.live_sessions(shard_id)
        for session in targets:
            assert session.conn is not None
            session.conn.abort()
        return len(targets)

    def spend_identify(self, shard_id: int) -> None:
        """Take the shard's identify bucket now, as another process of the bot would: an
        IDENTIFY within the window is answered op 9 (a restart within the window)."""
        self.limiter.spend(shard_id)

    def delay_resumes(self, seconds: float, count: int = 1) -> None:
        """Answer the next ``count`` RESUMEs ``seconds`` late: the replay of what the session
        missed comes that much later (a slow takeover)."""
        self.resume_delays.extend([seconds] * count)

    def _later_task(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._later.add(task)
        task.add_done_callback(self._later.discard)

    def _forget(self, session: GatewaySession) -> None:
        self.sessions.pop(session.id, None)
        if session.conn is not None:
            session.conn.session = None
            session.conn = None
        self.core.changed()

    async def close_all(self) -> None:
        """Abort every connection (server shutdown)."""
        for task in list(self._later):
            task.cancel()
        for conn in list(self.connections):
            conn.abort()
            conn.writer.cancel()

    # -- websocket -------------------------------------------------------------------------
    async def handle(self, request: web.Request) -> web.StreamResponse:
        """The websocket endpoint: HELLO, then read opcodes until the socket closes."""
        ws = web.WebSocketResponse(autoping=True, max_msg_size=0)
        await ws.prepare(request)
        wants_zlib = request.query.get("compress") == "zlib-stream"
        conn = Connection(ws, request, wants_zlib and self.core.settings.compress)
        self.connections.add(conn)
        conn.send_op(
            HELLO,
            {"heartbeat_interval": self.core.settings.heartbeat_interval_ms, "_trace": ["sandbox"]},
        )
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                self._on_frame(conn, msg.data)
        finally:
            self.connections.discard(conn)
            self._detach(conn)
            with contextlib.suppress(asyncio.QueueFull):
                conn.queue.put_nowait(1000)
        return ws

    def _detach(self, conn: Connection) -> None:
        """The socket is gone: its session stays resumable unless the client closed it for
        good (close code 1000 or 1001, as Discord treats them)."""
        session = conn.session
        if session is not None and session.conn is conn:
            if conn.ws.close_code in (1000, 1001):
                self._forget(session)
            else:
                session.conn = None
                session.disconnected_at = time.time()
        conn.session = None
        self.core.changed()

    def _on_frame(self, conn: Connection, text: str) -> None:
        try:
            frame = json.loads(text)
            op, data = frame["op"], frame.get("d")
            handler = self._HANDLERS.get(op)
            if handler is not None:
                handler(self, conn, data or {})
            elif op == HEARTBEAT:
                self._acknowledge(conn)
            elif op not in (PRESENCE, VOICE_STATE):
                conn.close(4001)  # unknown opcode
        except (ValueError, KeyError, TypeError, IndexError, AttributeError):
            conn.close(4002)  # decode error

    def _acknowledge(self, conn: Connection) -> None:
        """HEARTBEAT_ACK after ``heartbeat_ack_delay`` (a realistic round trip, see Settings)."""

        def ack() -> None:
            conn.send_op(HEARTBEAT_ACK, None)
            self.heartbeats_acked += 1
            self.core.changed()

        asyncio.get_running_loop().call_later(self.core.settings.heartbeat_ack_delay, ack)

    def _token_ok(self, token: object) -> bool:
        expected = self.core.settings.token
        return expected is None or str(token).removeprefix("Bot ") == expected

    def _on_identify(self, conn: Connection, data: dict[str, Any]) -> None:
        if conn.session is not None:
            conn.close(4005)
            return
        if not self._token_ok(data.get("token")):
            conn.close(4004)
            return
        shard = data.get("shard") or [0, 1]
        shard_id, shard_count = int(shard[0]), int(shard[1])
        intents = int(data.get("intents", gw_intents.DEFAULT))

        def record(accepted: bool, reason: str = "", session_id: str | None = None) -> None:
            self.identifies.append(
                IdentifyRecord(time.time(), shard_id, shard_count, session_id, accepted, reason)
            )
            self.core.changed()

        refusal = self._refusal(conn, shard_id, shard_count, intents)
        if refusal is not None:
            code, reason = refusal
            record(False, reason)
            conn.close(code)
            return
        if not self.limiter.try_acquire(shard_id):
            record(False, "identify rate limited")
            conn.send_op(INVALID_SESSION, False)
            return
        session = GatewaySession(
            (shard_id, shard_count),
            intents,
            int(data.get("large_threshold", 50)),
            self.core.settings.resume_buffer,
            conn.compressor is not None,
        )
        self.sessions[session.id] = session
        self.start_limit_remaining = max(0, self.start_limit_remaining - 1)
        session.conn, conn.session = conn, session
        record(True, session_id=session.id)
        self._check_duplicates(session)
        guilds = [g for g in self.core.world.guilds if session.holds(g)]
        settings = self.core.settings
        if settings.ready_delay or settings.guild_create_interval:
            self._later_task(self._greet_slowly(session, guilds))
        else:
            self._send_ready(session, guilds)
            for guild_id in guilds:
                self._send_guild(session, guild_id)

    def _refusal(
        self, conn: Connection, shard_id: int, shard_count: int, intents: int
    ) -> tuple[int, str] | None:
        """Discord's close code and reason for an IDENTIFY it refuses, or None."""
        settings = self.core.settings
        if conn.version is not None and conn.version not in SUPPORTED_VERSIONS:
            return 4012, "invalid API version"
        if intents < 0 or intents & ~gw_intents.KNOWN:
            return 4013, "invalid intents"
        if intents & gw_intents.PRIVILEGED & ~settings.privileged_intents:
            return 4014, "disallowed intents"
        if shard_count < 1 or not 0 <= shard_id < shard_count:
            return 4010, "invalid shard"
        if shard_count % max(1, settings.shard_count_multiple):
            return 4010, "invalid shard"
        guilds = sum(1 for g in self.core.world.guilds if shard_for(g, shard_count) == shard_id)
        if guilds > settings.max_guilds_per_shard:
            return 4011, "sharding required"
        return None

    async def _greet_slowly(self, session: GatewaySession, guild_ids: list[int]) -> None:
        """READY after ``ready_delay``, each GUILD_CREATE after ``guild_create_interval``."""
        settings = self.core.settings
        await asyncio.sleep(settings.ready_delay)  # the simulated latency itself
        if session.id not in self.sessions:
            return
        self._send_ready(session, guild_ids)
        for guild_id in guild_ids:
            await asyncio.sleep(settings.guild_create_interval)
            if session.id not in self.sessions:
                return
            self._send_guild(session, guild_id)

    def _send_ready(self, session: GatewaySession, guild_ids: list[int]) -> None:
        world = self.core.world
        ready = {
            "v": 10,
            "user": {**payloads.user(world.bot), "verified": True, "mfa_enabled": False},
            "guilds": [{"id": str(g), "unavailable": True} for g in guild_ids],
            "session_id": session.id,
            "session_type": "normal",
            "resume_gateway_url": self.core.base_url.replace("http", "ws", 1) + "/",
            "shard": [session.shard_id, session.shard_count],
            "application": {"id": str(world.application_id), "flags": 0},
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "guild_join_requests": [],
            "geo_ordered_rtc_regions": [],
            "user_settings": {},
            "_trace": ["sandbox"],
        }
        session.dispatch("READY", ready)

    def _send_guild(self, session: GatewaySession, guild_id: int) -> None:
        world = self.core.world
        guild = world.guilds.get(guild_id)
        if guild is None or not session.intents & gw_intents.GUILDS:
            return
        full = (
            session.intents & gw_intents.GUILD_MEMBERS
            and len(guild.members) <= session.large_threshold
        )
        bot_member = guild.members.get(world.bot.id)
        members = list(guild.members.values()) if full else [m for m in [bot_member] if m]
        session.dispatch("GUILD_CREATE", payloads.guild(world, guild, members=members))

    def _on_resume(self, conn: Connection, data: dict[str, Any]) -> None:
        if self.resume_delays:
            self._later_task(self._resume_later(conn, data, self.resume_delays.popleft()))
            return
        self._resume(conn, data)

    async def _resume_later(self, conn: Connection, data: dict[str, Any], delay: float) -> None:
        await asyncio.sleep(delay)  # the simulated delay itself
        if not conn.ws.closed:
            self._resume(conn, data)

    def _resume(self, conn: Connection, data: dict[str, Any]) -> None:
        session = self.sessions.get(str(data.get("session_id")))
        missed = None
        if session is not None and self._token_ok(data.get("token")):
            missed = session.missed_since(int(data.get("seq") or 0))
        if session is None or missed is None:
            conn.send_op(INVALID_SESSION, False)
            return
        old = session.conn
        if old is not None and old is not conn:
            old.session = None
            old.abort()
        session.conn, conn.session = conn, session
        session.disconnected_at = None
        session.resumes += 1
        session.replayed += len(missed)
        for text in missed:
            conn.send(text)
        session.dispatch("RESUMED", {"_trace": ["sandbox"]})
        self._check_duplicates(session)
        self.core.changed()

    def _on_request_members(self, conn: Connection, data: dict[str, Any]) -> None:
        session = conn.session
        if session is None:
            conn.close(4003)
            return
        raw_ids = data.get("guild_id")
        guild_ids = raw_ids if isinstance(raw_ids, list) else [raw_ids]
        for raw in guild_ids:
            guild = self.core.world.guilds.get(int(raw))
            if guild is not None and session.holds(guild.id):
                self._send_chunks(session, guild.id, data)

    def _send_chunks(self, session: GatewaySession, guild_id: int, data: dict[str, Any]) -> None:
        guild = self.core.world.guilds[guild_id]
        query = str(data.get("query") or "").lower()
        limit = int(data.get("limit") or 0)
        wanted = {int(u) for u in data.get("user_ids") or []}
        if wanted:
            found = [m for m in guild.members.values() if m.id in wanted]
        elif not session.intents & gw_intents.GUILD_MEMBERS and not query:
            found = []
        else:
            found = [
                m
                for m in guild.members.values()
                if not query
                or m.user.username.lower().startswith(query)
                or (m.nick or "").lower().startswith(query)
            ]
            found = found[:limit] if limit else found
        chunks = [found[i : i + CHUNK_SIZE] for i in range(0, len(found), CHUNK_SIZE)] or [[]]
        missing = [str(u) for u in wanted - {m.id for m in found}]
        for index, chunk in enumerate(chunks):
            body: dict[str, Any] = {
                "guild_id": str(guild_id),
                "members": [payloads.member(m) for m in chunk],
                "chunk_index": index,
                "chunk_count": len(chunks),
            }
            if data.get("nonce"):
                body["nonce"] = data["nonce"]
            if missing and index == len(chunks) - 1:
                body["not_found"] = missing
            session.dispatch("GUILD_MEMBERS_CHUNK", body)

    _HANDLERS: ClassVar[dict[int, Callable[[GatewayHub, Connection, dict[str, Any]], None]]] = {
        IDENTIFY: _on_identify,
        RESUME: _on_resume,
        REQUEST_MEMBERS: _on_request_members,
    }
