"""A non-streamed attempt's own time limit: derived from what it asks for, and never held against
the endpoint when it runs out (issue 19, findings 1 and 2)."""

from __future__ import annotations

import asyncio
import random

import pytest

from shared.core.errors import ServiceUnavailable
from shared.core.settings import RESPONSE_LIMIT_S, EndpointConfig
from shared.upstream.endpoints import Endpoint
from shared.upstream.resilience.breaker import BreakerSettings
from shared.upstream.resilience.policy import ResiliencePolicy, RetrySettings
from shared.upstream.resilience.pool import EndpointPool
from shared.upstream.resilience.retry_budget import RetryBudget
from tests.unit.resilience.helpers import FakeClock
from tests.unit.resilience.test_deadline import never_answers, timed_out

TRIP_AT_ONCE = BreakerSettings(consecutive_failures=1, min_calls=1)


def paced(name: str, priority: int, tokens_per_s: float) -> Endpoint:
    config = EndpointConfig(name=name, kind="openai", endpoint=f"http://{name}", model="m", priority=priority,
                            slowest_tokens_per_s=tokens_per_s)
    return Endpoint(config=config, wire=None)  # type: ignore[arg-type]  # attempts never touch it


def limited_policy(*, base_s: float, deadline_s: float = 30.0) -> ResiliencePolicy:
    clock = FakeClock()
    pool = EndpointPool(["primary", "secondary"], TRIP_AT_ONCE, clock, random.Random(1))
    settings = RetrySettings(max_attempts=3, deadline_s=deadline_s, attempt_base_s=base_s)
    return ResiliencePolicy(pool, RetryBudget(clock), settings, clock, rng=random.Random(1))


def test_the_limit_is_the_base_plus_the_output_at_the_endpoints_slowest_pace() -> None:
    p = limited_policy(base_s=20)
    slow, fast = paced("primary", 0, 25), paced("secondary", 1, 100)
    assert p.time_limit_s(slow, 2000) == 20 + 80
    assert p.time_limit_s(fast, 2000) == 20 + 20
    assert p.time_limit_s(slow, None) is None, "a stream until its first content has none of its own"
    assert p.call_limit_s([slow, fast], 2000) == 100, "the slowest endpoint's"


async def test_a_call_that_outgrows_its_own_limit_is_not_held_against_the_endpoint_nor_sent_elsewhere() -> None:
    calls: list[str] = []

    async def slow(ep: Endpoint) -> str:
        calls.append(ep.name)
        return await never_answers(ep)

    p = limited_policy(base_s=0.02)
    eps = [paced("primary", 0, 1e6), paced("secondary", 1, 1e6)]
    for _ in range(6):  # one tenant's long requests, over and over
        with pytest.raises(ServiceUnavailable, match="max_tokens"):
            await p.call(eps, slow, work_tokens=10)
    assert p.pool.states() == {"primary": "closed", "secondary": "closed"}
    assert calls == ["primary"] * 6, "paid once: never failed over after a cut the provider may bill"


async def test_a_whole_answer_is_bounded_by_its_own_limit_not_by_the_callers_deadline() -> None:
    async def answers_after_50_ms(ep: Endpoint) -> str:
        await asyncio.sleep(0.05)
        return "answer"

    p = limited_policy(base_s=1.0, deadline_s=0.01)
    assert await p.call([paced("primary", 0, 1e6)], answers_after_50_ms, work_tokens=0) == "answer"
    with pytest.raises(ServiceUnavailable):  # a stream's first content keeps the request's own deadline
        await p.call([paced("primary", 0, 1e6)], answers_after_50_ms)
    assert p.time_limit_s(paced("primary", 0, 1.0), 10**6) == 1.0 + 10**6


async def test_no_attempt_runs_past_the_front_ends_wait_from_the_calls_start() -> None:
    p = limited_policy(base_s=1000.0, deadline_s=RESPONSE_LIMIT_S)
    clock = p.clock
    assert isinstance(clock, FakeClock)
    seen: list[float] = []

    async def record(remaining_s: float, limit_s: float | None) -> bool:
        seen.append(limit_s or 0.0)
        return True

    calls = 0

    async def fails_once(ep: Endpoint) -> str:
        nonlocal calls
        calls += 1
        if calls == 1:
            clock.t += 200.0  # the first attempt failed late
            raise timed_out()
        return "answer"

    assert await p.call([paced("primary", 0, 1e6), paced("secondary", 1, 1e6)], fails_once, work_tokens=10,
                        before_retry=record) == "answer"
    assert seen == [pytest.approx(RESPONSE_LIMIT_S - 200.0)], "the second attempt gets what is left of 220 s"


async def test_no_retry_after_a_charged_attempt_unless_the_caller_agrees() -> None:
    asked: list[tuple[float, float | None]] = []

    async def decline(remaining_s: float, limit_s: float | None) -> bool:
        asked.append((remaining_s, limit_s))
        return False

    calls: list[str] = []

    async def times_out(ep: Endpoint) -> str:
        calls.append(ep.name)
        raise timed_out()

    p = limited_policy(base_s=5.0)
    with pytest.raises(ServiceUnavailable, match="No model endpoint"):
        await p.call([paced("primary", 0, 100), paced("secondary", 1, 100)], times_out, work_tokens=100,
                     before_retry=decline)
    assert calls == ["primary"]
    assert asked == [(30.0, 6.0)], "asked once, with the time left and the next attempt's own limit"
    assert p.pool.breakers["secondary"].state.value == "closed", "the endpoint chosen but not called is released"
