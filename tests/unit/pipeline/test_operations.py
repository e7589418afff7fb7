"""Every model-bound operation x every way it can end, through the real pipeline over a mock provider.

Each cell asserts what the user notices (the answer, the error and its status, a cache hit) and
what the tenant is charged (docs/accounting.md, "How a request is charged"): every call reaching
a model settles exactly once, with the provider's usage when it arrived.

Cells that do not apply, marked skip below with the reason:
- hit x openai.embeddings and the Responses API: never cached, every call is a miss;
- client gone x the whole (non-streamed) operations: nothing is read before the answer is whole,
  so a client gone is its request cancelled: the cancel cell.
Queue jobs and the semantic cache's embedding have endings of their own: test_operation_jobs.py.
"""

from __future__ import annotations

import asyncio

import pytest

from shared.core.background import drain
from shared.core.errors import (
    AppError,
    BudgetExhausted,
    RateLimited,
    ServiceUnavailable,
    UpstreamThrottled,
)
from shared.core.metering import completion_tokens
from shared.core.safety_policy import SafetyPolicy
from shared.core.settings import TenantLimits
from shared.identity.auth import Principal
from shared.pipeline.stages import StreamInterrupted
from tests.unit.pipeline.operations import OPERATIONS, Operation, collect, ctx, under_way
from tests.unit.pipeline.provider import MODEL, USAGE
from tests.unit.pipeline.rig import Rig, reserved

UNREDACTED = Principal("tenant-a", "k1", safety=SafetyPolicy(redact=()))
UNCACHED = Principal("tenant-b", "k2", limits=TenantLimits(cache_ttl_s=0))  # reserves beside the rate limit


def cells(ending: str) -> list[object]:
    """The operations for one ending, those it does not apply to skipped with the reason."""
    skips = {
        **{("hit", op.name): "never cached: every call is a miss" for op in OPERATIONS if not op.cached},
        **{("client_gone", op.name): "a whole answer is not read before it is whole: a client gone is the cancel "
           "cell" for op in OPERATIONS if not op.streamed},
    }
    return [pytest.param(op, id=op.name, marks=[pytest.mark.skip(reason=skips[(ending, op.name)])]
                         if (ending, op.name) in skips else []) for op in OPERATIONS]


@pytest.mark.parametrize("op", cells("hit"))
async def test_hit_is_served_from_the_cache_calls_nothing_and_charges_nothing(rig: Rig, op: Operation) -> None:
    first = await collect(op, rig, ctx())
    await drain(5)
    calls, events = len(rig.provider.calls), list(rig.budget.events)
    second = await collect(op, rig, ctx())
    await drain(5)
    assert (first.text, first.cached) == (op.answer, False)
    assert (second.text, second.cached) == (op.answer, True), "the same answer, flagged as a hit"
    assert len(rig.provider.calls) == calls, "a hit calls no model"
    assert rig.budget.events == events, "a hit reserves and charges nothing"


@pytest.mark.parametrize("op", cells("miss"))
async def test_miss_is_answered_and_charged_the_providers_usage_once(rig: Rig, op: Operation) -> None:
    seen = await collect(op, rig, ctx())
    await drain(5)
    assert (seen.text, seen.cached) == (op.answer, False)
    assert rig.provider.seen(op.path) == 1
    assert rig.budget.events == [("reserve", reserved(rig)), ("settle", op.billed)], "settled once, as billed"
    if op.path == "/chat/completions":
        assert rig.budget.settled == [USAGE], "prompt and completion exactly as the provider reported them"
    assert len(rig.cache.entries) == (1 if op.cached else 0)


@pytest.mark.parametrize("by", ["rate-limit", "budget"])
@pytest.mark.parametrize("op", cells("refusal"))
async def test_refusal_is_its_429_calls_nothing_and_gives_back_what_it_held(rig: Rig, op: Operation,
                                                                             by: str) -> None:
    # The uncached tenant reserves beside the rate limit: a rate-limit refusal has room to give back.
    refusal: AppError
    if by == "rate-limit":
        refusal = rig.limiter.refusal = RateLimited("The key's rpm is used up.", retry_after_s=30)
    else:
        refusal = rig.budget.refusal = BudgetExhausted("The daily budget is used up.", retry_after_s=3600)
    with pytest.raises(type(refusal)) as raised:
        await collect(op, rig, ctx(UNCACHED))
    await drain(5)
    assert raised.value is refusal and refusal.status == 429 and refusal.retry_after_s
    assert rig.provider.calls == [], "refused before any model call"
    held = [("reserve", reserved(rig)), ("settle", 0)] if rig.budget.estimates else []
    assert rig.budget.events == held, "what was reserved is given back whole; nothing is charged"
    assert (len(held) == 2) == isinstance(refusal, RateLimited)


