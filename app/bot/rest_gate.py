"""Every REST request of discord.py waits for its turn in the REST budget (app/coord/rest_budget).

The hook is discord.py's public `http_trace` (an aiohttp TraceConfig on the client's session,
which interaction responses and follow-ups share): `on_request_start` waits for the budget,
`on_request_end` reports the answer, so discord.py's own retries pass the budget too. A REST
proxy's own 429 is made retryable there (app/bot/discord_internals.py), budget or not.

Priority comes from the context: code that may wait (cache hydration, level-up messages)
runs under `low_priority()`; everything else is NORMAL. Requests of one priority ask the
budget one at a time while it holds them back, so waiting costs Redis one call per turn, not
one per waiting request.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from types import SimpleNamespace

import aiohttp
import yarl

from app.bot import discord_internals as internals
from app.coord.redis_link import stop_tasks
from app.coord.rest_budget import BudgetState, RestBudget, RestPolicy
from app.coord.rest_schedule import Admission, Answer, Priority, RestCall
from app.ops import metrics

log = logging.getLogger(__name__)
_priority: ContextVar[Priority] = ContextVar("rest_priority", default=Priority.NORMAL)
#: Seconds between two reads of the shared state (counts, pods, throttling).
REFRESH_EVERY = 1.0


@contextmanager
def low_priority() -> Iterator[None]:
    """REST requests made within (and in tasks created within) wait behind the others."""
    token = _priority.set(Priority.LOW)
    try:
        yield
    finally:
        _priority.reset(token)


class RestGate:
    """The trace that makes discord.py's requests wait for the budget, once one is attached."""

    def __init__(self, api_base: str) -> None:
        self.base = yarl.URL(api_base.rstrip("/"))
        self.budget: RestBudget | None = None
        self.policy: RestPolicy | None = None
        self._lanes = {p: asyncio.Lock() for p in Priority}
        self._refresher: asyncio.Task[None] | None = None

    def trace(self) -> aiohttp.TraceConfig:
        """The TraceConfig to give discord.py's client (`http_trace=`)."""
        config = aiohttp.TraceConfig()
        config.on_request_start.append(self._started)
        config.on_request_end.append(self._ended)
        return config

    def attach(self, budget: RestBudget, policy: RestPolicy) -> None:
        """Gate every request from now on, and keep the budget's state fresh."""
        self.budget, self.policy = budget, policy
        metrics.REST_INVALID_LIMIT.set(policy.invalid_limit)
        metrics.REST_GLOBAL_LIMIT.set(policy.global_limit)
        self._refresher = asyncio.create_task(self._refresh(), name="rest-budget")

    async def close(self) -> None:
        """Stop refreshing; requests pass ungated."""
        self.budget = None
        await stop_tasks(self._refresher)

    def call_of(self, method: str, url: yarl.URL) -> RestCall | None:
        """The budget's view of a request (None: not a REST call to the API, e.g. the gateway)."""
        base = self.base
        if (url.scheme, url.host, url.port) != (base.scheme, base.host, base.port):
            return None
        if not url.path.startswith(base.path):
            return None
        return RestCall.of(method, url.path[len(base.path) :], _priority.get())

    async def wait_turn(self, call: RestCall) -> Admission:
        """Wait until the budget admits `call`; its admission."""
        budget = self.budget
        assert budget is not None
        waited = 0.0
        while True:
            async with self._lanes[call.priority]:
                admission = await budget.admit(call)
                while admission.blocked_by == "global":  # held back: this lane waits
                    waited += admission.wait
                    await asyncio.sleep(admission.wait)
                    admission = await budget.admit(call)
            waited += admission.wait
            await asyncio.sleep(admission.wait)
            if admission.granted:
                break
        metrics.REST_WAIT.labels(call.priority.name.lower()).observe(waited)
        return admission

    async def _started(
        self,
        session: aiohttp.ClientSession,
        context: SimpleNamespace,
        params: aiohttp.TraceRequestStartParams,
    ) -> None:
        call = self.call_of(params.method, params.url) if self.budget is not None else None
        context.rest_call = call
        if call is not None:
            context.rest_admission = await self.wait_turn(call)

    async def _ended(
        self,
        session: aiohttp.ClientSession,
        context: SimpleNamespace,
        params: aiohttp.TraceRequestEndParams,
    ) -> None:
        response = params.response
        if internals.retry_proxy_429(response):
            log.info("REST proxy answered 429 to %s %s: retrying", params.method, params.url.path)
            metrics.REST_PROXY_429.inc()
        call: RestCall | None = getattr(context, "rest_call", None)
        if call is None or self.budget is None:
            return
        answer = Answer.of(response.status, response.headers)
        if answer.status == 429:
            metrics.REST_429.labels(answer.scope or "unknown").inc()
        await self.budget.report(call, answer, getattr(context, "rest_admission", None))

    async def _refresh(self) -> None:
        while self.budget is not None:
            try:
                publish(await self.budget.refresh())
            except Exception:  # a metrics loop must not die of one bad read
                log.exception("refreshing the REST budget failed")
            await asyncio.sleep(REFRESH_EVERY)


def publish(state: BudgetState) -> None:
    """Export the budget's state as metrics."""
    metrics.REST_INVALID.labels("pod").set(state.pod_invalid)
    metrics.REST_INVALID.labels("cluster").set(state.cluster_invalid)
    metrics.REST_SELF_THROTTLING.set(int(state.throttled))
    metrics.REST_LOCAL_LIMITING.set(int(state.local))
    metrics.REST_PODS.set(state.pods)
