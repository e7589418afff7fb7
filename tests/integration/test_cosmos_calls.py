"""How we call the Cosmos SDK (issue 11): writes without a response body, point reads, and no
per-call HTTP log records, against the emulator (which answers them as Azure does) behind a recording proxy."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import pytest
from aiohttp import web

from shared.composition import Container, build_container
from shared.core.models import ChatMessage, Usage
from shared.core.settings import ModelPrice, Settings, TenantLimits
from shared.core.values import Completion, SamplingParams
from shared.identity.auth import Principal
from shared.pipeline.gateway import CallContext, ChatCall
from shared.state.budget import CosmosBudgetLedger, Estimate
from shared.state.cache import CacheKey, CosmosExactCache
from shared.state.cosmos import CosmosState, cosmos_client
from shared.state.ratelimit import CosmosRateLimiter
from tests.integration.conftest import HeldTimers
from tools.localenv import free_port

# Hop-by-hop headers, and the length aiohttp sets again for the body it sends.
HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}
ANSWER = Completion("Paris.", "stop", "m", Usage(prompt_tokens=9, completion_tokens=2, total_tokens=11), "primary")
FULL = TenantLimits(daily_tokens=10_000_000, monthly_tokens=100_000_000, daily_usd=1000.0, monthly_usd=10_000.0,
                    rpm=100_000, tpm=100_000_000, cache_ttl_s=3600)


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    minimal: bool  # the request carried `Prefer: return=minimal`
    query: bool
    body_sent: bool  # the client got a response body


class AzureLikeCosmos:
    """A proxy in front of the emulator that records every request it passes. The emulator answers a
    write sent with `Prefer: return=minimal` as the Cosmos service does, with its status and headers
    and no body (a transactional batch: its operations' statuses, without their documents):
    tools/emulators/cosmos.js, checked by tests/integration/test_emulator.py."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.port = free_port()
        self.seen: list[Seen] = []
        self._session: aiohttp.ClientSession | None = None
        self._runner: web.AppRunner | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def to(self, container: str) -> list[Seen]:
        return [s for s in self.seen if f"/colls/{container}/docs" in s.path]

    async def __aenter__(self) -> AzureLikeCosmos:
        self._session = aiohttp.ClientSession(auto_decompress=False)
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._forward)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._runner is not None and self._session is not None
        await self._runner.cleanup()
        await self._session.close()

    async def _forward(self, request: web.Request) -> web.Response:
        assert self._session is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP}
        async with self._session.request(request.method, self.upstream + request.path_qs, headers=headers,
                                         data=await request.read(), allow_redirects=False) as upstream:
            body = await upstream.read()
            minimal = request.headers.get("Prefer", "").lower() == "return=minimal"
            documents = bool(body) and (b'"resourceBody"' in body or not minimal)
            self.seen.append(Seen(request.method, request.path, minimal,
                                  request.headers.get("x-ms-documentdb-isquery", "").lower() == "true", documents))
            return web.Response(status=upstream.status, body=body,
                                headers={k: v for k, v in upstream.headers.items() if k.lower() not in HOP})


@pytest.fixture
async def azure_like(stack_settings: Settings) -> AsyncIterator[AzureLikeCosmos]:
    async with AzureLikeCosmos(stack_settings.cosmos_endpoint.rstrip("/")) as proxy:
        yield proxy


@pytest.fixture
async def state(stack_settings: Settings, azure_like: AzureLikeCosmos) -> AsyncIterator[CosmosState]:
    settings = stack_settings.model_copy(update={"cosmos_endpoint": azure_like.endpoint})
    cosmos = CosmosState(cosmos_client(settings, None), settings.cosmos_database, create=True)
    await cosmos.database()
    yield cosmos
    await cosmos.close()


def who(limits: TenantLimits) -> Principal:
    return Principal(f"cc-{uuid.uuid4().hex[:10]}", f"key-{uuid.uuid4().hex[:6]}", limits=limits)


async def test_the_rate_limiter_still_counts_when_writes_come_back_without_a_body(
        state: CosmosState, azure_like: AzureLikeCosmos) -> None:
    limiter = CosmosRateLimiter(state)
    key = who(TenantLimits(rpm=5, tpm=1000))
    remaining = [(await limiter.admit(key, 100)).remaining_requests for _ in range(3)]
    assert remaining == [4, 3, 2]
    assert (await limiter.admit(key, 100)).remaining_tokens == 600
    patches = [s for s in azure_like.to("ratelimits") if s.method == "PATCH"]
    assert len(patches) == 4 and not any(s.minimal for s in patches), "the counts come from the patched document"
    creates = [s for s in azure_like.to("ratelimits") if s.method == "POST"]
    assert creates and all(s.minimal and not s.body_sent for s in creates), "window creates need no body"


