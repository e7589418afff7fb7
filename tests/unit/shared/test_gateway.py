"""The request path: order of stages, budget always settled or released, honest streams."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from shared.core.background import drain
from shared.core.errors import NotFound, RateLimited, ServiceUnavailable, UpstreamThrottled
from shared.core.metering import completion_tokens
from shared.core.models import ChatMessage, ChatRequest, SummarizeRequest, Usage
from shared.core.safety_policy import SafetyPolicy
from shared.core.settings import TenantLimits
from shared.core.tokens import prompt_tokens
from shared.core.values import Delta, SamplingParams
from shared.identity.auth import Principal
from shared.pipeline.gateway import (
    STREAM_QUEUE,
    CallContext,
    ChatCall,
    Exchange,
    Gateway,
    LongCalls,
    StreamInterrupted,
)
from tests.unit.shared.fakes import USAGE, CountingLimiter, FakeBudget, FakeCache, FakeEngine

TENANT_A = Principal("tenant-a", "k1")
# The stream mechanics below are read piece by piece: without the redaction's hold-back window,
# which would hold the first pieces back (tests/unit/pipeline/test_guard.py tests the window).
UNREDACTED = Principal("tenant-a", "k1", safety=SafetyPolicy(redact=()))
TENANT_B = Principal("tenant-b", "k2")


def make(engine: FakeEngine | None = None) -> tuple[Gateway, FakeEngine, FakeBudget, FakeCache, CountingLimiter]:
    engine = engine or FakeEngine()
    budget, cache, limiter = FakeBudget(), FakeCache(), CountingLimiter()
    return Gateway(engine, limiter, budget, cache), engine, budget, cache, limiter  # type: ignore[arg-type]


def chat_call(model: str | None = None) -> ChatCall:
    return ChatCall(model, (ChatMessage(role="user", content="hello there"),), SamplingParams(max_tokens=50))


async def test_a_call_reserves_the_worst_case_then_settles_to_real_usage() -> None:
    gateway, _, budget, _, limiter = make()
    ctx = CallContext(TENANT_A, "c1")
    answer = await gateway.complete(ctx, chat_call())
    assert not answer.cached and answer.completion.content == "a short answer"
    await drain(5)  # settlement runs after the answer, off its critical path
    (kind, reserved), (settle, used) = budget.events
    assert (kind, settle, used) == ("reserve", "settle", USAGE.total_tokens)
    assert reserved >= 50 + 1, "the reservation covers max_tokens plus the prompt"
    assert limiter.admitted == [reserved]
    assert answer.headers == {"x-ratelimit-remaining-requests": "99",
                              "x-ratelimit-remaining-tokens": str(1000 - reserved)}


async def test_a_failed_call_releases_its_reservation_and_stores_nothing() -> None:
    gateway, _, budget, cache, _ = make(FakeEngine(error=ServiceUnavailable("down")))
    with pytest.raises(ServiceUnavailable):
        await gateway.complete(CallContext(TENANT_A, "c1"), chat_call())
    await drain(5)
    assert budget.events[1] == ("settle", 0), "providers bill nothing for an error status: nothing charged"
    assert cache.entries == {}


async def test_a_cache_hit_costs_nothing_and_is_scoped_to_the_tenant() -> None:
    gateway, engine, budget, _, _ = make()
    await gateway.complete(CallContext(TENANT_A, "c1"), chat_call())
    await drain(5)
    assert (await gateway.complete(CallContext(TENANT_A, "c2"), chat_call())).cached and engine.calls == 1
    await drain(5)
    assert [e[0] for e in budget.events] == ["reserve", "settle"], "a hit is decided before any reservation"
    assert not (await gateway.complete(CallContext(TENANT_B, "c3"), chat_call())).cached and engine.calls == 2


@pytest.mark.parametrize(("lookup", "store", "expect_calls", "expect_entries"),
                         [(False, True, 2, 1), (False, False, 2, 0)])
async def test_cache_control_from_the_client_is_honoured(lookup: bool, store: bool, expect_calls: int,
                                                         expect_entries: int) -> None:
    gateway, engine, _, cache, _ = make()
    ctx = CallContext(TENANT_A, "c", cache_lookup=lookup, cache_store=store)
    await gateway.complete(ctx, chat_call())
    await drain(5)
    await gateway.complete(ctx, chat_call())
    await drain(5)
    assert engine.calls == expect_calls and len(cache.entries) == expect_entries


async def test_an_unknown_model_is_a_404_before_anything_is_reserved() -> None:
    gateway, _, budget, _, _ = make()
    with pytest.raises(NotFound):
        await gateway.complete(CallContext(TENANT_A, "c"), chat_call("no-such-model"))
    assert budget.events == []


async def test_native_endpoints_return_the_contract_fields() -> None:
    gateway, *_ = make()
    chat = (await gateway.chat(CallContext(TENANT_A, "cid-1"),
                               ChatRequest(messages=[ChatMessage(role="user", content="hi")]))).body
    assert (chat.content, chat.finish_reason, chat.cached, chat.correlation_id) == ("a short answer", "stop",
                                                                                   False, "cid-1")
    summary = (await gateway.summarize(CallContext(TENANT_A, "cid-2"), SummarizeRequest(text="long text"))).body
    assert summary.result == "a short answer" and summary.usage == USAGE


async def collect(gateway: Gateway, ctx: CallContext) -> list[Any]:
    return [d async for d in gateway.stream(ctx, chat_call())]


async def test_a_stream_settles_and_then_serves_the_next_request_from_cache() -> None:
    gateway, engine, budget, _, _ = make()
    first = await collect(gateway, CallContext(TENANT_A, "c"))
    assert "".join(d.content for d in first) == "a short answer"
    await drain(5)
    second = await collect(gateway, CallContext(TENANT_A, "c"))
    assert "".join(d.content for d in second) == "a short answer" and engine.calls == 1
    assert [e[0] for e in budget.events] == ["reserve", "settle"]


async def test_a_stream_failing_before_content_raises_the_original_error() -> None:
    gateway, _, budget, cache, _ = make(FakeEngine(error=ServiceUnavailable("down"), fail_after=0))
    with pytest.raises(ServiceUnavailable):
        await collect(gateway, CallContext(TENANT_A, "c"))
    await drain(5)
    assert budget.events[1] == ("settle", 0) and cache.entries == {}


async def test_a_stream_cut_after_content_is_interrupted_never_a_clean_end() -> None:
    gateway, _, budget, cache, _ = make(FakeEngine(error=ServiceUnavailable("down"), fail_after=2))
    received: list[str] = []
    with pytest.raises(StreamInterrupted):
        async for delta in gateway.stream(CallContext(UNREDACTED, "c"), chat_call()):
            received.append(delta.content)
    assert received == ["a", " short"]
    await drain(5)
    prompt = budget.estimates[0].prompt_tokens
    received_tokens = completion_tokens("gpt-test", "a short", 2)
    assert budget.events[1] == ("settle", prompt + received_tokens), "the prompt plus the completion received"
    assert cache.entries == {}


async def test_a_client_leaving_mid_stream_is_charged_what_the_provider_billed() -> None:
    engine = FakeEngine(gate=asyncio.Event())
    gateway, _, budget, cache, _ = make(engine)
    stream = gateway.stream(CallContext(UNREDACTED, "c"), chat_call())
    assert (await stream.__anext__()).content == "a"
    await stream.aclose()
    assert budget.events == [("reserve", budget.estimates[0].tokens)], "nothing settled while the model still runs"
    engine.gate.set()  # type: ignore[union-attr]
    await drain(5)
    assert budget.events[-1] == ("settle", USAGE.total_tokens), "the stream was drained to the provider's usage"
    assert len(cache.entries) == 1, "the drained answer is complete, so it is cached"


async def test_a_request_cancelled_mid_call_still_settles_what_was_billed() -> None:
    engine = FakeEngine(gate=asyncio.Event())
    gateway, _, budget, _, _ = make(engine)
    request = asyncio.ensure_future(gateway.complete(CallContext(TENANT_A, "c"), chat_call()))
    for _ in range(10):  # let the request reach the model call
        await asyncio.sleep(0)
    assert engine.calls == 1
    request.cancel()  # what a client disconnect does to the invocation
    with pytest.raises(asyncio.CancelledError):
        await request
    engine.gate.set()  # type: ignore[union-attr]
    await drain(5)
    assert budget.events[-1] == ("settle", USAGE.total_tokens)


async def test_a_summarize_text_with_template_syntax_reaches_the_model_literally() -> None:
    gateway, engine, budget, _, _ = make()
    text = "{{$max_words}} {{$style}} {{ $text }} {{}} " * 50
    await gateway.summarize(CallContext(TENANT_A, "c"), SummarizeRequest(text=text, max_words=7))
    (sent,) = engine.prompts
    assert text in sent and sent.count("{{$max_words}}") == 50 and "at most 7 words" in sent
    assert budget.estimates[0].prompt_tokens == prompt_tokens("gpt-test", [("user", sent)])


async def test_a_semantic_hit_is_charged_its_embedding_and_counted_in_tpm() -> None:
    gateway, engine, budget, cache, limiter = make()
    cache.embedding_tokens, cache.exact_tier = 7, False
    await gateway.complete(CallContext(TENANT_A, "c1"), chat_call())
    await drain(5)
    assert budget.events[-1] == ("settle", USAGE.total_tokens + 7), "the miss: its embedding and the answer"
    await gateway.complete(CallContext(TENANT_A, "c2"), chat_call())
    await drain(5)
    assert budget.events[-1] == ("settle", 7) and engine.calls == 1, "the hit: its embedding only"
    chat_prompt = prompt_tokens("gpt-test", [("user", "hello there")])
    assert limiter.admitted[0] == 50 + 2 * chat_prompt, "TPM counts the embedding as well as the chat"
    assert budget.estimates[0].prompt_tokens == 2 * chat_prompt, "reserved before the lookup embeds"


@pytest.mark.parametrize("outage", [ServiceUnavailable("every endpoint is down"),
                                    UpstreamThrottled("every endpoint is at its limit", retry_after_s=3)])
async def test_degraded_mode_serves_an_expired_answer_flagged_stale(outage: ServiceUnavailable) -> None:
    gateway, engine, budget, cache, _ = make()
    await gateway.complete(CallContext(TENANT_A, "c"), chat_call())
    await drain(5)
    cache.expired.update(cache.entries)
    engine.error = outage
    answer = await gateway.complete(CallContext(TENANT_A, "c"), chat_call())
    await drain(5)
    assert (answer.cached, answer.stale, answer.completion.content) == (True, True, "a short answer")
    assert budget.events[-2:] == [("reserve", budget.estimates[-1].tokens), ("settle", 0)]
    with pytest.raises(ServiceUnavailable):  # nothing cached for another tenant: a clear 503
        await gateway.complete(CallContext(TENANT_B, "c"), chat_call())


async def test_only_complete_answers_are_cached() -> None:
    gateway, engine, _, cache, _ = make()
    engine.finish = "length"
    await gateway.complete(CallContext(TENANT_A, "c"), chat_call())
    await drain(5)
    assert cache.entries == {}


async def test_a_model_not_allowed_for_the_tenant_is_403() -> None:
    from shared.core.errors import Forbidden
    from shared.core.settings import TenantLimits

    gateway, engine, budget, _, _ = make()
    limited = Principal("tenant-c", "k", limits=TenantLimits(allowed_models=("other-model",)))
    with pytest.raises(Forbidden):
        await gateway.complete(CallContext(limited, "c"), chat_call())
    assert engine.calls == 0 and budget.events == []


async def test_a_failing_cache_is_a_miss_not_an_error() -> None:
    class BrokenCache(FakeCache):
        async def exact(self, *args: Any, **kwargs: Any) -> None:
            raise ConnectionError("cosmos is down")

        async def store(self, *args: Any, **kwargs: Any) -> None:
            raise ConnectionError("cosmos is down")

    engine, budget = FakeEngine(), FakeBudget()
    gateway = Gateway(engine, CountingLimiter(), budget, BrokenCache())  # type: ignore[arg-type]
    answer = await gateway.complete(CallContext(TENANT_A, "c"), chat_call())
    assert answer.completion.content == "a short answer" and not answer.cached


async def test_a_tenant_that_caches_nothing_pays_for_no_lookups() -> None:
    from shared.core.settings import TenantLimits
    from shared.state.cache import TieredCache

    class Counting:
        """Counts calls instead of raising: the gateway turns a failing cache into a miss, so a
        raising fake would pass even if lookups were made."""

        calls = 0

        async def lookup(self, *args: Any, **kwargs: Any) -> None:
            self.calls += 1

        async def store(self, *args: Any, **kwargs: Any) -> None:
            self.calls += 1

    exact, semantic = Counting(), Counting()
    tiered = TieredCache(exact, semantic, now=lambda: 0.0)  # type: ignore[arg-type]
    engine = FakeEngine()
    gateway = Gateway(engine, CountingLimiter(), FakeBudget(), tiered)  # type: ignore[arg-type]
    never = Principal("tenant-d", "k", limits=TenantLimits(cache_ttl_s=0))
    answer = await gateway.complete(CallContext(never, "c"), chat_call())
    await drain(5)
    assert not answer.cached and engine.calls == 1
    assert exact.calls == semantic.calls == 0, "no Cosmos read or write, no embedding call"


async def test_a_stream_in_degraded_mode_replays_the_stale_answer() -> None:
    gateway, engine, budget, cache, _ = make()
    await collect(gateway, CallContext(TENANT_A, "c"))
    await drain(5)
    cache.expired.update(cache.entries)
    engine.error, engine.fail_after = ServiceUnavailable("every endpoint is down"), 0
    replayed = await collect(gateway, CallContext(TENANT_A, "c"))
    await drain(5)
    assert "".join(d.content for d in replayed) == "a short answer"
    assert all(d.stale for d in replayed)
    assert budget.events[-1] == ("settle", 0)


async def test_a_slow_reader_holds_the_models_stream_back_and_one_who_left_gets_nothing_kept() -> None:
    gateway, _, budget, _, _ = make()
    produced = 0
    usage = Usage(prompt_tokens=5, completion_tokens=1000, total_tokens=1005)

    async def source() -> Any:
        nonlocal produced
        for _ in range(1000):
            produced += 1
            yield Delta(content="x")
        yield Delta(finish_reason="stop", usage=usage)

    stream = gateway.streamed(gateway._chat(CallContext(UNREDACTED, "c"), chat_call(), "gpt-test", source))
    assert (await stream.__anext__()).content == "x"
    for _ in range(50):
        await asyncio.sleep(0)
    assert produced <= STREAM_QUEUE + 2, f"{produced} deltas read ahead of a reader that took one"
    await stream.aclose()  # the client leaves: the model's stream is still read to its end
    await drain(5)
    assert produced == 1000
    assert budget.events[-1] == ("settle", usage.total_tokens)


async def test_only_calls_whose_attempt_ran_past_the_deadline_count_against_a_tenants_long_calls() -> None:
    now = [100.0]
    calls = LongCalls(lambda: now[0])
    gateway, *_ = make()
    tenant = Principal("tenant-a", "k1", limits=TenantLimits(max_long_calls=2))

    def exchange(long_after_s: float | None = 30.0) -> Exchange:
        source = lambda: FakeEngine().stream("m", [], SamplingParams(1))  # noqa: E731  never run here
        return gateway._chat(CallContext(tenant, "c"), chat_call(), "gpt-test", source, long_after_s=long_after_s)

    async def running(ex: Exchange) -> Any:
        return None  # the call goes on: nothing ends it here

    exchanges = [exchange() for _ in range(3)]
    for ex in exchanges:
        await calls.stage(ex, running)
    exchanges[0].meter.attempt_began, exchanges[1].meter.attempt_began = 60.0, 69.0  # 40 s and 31 s in
    exchanges[2].meter.attempt_began = 95.0  # waited between attempts: its attempt is young
    await calls.stage(exchange(None), running)  # a call that cannot be long is never refused
    with pytest.raises(RateLimited):
        await calls.stage(exchange(), running)
    exchanges[0].finish()
    another = exchange()
    await calls.stage(another, running)  # one long call left: room for another
    for ex in [*exchanges, another]:
        ex.finish()
    await drain(5)
    assert calls._running == {}, "no entry is kept per tenant ever seen"
