"""Cosmos round trips on the critical path (issue 11): at most two on a miss, one on a hit, against
the emulator; and a Cosmos client that never consults the environment's proxy settings."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

# The package exports it through a lazy __getattr__ (Any to mypy); the defining module is typed.
from azure.core.pipeline.transport._aiohttp import AioHttpTransport

from shared.composition import Container, build_container
from shared.core.models import ChatMessage
from shared.core.settings import Settings, TenantLimits
from shared.core.values import SamplingParams
from shared.identity.auth import Principal
from shared.pipeline.gateway import CallContext, ChatCall
from shared.state.cosmos import CosmosState, cosmos_client
from tests.integration.conftest import HeldTimers

LIMITS = TenantLimits(daily_tokens=10_000_000, monthly_tokens=100_000_000, daily_usd=1000.0, monthly_usd=10_000.0,
                      rpm=100_000, tpm=100_000_000, cache_ttl_s=3600)
PLAIN = TenantLimits(cache_ttl_s=0)
BATCH_TURNS = 50  # loop turns a round stays open: siblings of one asyncio.gather all join it


class RoundCounter(AioHttpTransport):
    """The SDK's transport, counting round trips: requests set off together (the siblings of one
    asyncio.gather) are held for a few turns of the loop and sent as one round; a request that
    had to wait for an answer can only start after its round was sent, so it starts the next.
    `finished` counts rounds whose every answer came back."""

    def __init__(self) -> None:
        super().__init__(use_env_settings=False)
        self.rounds = self.finished = self.requests = 0
        self.clock = HeldTimers()  # the container's
        self._batch: asyncio.Event | None = None
        self._pending: dict[int, int] = {}

    async def send(self, request: Any, **kwargs: Any) -> Any:
        self.requests += 1
        if self._batch is None:
            self.rounds += 1
            batch = self._batch = asyncio.Event()
            for _ in range(BATCH_TURNS):
                await asyncio.sleep(0)
            self._batch = None
            batch.set()
        else:
            await self._batch.wait()
        round_ = self.rounds
        self._pending[round_] = self._pending.get(round_, 0) + 1
        try:
            return await super().send(request, **kwargs)
        finally:
            self._pending[round_] -= 1
            if not self._pending[round_]:
                self.finished += 1


@pytest.fixture
async def counted(stack_settings: Settings) -> AsyncIterator[tuple[Container, RoundCounter]]:
    transport = RoundCounter()
    container = await build_container(stack_settings, cosmos_transport=transport, clock=transport.clock)
    yield container, transport
    await transport.clock.settle()
    await container.close()


def chat(text: str, *, turns: int = 1) -> ChatCall:
    history = [ChatMessage(role="user" if i % 2 == 0 else "assistant", content=f"turn {i}") for i in range(turns - 1)]
    return ChatCall(None, (*history, ChatMessage(role="user", content=text)), SamplingParams(max_tokens=200))


async def critical_rounds(container: Container, transport: RoundCounter, principal: Principal,
                          call: ChatCall) -> tuple[int, int, bool]:
    """Rounds the answer waited for, Cosmos requests in all (after the detached work), cached."""
    await transport.clock.settle()
    before_rounds, before_requests = transport.finished, transport.requests
    answer = await container.gateway.complete(CallContext(principal, uuid.uuid4().hex), call)
    waited = transport.finished - before_rounds
    await transport.clock.settle()
    return waited, transport.requests - before_requests, answer.cached


@pytest.mark.parametrize("turns", [1, 3], ids=["single-turn (semantic cache too)", "multi-turn (exact only)"])
async def test_a_miss_waits_for_two_round_trips_and_a_hit_for_one(counted: tuple[Container, RoundCounter],
                                                                  turns: int) -> None:
    container, transport = counted
    principal = Principal(f"rt-{uuid.uuid4().hex[:8]}", "k", limits=LIMITS)
    await container.gateway.complete(CallContext(principal, "warm"), chat("warm up", turns=turns))  # documents
    prompt = f"Which pier is the longest, case {uuid.uuid4().hex[:6]}?"
    miss = await critical_rounds(container, transport, principal, chat(prompt, turns=turns))
    hit = await critical_rounds(container, transport, principal, chat(prompt, turns=turns))
    print(f"turns={turns}: miss waited {miss[0]} rounds ({miss[1]} requests); hit {hit[0]} ({hit[1]} requests)")
    assert not miss[2] and hit[2]
    assert miss[0] <= 2, "rate limit + lookup (+ reservation) together, then the reservation or the semantic query"
    assert hit[0] == 1, "rate limit and lookup together"


async def test_a_tenant_without_limits_or_cache_waits_for_one_round_trip(
        counted: tuple[Container, RoundCounter]) -> None:
    container, transport = counted
    principal = Principal(f"rt-{uuid.uuid4().hex[:8]}", "k", limits=PLAIN)
    await container.gateway.complete(CallContext(principal, "warm"), chat("warm up"))
    waited, requests, _ = await critical_rounds(container, transport, principal, chat("How deep is the harbour?"))
    print(f"plain: waited {waited} rounds ({requests} requests)")
    assert waited == 1, "the reservation alone; settlement after the answer"


@pytest.fixture
def unreachable_proxy() -> Iterator[None]:
    names = ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "NO_PROXY", "no_proxy")
    saved = {n: os.environ.get(n) for n in names}
    for n in names:
        os.environ.pop(n, None)
    os.environ["HTTP_PROXY"] = os.environ["HTTPS_PROXY"] = "http://127.0.0.1:9"  # discard: nothing answers
    try:
        yield
    finally:
        for n, v in saved.items():
            if v is None:
                os.environ.pop(n, None)
            else:
                os.environ[n] = v


async def test_the_cosmos_client_ignores_proxy_settings_in_the_environment(stack_settings: Settings,
                                                                           unreachable_proxy: None) -> None:
    # With the environment trusted, aiohttp looks the proxy up (and reads ~/.netrc) on every request.
    state = CosmosState(cosmos_client(stack_settings, None), stack_settings.cosmos_database, True)
    try:
        await state.ping()
    finally:
        await state.close()