@pytest.mark.parametrize(("status", "error"), [("503", ServiceUnavailable), ("429", UpstreamThrottled)])
@pytest.mark.parametrize("op", cells("upstream_error"))
async def test_upstream_error_maps_to_its_status_and_charges_nothing(rig: Rig, op: Operation, status: str,
                                                                     error: type[AppError]) -> None:
    rig.provider.mode("503" if status == "503" else "429", op.path)
    with pytest.raises(error) as raised:
        await collect(op, rig, ctx())
    await drain(5)
    assert raised.value.status == int(status) and (status == "429") == isinstance(raised.value, UpstreamThrottled)
    assert "busy" not in raised.value.detail, "the provider's own words never reach the client"
    assert rig.provider.seen(op.path) >= 1
    assert rig.budget.events == [("reserve", reserved(rig)), ("settle", 0)], "an error status is never billed"
    assert rig.cache.entries == {}


@pytest.mark.parametrize("op", cells("cut"))
async def test_cut_is_an_error_never_a_clean_end_and_charges_what_may_have_been_billed(rig: Rig,
                                                                                        op: Operation) -> None:
    rig.provider.mode("cut", op.path)
    received: list[str] = []
    error = StreamInterrupted if op.streamed else ServiceUnavailable
    with pytest.raises(error) as raised:
        async for text, _ in op.read(rig, ctx()):
            received.append(text)
    await drain(5)
    assert raised.value.status in (502, 503)
    estimate = rig.budget.estimates[0]
    if op.streamed:
        # Cut after two pieces: the prompt plus what was received; no failover once content was sent.
        assert "".join(received) == "a short" and rig.provider.seen(op.path) == 1
        charge = estimate.prompt_tokens + completion_tokens(MODEL, "a short", 2)
        assert rig.budget.events == [("reserve", estimate.tokens), ("settle", charge)]
    else:
        # Nothing of a whole answer is seen: each attempt the provider accepted is charged its worst
        # case, and another was made only after room for one more worst case was reserved.
        attempts = rig.provider.seen(op.path)
        assert received == [] and attempts >= 1
        reserves = [("reserve", estimate.tokens)] * attempts
        settles = [("settle", attempts * estimate.tokens)] + [("settle", 0)] * (attempts - 1)
        assert rig.budget.events == reserves + settles, "worst case per attempt; the extra room given back"
    assert rig.cache.entries == {}, "a cut answer is never stored"


@pytest.mark.parametrize("op", cells("client_gone"))
async def test_client_gone_mid_stream_the_call_drains_and_settles_once_in_full(rig: Rig, op: Operation) -> None:
    rig.provider.mode("slow", op.path)  # the first piece, then the rest when the test lets it go
    reader = op.read(rig, ctx(UNREDACTED))  # read piece by piece: no hold-back window (test_guard.py)
    assert (await anext(reader))[0] == "a"
    await reader.aclose()  # the client goes away
    await asyncio.sleep(0)
    assert rig.budget.events == [("reserve", reserved(rig))], "nothing is settled while the model still answers"
    rig.provider.gate.set()
    await drain(5)
    assert rig.budget.events == [("reserve", reserved(rig)), ("settle", op.billed)], "the provider's usage, once"
    assert len(rig.cache.entries) == (1 if op.cached else 0), "the drained answer is whole, so it is stored"


@pytest.mark.parametrize("op", cells("cancel"))
async def test_cancel_mid_call_the_call_goes_on_detached_and_settles_once(rig: Rig, op: Operation) -> None:
    rig.provider.mode("slow", op.path)
    request = asyncio.ensure_future(collect(op, rig, ctx()))
    await under_way(rig.provider, request)
    request.cancel()  # what the host does to an invocation whose client disconnected
    with pytest.raises(asyncio.CancelledError):
        await request
    assert rig.budget.events == [("reserve", reserved(rig))], "nothing is settled while the model still answers"
    rig.provider.gate.set()
    await drain(5)
    assert rig.provider.seen(op.path) == 1
    assert rig.budget.events == [("reserve", reserved(rig)), ("settle", op.billed)], "the provider's usage, once"
    assert len(rig.cache.entries) == (1 if op.cached else 0), "the answer finished whole: stored for the next"
