"""Rate limits and the exact cache on the Cosmos emulator."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bench.cache import CountingTransport
from shared.composition import Container
from shared.core.errors import TooManyRequests
from shared.core.models import Usage
from shared.core.settings import Settings, TenantLimits
from shared.core.values import Completion
from shared.identity.auth import Principal
from shared.state.cache import STALE_GRACE_S, CacheKey, CosmosExactCache
from shared.state.cosmos import CosmosState, cosmos_client
from shared.state.ratelimit import CosmosRateLimiter

ANSWER = Completion("Paris.", "stop", "simulator-chat", Usage(prompt_tokens=9, completion_tokens=2,
                                                               total_tokens=11), "primary")
REQUEST: dict[str, Any] = {"op": "chat", "messages": [{"role": "user", "content": "Capital of France?"}],
                           "params": {"max_tokens": 50, "temperature": 0.7}}


def key_of(who: Principal, model: str, request: dict[str, Any]) -> CacheKey:
    return CacheKey(who.tenant, model, lambda: request)


def principal(tenant: str | None = None, key: str = "k", **limits: Any) -> Principal:
    return Principal(tenant or f"t-{uuid.uuid4().hex[:10]}", key, limits=TenantLimits(**limits))


async def test_rpm_admits_the_limit_then_429_with_retry_after_and_headers(container: Container) -> None:
    now = datetime(2026, 7, 1, 10, 30, 15, tzinfo=UTC)
    limiter = CosmosRateLimiter(container.cosmos, now=lambda: now)
    who = principal(rpm=5)
    remaining = [(await limiter.admit(who, 10)).remaining_requests for _ in range(5)]
    assert remaining == [4, 3, 2, 1, 0]
    with pytest.raises(TooManyRequests) as err:
        await limiter.admit(who, 10)
    assert err.value.retry_after_s == pytest.approx(45)
    assert err.value.headers == {"x-ratelimit-remaining-requests": "0"}


async def test_tpm_counts_tokens_and_a_new_minute_starts_fresh(container: Container) -> None:
    clock = {"now": datetime(2026, 7, 1, 10, 30, 0, tzinfo=UTC)}
    limiter = CosmosRateLimiter(container.cosmos, now=lambda: clock["now"])
    who = principal(tpm=1000)
    assert (await limiter.admit(who, 600)).remaining_tokens == 400
    with pytest.raises(TooManyRequests):
        await limiter.admit(who, 500)
    clock["now"] += timedelta(minutes=1)
    assert (await limiter.admit(who, 500)).remaining_tokens == 500


async def test_a_shorter_rate_window_counts_and_resets_on_its_own_boundaries(container: Container) -> None:
    # RATE_WINDOW_S=5: what lets an e2e test see a throttled job wait out its Retry-After in seconds.
    clock = {"now": datetime(2026, 7, 1, 10, 30, 6, tzinfo=UTC)}
    limiter = CosmosRateLimiter(container.cosmos, now=lambda: clock["now"], window_s=5)
    who = principal(rpm=1)
    assert (await limiter.admit(who, 10)).remaining_requests == 0
    clock["now"] += timedelta(seconds=3)  # 10:30:09, still in the window of 10:30:05
    assert await limiter.over(who) is not None
    with pytest.raises(TooManyRequests) as err:
        await limiter.admit(who, 10)
    assert err.value.retry_after_s == pytest.approx(1)
    clock["now"] += timedelta(seconds=1)  # 10:30:10: a new window
    assert await limiter.over(who) is None
    assert (await limiter.admit(who, 10)).remaining_requests == 0
    clock["now"] += timedelta(seconds=50)  # 10:31:00: the minute's first window
    assert (await limiter.admit(who, 10)).remaining_requests == 0


async def test_limits_are_per_key(container: Container) -> None:
    limiter = CosmosRateLimiter(container.cosmos)
    first, second = principal("shared-tenant", "key-1", rpm=1), principal("shared-tenant", "key-2", rpm=1)
    await limiter.admit(first, 1)
    await limiter.admit(second, 1)
    with pytest.raises(TooManyRequests):
        await limiter.admit(first, 1)


async def test_no_limits_means_no_cosmos_traffic_and_no_headers(stack_settings: Settings) -> None:
    # The SDK's own transport, counting every request it sends to the emulator.
    transport = CountingTransport()
    state = CosmosState(cosmos_client(stack_settings, None, transport), stack_settings.cosmos_database, True)
    try:
        await state.database()  # opening (and creating) the database is not the limiter's traffic
        transport.requests.clear()
        limiter = CosmosRateLimiter(state)
        unlimited = principal()
        assert [(await limiter.admit(unlimited, 10)).headers() for _ in range(3)] == [{}, {}, {}]
        assert sum(transport.requests.values()) == 0, transport.requests
        # The counter sees the limiter's traffic when there is some: a limited key costs requests.
        await limiter.admit(principal(rpm=5), 10)
        assert sum(transport.requests.values()) > 0
    finally:
        await state.close()


async def test_the_exact_cache_is_scoped_to_tenant_model_and_request(container: Container) -> None:
    cache = CosmosExactCache(container.cosmos, now=lambda: 1000.0)
    a, b = principal(), principal()
    await cache.store(a, "gpt", key_of(a, "gpt", REQUEST), ANSWER)
    assert await cache.lookup(a, key_of(a, "gpt", REQUEST)) == ANSWER
    assert await cache.lookup(b, key_of(b, "gpt", REQUEST)) is None, "tenant B never gets tenant A's answer"
    assert await cache.lookup(a, key_of(a, "other-model", REQUEST)) is None
    warmer = {**REQUEST, "params": {"max_tokens": 50, "temperature": 0.9}}
    assert await cache.lookup(a, key_of(a, "gpt", warmer)) is None, "sampling parameters are part of the key"
    reordered = {"params": {"temperature": 0.7, "max_tokens": 50}, "messages": REQUEST["messages"], "op": "chat"}
    assert await cache.lookup(a, key_of(a, "gpt", reordered)) == ANSWER, "key order does not matter"


async def test_expiry_is_enforced_on_read_and_stale_answers_only_when_asked(container: Container) -> None:
    clock = {"t": 1000.0}
    cache = CosmosExactCache(container.cosmos, now=lambda: clock["t"])
    who = principal(cache_ttl_s=60)
    await cache.store(who, "gpt", key_of(who, "gpt", REQUEST), ANSWER)
    clock["t"] += 61
    assert await cache.lookup(who, key_of(who, "gpt", REQUEST)) is None
    assert await cache.lookup(who, key_of(who, "gpt", REQUEST), stale_ok=True) == ANSWER
    clock["t"] += STALE_GRACE_S
    assert await cache.lookup(who, key_of(who, "gpt", REQUEST), stale_ok=True) is None


async def test_a_ttl_of_zero_stores_nothing(container: Container) -> None:
    cache = CosmosExactCache(container.cosmos, now=lambda: 1000.0)
    who = principal(cache_ttl_s=0)
    await cache.store(who, "gpt", key_of(who, "gpt", REQUEST), ANSWER)
    assert await cache.lookup(who, key_of(who, "gpt", REQUEST), stale_ok=True) is None
