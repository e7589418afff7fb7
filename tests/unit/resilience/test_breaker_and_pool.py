"""The breaker's state machine, the retry budget's window, and how endpoints are chosen."""

from __future__ import annotations

import random
from collections import Counter

from shared.upstream.failures import UpstreamFailure
from shared.upstream.resilience.breaker import TRANSITIONS, BreakerSettings, CircuitBreaker, State
from shared.upstream.resilience.pool import EndpointPool
from shared.upstream.resilience.retry_budget import RetryBudget
from tests.unit.resilience.helpers import FakeClock, endpoint

SETTINGS = BreakerSettings(consecutive_failures=3, failure_ratio=0.5, window_s=30, min_calls=10, cooldown_s=15,
                           half_open_probes=1)


def state_of(breaker: CircuitBreaker) -> State:
    """The state read afresh: written inline, mypy keeps an earlier `state is` narrowing across the calls between."""
    return breaker.state


def test_consecutive_failures_open_the_breaker_and_the_cooldown_half_opens_it() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker("unit-a", SETTINGS, clock)
    for _ in range(2):
        breaker.record_failure()
    assert state_of(breaker) is State.CLOSED and breaker.allow()
    breaker.record_failure()
    assert state_of(breaker) is State.OPEN and not breaker.allow()
    assert breaker.reopens_in() == 15
    clock.t += 15
    assert state_of(breaker) is State.HALF_OPEN
    assert breaker.allow() and not breaker.allow(), "one probe at a time"
    breaker.record_success()
    assert state_of(breaker) is State.CLOSED and breaker.allow()
    assert TRANSITIONS[("unit-a", "open")] == 1 and TRANSITIONS[("unit-a", "closed")] == 1


def test_a_failed_probe_opens_again_for_the_longer_of_cooldown_and_retry_after() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker("unit-b", SETTINGS, clock)
    for _ in range(3):
        breaker.record_failure()
    clock.t += 15
    assert breaker.allow()
    breaker.record_failure(retry_after_s=40)
    assert breaker.state is State.OPEN and breaker.reopens_in() == 40


def test_a_failure_ratio_over_the_window_opens_it_without_a_streak() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker("unit-c", SETTINGS, clock)
    for i in range(10):
        breaker.record_failure() if i % 2 else breaker.record_success()
        clock.t += 1
    assert breaker.state is State.OPEN
    slow = CircuitBreaker("unit-d", SETTINGS, clock)
    for i in range(10):  # the same mix spread beyond the window never reaches min_calls at once
        slow.record_failure() if i % 2 else slow.record_success()
        clock.t += 10
    assert slow.state is State.CLOSED


def test_the_retry_budget_refills_as_its_window_slides() -> None:
    clock = FakeClock()
    budget = RetryBudget(clock, ratio=0.2, window_s=60, floor=1)
    for _ in range(10):
        budget.record_first_attempt()
    assert [budget.try_spend() for _ in range(4)] == [True, True, True, False]
    clock.t += 61
    assert budget.try_spend(), "old retries left the window; the floor allows one"


def test_the_retry_budget_holds_one_window_of_first_attempts_when_nothing_retries() -> None:
    """A healthy process never spends a retry; what it records must still leave the window (the
    soak grew by one timestamp per request, forever, before)."""
    clock = FakeClock()
    budget = RetryBudget(clock, ratio=0.2, window_s=60, floor=1)
    for _ in range(10_000):  # 10 a second for 1,000 s
        budget.record_first_attempt()
        clock.t += 0.1
    assert len(budget._firsts) <= 601  # the window's 60 s at 10 a second, not all 10,000


def test_lowest_priority_first_and_weights_spread_within_a_priority() -> None:
    clock = FakeClock()
    eps = [endpoint("east", 0, weight=3), endpoint("west", 0, weight=1), endpoint("backup", 1)]
    pool = EndpointPool([e.name for e in eps], SETTINGS, clock, random.Random(1))
    picks = Counter((pool.choose(eps, avoid=set()) or eps[0]).name for _ in range(4000))
    assert picks["backup"] == 0
    assert 2.6 < picks["east"] / picks["west"] < 3.4


def test_open_breakers_and_parked_endpoints_are_skipped() -> None:
    clock = FakeClock()
    eps = [endpoint("a", 0), endpoint("b", 1), endpoint("c", 2)]
    pool = EndpointPool([e.name for e in eps], SETTINGS, clock, random.Random(1))
    for _ in range(3):
        pool.record_failure(eps[0], UpstreamFailure("retryable", 503))
    pool.record_failure(eps[1], UpstreamFailure("retryable", 429, retry_after_s=5))
    assert pool.states()["b"] == "closed", "throttling parks an endpoint; it does not count against it"
    chosen = pool.choose(eps, avoid=set())
    assert chosen is not None and chosen.name == "c"
    assert pool.choose(eps[:2], avoid=set()) is None
    assert pool.available_in(eps[:2]) == 5
    clock.t += 5
    chosen = pool.choose(eps, avoid=set())
    assert chosen is not None and chosen.name == "b"


def test_a_probe_that_is_throttled_or_cut_gives_the_probe_back() -> None:
    """A half-open breaker whose one probe got a 429 (or was cancelled) must admit the next call:
    the probe told nothing of health, and nothing else would ever settle it."""
    clock = FakeClock()
    a = endpoint("probe-a")
    pool = EndpointPool([a.name], SETTINGS, clock, random.Random(1))
    for _ in range(3):
        pool.record_failure(a, UpstreamFailure("retryable", 503))
    clock.t += 15
    assert pool.choose([a], avoid=set()) is a, "the cooldown is over: one probe"
    assert pool.choose([a], avoid=set()) is None, "its one probe is out"
    pool.record_failure(a, UpstreamFailure("retryable", 429, retry_after_s=1))
    assert pool.states()["probe-a"] == "half_open"
    clock.t += 1
    assert pool.choose([a], avoid=set()) is a, "the throttled probe was given back"
    pool.release(a)  # as when the caller's deadline or a cancel cut it
    assert pool.choose([a], avoid=set()) is a
