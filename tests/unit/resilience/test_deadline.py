"""The caller's deadline against the endpoint's own timeout: only the second is evidence against the endpoint."""

from __future__ import annotations

import asyncio

import pytest

from shared.core.errors import ServiceUnavailable
from shared.upstream.endpoints import Endpoint
from shared.upstream.errors import EndpointTimedOut
from shared.upstream.resilience.breaker import BreakerSettings
from tests.unit.resilience.helpers import FakeClock, endpoint, policy

TRIP_AT_ONCE = BreakerSettings(consecutive_failures=1, min_calls=1)


async def never_answers(ep: Endpoint) -> str:
    await asyncio.Event().wait()  # an endpoint still working when the caller's time is up
    return "unreachable"


def timed_out() -> EndpointTimedOut:
    """What a model call raises when no byte arrives within its timeout (MODEL_TIMEOUT_S)."""
    return EndpointTimedOut("the model endpoint timed out")


async def test_requests_cut_at_the_deadline_leave_every_breaker_closed() -> None:
    clock = FakeClock()
    p = policy(clock, ["primary", "secondary"], deadline=0.01, attempts=3)
    eps = [endpoint("primary", priority=0), endpoint("secondary", priority=1)]
    for _ in range(12):  # the incident: 12 slow requests of one tenant
        with pytest.raises(ServiceUnavailable):
            await p.call(eps, never_answers)
    assert p.pool.states() == {"primary": "closed", "secondary": "closed"}
    assert all(p.pool.usable(e) for e in eps)


async def test_a_request_cut_at_the_deadline_is_not_retried_elsewhere() -> None:
    calls: list[str] = []

    async def slow(ep: Endpoint) -> str:
        calls.append(ep.name)
        return await never_answers(ep)

    p = policy(FakeClock(), ["primary", "secondary"], deadline=0.01, attempts=3, breaker=TRIP_AT_ONCE)
    with pytest.raises(ServiceUnavailable):
        await p.call([endpoint("primary", 0), endpoint("secondary", 1)], slow)
    assert calls == ["primary"]  # no time is left for another attempt
    assert p.pool.states()["primary"] == "closed"


async def test_the_endpoints_own_timeout_counts_as_its_failure() -> None:
    async def times_out(ep: Endpoint) -> str:
        raise timed_out()

    p = policy(FakeClock(), ["only"], deadline=30, attempts=1, breaker=TRIP_AT_ONCE)
    with pytest.raises(ServiceUnavailable):
        await p.call([endpoint("only")], times_out)
    assert p.pool.states()["only"] == "open"


async def test_an_endpoint_timeout_fails_over_to_the_next_region() -> None:
    calls: list[str] = []

    async def primary_times_out(ep: Endpoint) -> str:
        calls.append(ep.name)
        if ep.name == "primary":
            raise timed_out()
        return "answer"

    p = policy(FakeClock(), ["primary", "secondary"], deadline=30, attempts=3, breaker=TRIP_AT_ONCE)
    assert await p.call([endpoint("primary", 0), endpoint("secondary", 1)], primary_times_out) == "answer"
    assert calls == ["primary", "secondary"]
    assert p.pool.states() == {"primary": "open", "secondary": "closed"}
