"""401 and 403 from a model endpoint: never retried on it, failed over at most (issue 13)."""

from __future__ import annotations

import pytest

from shared.core.errors import ServiceUnavailable
from tests.unit.resilience.helpers import FakeClock, api_error, endpoint, policy, scripted


@pytest.mark.parametrize("status", [401, 403])
async def test_the_only_endpoint_refusing_our_credentials_is_called_once(status: int) -> None:
    clock, calls = FakeClock(), list[str]()
    outcomes: list[BaseException | str] = [api_error(status)] * 3
    with pytest.raises(ServiceUnavailable):
        await policy(clock, ["only"]).call([endpoint("only")], scripted(outcomes, calls))
    assert calls == ["only"] and clock.waits == []


async def test_a_refusing_endpoint_fails_over_and_is_not_asked_again() -> None:
    clock, calls = FakeClock(), list[str]()
    outcomes: list[BaseException | str] = [api_error(401), api_error(503), "ok"]
    eps = [endpoint("primary", 0), endpoint("secondary", 1)]
    assert await policy(clock, ["primary", "secondary"]).call(eps, scripted(outcomes, calls)) == "ok"
    # The secondary's 503 is retried on it; the primary's 401 never is.
    assert calls == ["primary", "secondary", "secondary"]