async def test_budget_writes_ask_for_no_body_and_settlement_still_counts(
        state: CosmosState, azure_like: AzureLikeCosmos) -> None:
    ledger = CosmosBudgetLedger(state, {"m": ModelPrice(input_per_1m=1.0, output_per_1m=2.0)})
    tenant = who(TenantLimits(daily_tokens=1000, monthly_usd=5.0))
    reservation = await ledger.reserve(tenant, "m", Estimate(100, 200))
    await reservation.settle(Usage(prompt_tokens=100, completion_tokens=50, total_tokens=150))
    report = await ledger.usage(tenant)
    assert report["daily"]["tokens_used"] == report["monthly"]["tokens_used"] == 150
    assert report["daily"]["tokens_reserved"] == 0
    writes = [s for s in azure_like.to("budgets") if s.method in ("PATCH", "POST") and not s.query]
    # Creates, lease-slot pointing, and the reserve and settle batches of both windows: none asks
    # for the documents (with telemetry off, the only reader of a settled one, the budget gauge, is
    # not there).
    assert len(writes) >= 6 and all(s.minimal and not s.body_sent for s in writes), writes
    reads = [s for s in azure_like.to("budgets") if s.method == "GET"]
    assert len(reads) == 2 and all(s.body_sent for s in reads), "usage: one point read per window"
    assert not any(s.query for s in azure_like.seen)


async def test_the_exact_cache_stores_without_a_body_and_looks_up_with_a_point_read(
        state: CosmosState, azure_like: AzureLikeCosmos) -> None:
    cache = CosmosExactCache(state, now=lambda: 1000.0)
    tenant = who(FULL)
    key = CacheKey(tenant.tenant, "m", lambda: {"op": "chat", "messages": [{"role": "user", "content": "Paris?"}]})
    assert await cache.lookup(tenant, key) is None
    await cache.store(tenant, "m", key, ANSWER)
    assert await cache.lookup(tenant, key) == ANSWER
    ops = [(s.method, s.minimal, s.body_sent) for s in azure_like.to("cache")]
    assert ops == [("GET", False, True), ("POST", True, False), ("GET", False, True)], ops
    assert azure_like.to("cache")[0].path.rstrip("/").endswith(f"/docs/{key.exact_id}"), "a point read of the entry"


async def test_the_whole_path_answers_and_hits_with_every_write_answered_without_a_body(
        stack_settings: Settings, azure_like: AzureLikeCosmos, sims: object) -> None:
    settings = stack_settings.model_copy(update={"cosmos_endpoint": azure_like.endpoint})
    clock = HeldTimers()
    container: Container = await build_container(settings, clock=clock)
    try:
        tenant = who(FULL)
        call = ChatCall(None, (ChatMessage(role="user", content=f"Longest pier, case {uuid.uuid4().hex[:6]}?"),),
                        SamplingParams(max_tokens=200))
        first = await container.gateway.complete(CallContext(tenant, "c1"), call)
        await clock.settle()
        charged = (await container.budget.usage(tenant))["daily"]
        second = await container.gateway.complete(CallContext(tenant, "c2"), call)
        await clock.settle()
        assert not first.cached and second.cached
        assert second.completion.content == first.completion.content
        stripped = [s for s in azure_like.seen if s.minimal]
        assert stripped and not any(s.body_sent for s in stripped)
        # The SDK's client-wide no_response_on_write would put the header on queries too (POSTs).
        queries = [s for s in azure_like.seen if s.query]
        assert queries and not any(s.minimal for s in queries), "the semantic query reads its rows"
        # The miss was charged its chat (and the semantic cache's embedding), the hit nothing.
        assert charged["tokens_used"] >= first.completion.usage.total_tokens and charged["tokens_reserved"] == 0
        assert (await container.budget.usage(tenant))["daily"] == charged
    finally:
        await container.close()


async def test_cosmos_calls_write_no_log_records_under_an_info_root_logger(
        stack_settings: Settings, caplog: pytest.LogCaptureFixture) -> None:
    # The Functions worker sets the root logger to INFO and ships every record to the host.
    caplog.set_level(logging.INFO)
    cosmos = CosmosState(cosmos_client(stack_settings, None), stack_settings.cosmos_database, create=True)
    try:
        await cosmos.ping()
        assert await cosmos.find("cache", "nobody", uuid.uuid4().hex) is None
    finally:
        await cosmos.close()
    sdk = [r for r in caplog.records if r.name.startswith(("azure", "shared.state.cosmos"))]
    assert not sdk, [f"{r.name}: {r.getMessage()[:80]}" for r in sdk]
