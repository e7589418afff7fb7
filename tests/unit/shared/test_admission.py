"""Admission in few round trips (issue 11): what runs concurrently, what waits, and the room given back."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import pytest

from shared.core.background import drain
from shared.core.errors import RateLimited
from shared.core.models import ChatMessage, Usage
from shared.core.settings import TenantLimits
from shared.core.values import SamplingParams
from shared.identity.auth import Principal
from shared.pipeline.gateway import CallContext, ChatCall, Gateway
from shared.state.budget import Estimate
from shared.state.ratelimit import Allowance
from tests.unit.shared.fakes import USAGE, CountingLimiter, FakeBudget, FakeCache, FakeEngine, FakeReservation

CACHING = Principal("tenant-a", "k1")
NO_CACHE = Principal("tenant-n", "k2", limits=TenantLimits(cache_ttl_s=0))


def call() -> ChatCall:
    return ChatCall(None, (ChatMessage(role="user", content="hello there"),), SamplingParams(max_tokens=50))


@dataclass
class GatedReservation(FakeReservation):
    gate: asyncio.Event = field(default_factory=asyncio.Event)

    async def settle(self, usage: Usage) -> None:
        await self.gate.wait()
        await super().settle(usage)


@dataclass
class GatedBudget(FakeBudget):
    """Settlements wait for `settle_gate`; reservations for `reserve_gate` when it is given."""

    settle_gate: asyncio.Event = field(default_factory=asyncio.Event)
    reserve_gate: asyncio.Event | None = None

    async def reserve(self, principal: Principal, model: str, estimate: Estimate) -> FakeReservation:
        if self.reserve_gate is not None:
            await self.reserve_gate.wait()
        await super().reserve(principal, model, estimate)
        return GatedReservation(self, estimate.tokens, gate=self.settle_gate)


class RefusingLimiter(CountingLimiter):
    async def admit(self, principal: Principal, estimated_tokens: int) -> Allowance:
        raise RateLimited("over the limit", retry_after_s=30)


@pytest.mark.parametrize("stream", [False, True])
async def test_the_answer_does_not_wait_for_the_store_or_the_settlement(stream: bool) -> None:
    budget, cache = GatedBudget(), FakeCache()
    gateway = Gateway(FakeEngine(), CountingLimiter(), budget, cache)  # type: ignore[arg-type]
    ctx = CallContext(CACHING, "c")

    async def ask() -> str:
        if stream:
            return "".join([d.content async for d in gateway.stream(ctx, call())])
        return (await gateway.complete(ctx, call())).completion.content

    request = asyncio.ensure_future(ask())
    for _ in range(100):  # every fake answers at once: a few turns of the loop end the request
        await asyncio.sleep(0)
    # The settlement is still held at its gate: the answer came back before it.
    assert request.done() and request.result() == "a short answer"
    assert budget.events == [("reserve", budget.estimates[0].tokens)]
    budget.settle_gate.set()
    await drain(5)
    assert budget.events[-1] == ("settle", USAGE.total_tokens) and len(cache.entries) == 1


async def test_a_rate_limit_refusal_gives_back_the_room_reserved_beside_it() -> None:
    # No cache: nothing to decide first, so the reservation ran beside the rate limit.
    budget = FakeBudget()
    gateway = Gateway(FakeEngine(), RefusingLimiter(), budget, FakeCache())  # type: ignore[arg-type]
    with pytest.raises(RateLimited):
        await gateway.complete(CallContext(NO_CACHE, "c"), call())
    await drain(5)
    assert budget.events == [("reserve", budget.estimates[0].tokens), ("settle", 0)]


async def test_an_exact_hit_of_a_semantic_tenant_embeds_nothing_and_gives_its_room_back() -> None:
    budget, cache, engine = FakeBudget(), FakeCache(embedding_tokens=7), FakeEngine()
    gateway = Gateway(engine, CountingLimiter(), budget, cache)  # type: ignore[arg-type]
    await gateway.complete(CallContext(CACHING, "c1"), call())
    await drain(5)
    answer = await gateway.complete(CallContext(CACHING, "c2"), call())
    await drain(5)
    assert answer.cached and engine.calls == 1
    assert budget.events[-2:] == [("reserve", budget.estimates[-1].tokens), ("settle", 0)], \
        "reserved beside the exact lookup (it may have had to embed), given back whole: no embedding was made"


async def test_a_request_cancelled_while_its_reservation_is_in_flight_gives_the_room_back() -> None:
    reserve_gate = asyncio.Event()
    budget = GatedBudget(reserve_gate=reserve_gate)
    budget.settle_gate.set()
    engine = FakeEngine()
    gateway = Gateway(engine, CountingLimiter(), budget, FakeCache())  # type: ignore[arg-type]
    request = asyncio.ensure_future(gateway.complete(CallContext(NO_CACHE, "c"), call()))
    for _ in range(10):  # let the request reach its reservation
        await asyncio.sleep(0)
    request.cancel()  # a client disconnect
    with pytest.raises(asyncio.CancelledError):
        await request
    reserve_gate.set()  # the write lands after the caller left
    await drain(5)
    await drain(5)  # the give-back is spawned when the reservation lands
    assert engine.calls == 0
    assert budget.events == [("reserve", budget.estimates[0].tokens), ("settle", 0)]
