"""The /api/v10 entry point: parse, rate limits (the switch and :mod:`sandbox.ratelimits`),
dispatch, error shapes, call log."""

from __future__ import annotations

import hashlib
import json
import logging
import time
import urllib.parse
from collections import deque
from typing import Any

import aiohttp
from aiohttp import web

from sandbox.core import Core
from sandbox.errors import SandboxError
from sandbox.ratelimits import CLOUDFLARE, RateLimits, Refusal, scope_of
from sandbox.records import RestCall
from sandbox.rest import commands, guilds, interactions, messages, meta
from sandbox.rest.limits import RateLimitSwitch, failure, limited, ok_headers
from sandbox.rest.router import RestRequest, Result, RouteTable, Upload

log = logging.getLogger(__name__)
PREFIX = "/api/v10"


def _response(status: int, body: Any, headers: dict[str, str]) -> web.Response:
    if body is None:
        return web.Response(status=204, headers=headers)
    if isinstance(body, str):  # Cloudflare's HTML page; its headers name the type
        return web.Response(status=status, body=body.encode(), headers=headers)
    # Exactly "application/json": discord.py does not parse "...; charset=utf-8" as JSON.
    return web.Response(
        status=status,
        body=json.dumps(body).encode(),
        headers={**headers, "Content-Type": "application/json"},
    )


class RestApi:
    """Handles every request under /api/v10 and records it."""

    def __init__(self, core: Core) -> None:
        self.core = core
        self.routes = RouteTable()
        self.routes.include(
            meta.routes, messages.routes, guilds.routes, commands.routes, interactions.routes
        )
        self.rate_limits = RateLimitSwitch()
        self.limits = RateLimits(core.settings)
        self.calls: deque[RestCall] = deque(maxlen=core.settings.record_limit)

    async def handle(self, request: web.Request) -> web.Response:
        # Routes of their own (sandbox/oauth.py) hand bot-token calls on here without a tail.
        path = "/" + request.match_info.get("tail", request.path.removeprefix(PREFIX + "/"))
        method = request.method
        found = self.routes.match(method, path)
        template = found[0].template if found else None
        bucket = hashlib.sha1(f"{method} {template or path}".encode()).hexdigest()[:16]
        body: Any = None
        files: list[Upload] = []
        client = request.remote or ""
        banned = self.limits.banned(client)
        try:
            if banned is not None:
                status, answer, headers = 429, banned.body, banned.headers
            else:
                body, files = await _read_body(request)
                status, answer, headers = await self._answer(
                    request, found, path, body, files, bucket
                )
        except SandboxError as exc:
            status, answer, headers = exc.status, exc.body(), ok_headers(bucket)
        except Exception:
            log.exception("sandbox REST handler failed: %s %s", method, path)
            status, answer = 500, {"message": "500: Internal Server Error", "code": 0}
            headers = ok_headers(bucket)
        code = answer.get("code") if isinstance(answer, dict) and status >= 400 else None
        scope = CLOUDFLARE if banned is not None else scope_of(status, headers)
        self.limits.observe(client, status, scope)
        self.calls.append(
            RestCall(
                time.time(),
                method,
                path,
                template,
                status,
                body,
                dict(request.query),
                [f.filename for f in files],
                code,
                scope,
                client,
            )
        )
        self.core.changed()
        return _response(status, answer, headers)

    async def _answer(
        self,
        request: web.Request,
        found: Any,
        path: str,
        body: Any,
        files: list[Upload],
        bucket: str,
    ) -> tuple[int, Any, dict[str, str]]:
        expected = self.core.settings.token
        if expected is not None and request.headers.get("Authorization") != f"Bot {expected}":
            return 401, {"message": "401: Unauthorized", "code": 0}, ok_headers(bucket)
        if found is None:
            return 404, {"message": "404: Not Found", "code": 0}, ok_headers(bucket)
        route, params = found
        rule = self.rate_limits.take(request.method, path, route.template)
        if rule is not None and rule.status != 429:
            return rule.status, failure(rule), ok_headers(bucket)
        verdict = (
            limited(rule, bucket, self.limits.clock())
            if rule is not None
            else self.limits.admit(
                request.headers.get("Authorization"),
                request.remote or "",
                request.method,
                route.template,
                params,
            )
        )
        if isinstance(verdict, Refusal):
            return 429, verdict.body, verdict.headers
        reason = request.headers.get("X-Audit-Log-Reason")
        req = RestRequest(
            self.core,
            request.method,
            path,
            route.template,
            params,
            request.query,
            body,
            files,
            urllib.parse.unquote(reason) if reason else None,
        )
        headers = verdict or ok_headers(bucket)
        try:
            result = await route.handler(req)
        except SandboxError as exc:  # errors of a limited route carry its bucket's headers too
            return exc.status, exc.body(), headers
        if isinstance(result, Result):
            return result.status, result.body, headers
        return 200, result, headers


async def _read_body(request: web.Request) -> tuple[Any, list[Upload]]:
    if request.content_type.startswith("multipart/"):
        payload: Any = None
        files: list[Upload] = []
        reader = await request.multipart()
        async for part in reader:
            if not isinstance(part, aiohttp.BodyPartReader):
                continue
            data = await part.read()
            if part.name == "payload_json":
                payload = json.loads(data)
            else:
                files.append(
                    Upload(
                        part.name or "",
                        part.filename or "file",
                        part.headers.get("Content-Type", "application/octet-stream"),
                        bytes(data),
                    )
                )
        return payload, files
    raw = await request.read()
    if not raw:
        return None, []
    try:
        return json.loads(raw), []
    except ValueError:
        raise SandboxError(400, 50109, "The request body contains invalid JSON.") from None
