"""Retries, waits and failover, with an injected clock: the exact waits are asserted."""

from __future__ import annotations

import pytest

from shared.core.errors import ServiceUnavailable, UpstreamRefused, UpstreamThrottled
from shared.upstream.endpoints import Endpoint
from shared.upstream.resilience.breaker import BreakerSettings
from shared.upstream.resilience.retry_budget import RetryBudget
from tests.unit.resilience.helpers import FakeClock, api_error, endpoint, policy, scripted


async def test_retry_after_is_honoured_on_every_attempt_not_only_the_first() -> None:
    clock = FakeClock()
    calls: list[str] = []
    outcomes: list[BaseException | str] = [api_error(429, {"retry-after": "2"}),
                                           api_error(429, {"retry-after-ms": "3500"}), "ok"]
    result = await policy(clock, ["only"]).call([endpoint("only")], scripted(outcomes, calls))
    assert result == "ok" and calls == ["only"] * 3
    assert clock.waits == [2.0, 3.5]


async def test_without_retry_after_the_wait_is_full_jitter_within_bounds() -> None:
    for seed in range(20):
        clock = FakeClock()
        calls: list[str] = []
        outcomes: list[BaseException | str] = [api_error(503), api_error(503), "ok"]
        await policy(clock, ["only"], seed=seed).call([endpoint("only")], scripted(outcomes, calls))
        first, second = clock.waits
        assert 0 <= first <= 0.5 and 0 <= second <= 1.0
    jittered = set()
    for seed in range(5):
        clock = FakeClock()
        await policy(clock, ["only"], seed=seed).call([endpoint("only")], scripted([api_error(500), "ok"], []))
        jittered.add(clock.waits[0])
    assert len(jittered) == 5, "full jitter: no two seeds wait the same"


async def test_a_throttled_endpoint_sends_the_request_to_the_next_at_once() -> None:
    clock = FakeClock()
    calls: list[str] = []
    outcomes: list[BaseException | str] = [api_error(429, {"retry-after": "20"}), "from-secondary"]
    eps = [endpoint("primary", 0), endpoint("secondary", 1)]
    p = policy(clock, ["primary", "secondary"])
    assert await p.call(eps, scripted(outcomes, calls)) == "from-secondary"
    assert calls == ["primary", "secondary"] and sum(clock.waits) == 0, "failover does not wait"
    # The primary stays parked for its Retry-After: the next request goes straight to the secondary.
    assert await p.call(eps, scripted(["again"], calls)) == "again"
    assert calls[-1] == "secondary"
    clock.t += 20
    await p.call(eps, scripted(["back"], calls))
    assert calls[-1] == "primary"


@pytest.mark.parametrize("status", [400, 404, 422])
async def test_refusals_are_never_retried(status: int) -> None:
    clock = FakeClock()
    calls: list[str] = []
    with pytest.raises(UpstreamRefused):
        await policy(clock, ["a", "b"]).call([endpoint("a"), endpoint("b", 1)],
                                             scripted([api_error(status)], calls))
    assert calls == ["a"] and clock.waits == []


async def test_a_retry_after_beyond_the_deadline_fails_now_with_that_retry_after() -> None:
    clock = FakeClock()
    calls: list[str] = []
    with pytest.raises(UpstreamThrottled) as err:  # throttled, not down: a 429 the SDKs retry after it
        await policy(clock, ["only"], deadline=30).call([endpoint("only")],
                                                       scripted([api_error(429, {"retry-after": "45"})], calls))
    assert calls == ["only"] and clock.waits == []
    assert err.value.retry_after_s == pytest.approx(45)


async def test_attempts_stop_at_the_limit_and_the_client_gets_a_503() -> None:
    clock = FakeClock()
    calls: list[str] = []
    with pytest.raises(ServiceUnavailable):
        await policy(clock, ["only"], attempts=3).call([endpoint("only")], scripted([api_error(500)] * 5, calls))
    assert len(calls) == 3 and len(clock.waits) == 2


async def test_a_slow_attempt_is_cut_at_the_deadline() -> None:
    import asyncio

    clock = FakeClock()

    async def hang(ep: Endpoint) -> str:
        await asyncio.sleep(10)
        return "late"

    p = policy(clock, ["only"], deadline=0.05, attempts=1)
    with pytest.raises(ServiceUnavailable):
        await p.call([endpoint("only")], hang)


async def test_the_retry_budget_stops_retries_from_multiplying_load() -> None:
    clock = FakeClock()
    budget = RetryBudget(clock, ratio=0.2, window_s=60, floor=0)
    never_trips = BreakerSettings(consecutive_failures=1000, min_calls=1000)
    p = policy(clock, ["only"], budget=budget, breaker=never_trips)
    calls: list[str] = []
    for _ in range(10):
        with pytest.raises(ServiceUnavailable):
            await p.call([endpoint("only")], scripted([api_error(500)] * 3, calls))
    # 10 first attempts; retries may add 20%: 2 of them, not the 20 the attempt limit would allow.
    assert len(calls) == 12


async def test_failing_over_to_a_fresh_endpoint_spends_no_retry_budget() -> None:
    clock = FakeClock()
    budget = RetryBudget(clock, ratio=0.0, window_s=60, floor=0)  # no retries at all
    p = policy(clock, ["primary", "secondary"], budget=budget)
    eps = [endpoint("primary", 0), endpoint("secondary", 1)]
    calls: list[str] = []
    assert await p.call(eps, scripted([api_error(503), "ok"], calls)) == "ok"
    assert calls == ["primary", "secondary"]
    with pytest.raises(ServiceUnavailable):  # both fail: going back to the primary would be a retry
        await p.call(eps, scripted([api_error(503), api_error(503), "never"], calls))
    assert calls[2:] == ["primary", "secondary"]


async def test_an_open_breaker_is_not_waited_for_the_503_names_its_reopening() -> None:
    clock = FakeClock()
    calls: list[str] = []
    eps = [endpoint("primary", 0), endpoint("secondary", 1)]
    p = policy(clock, ["primary", "secondary"], breaker=BreakerSettings(consecutive_failures=1, cooldown_s=15))
    with pytest.raises(ServiceUnavailable) as err:
        await p.call(eps, scripted([api_error(503), api_error(503), "never"], calls))
    # Both regions failed and opened their breakers: no wait for a half-open probe that would mostly
    # find them down again (a routed request goes to its other tier instead).
    assert calls == ["primary", "secondary"] and sum(clock.waits) == 0
    assert err.value.retry_after_s == pytest.approx(15)
    with pytest.raises(ServiceUnavailable):
        await p.call(eps, scripted(["never"], calls))
    assert calls == ["primary", "secondary"] and sum(clock.waits) == 0, "the next request is not sent either"
    clock.t += 15
    assert await p.call(eps, scripted(["probed"], calls)) == "probed", "after the cooldown a probe goes"
