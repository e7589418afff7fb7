"""What the client is told when the policy gives up: 429 when every endpoint throttles, 503 when
one is down, the provider's cleaned 400 when it refuses, the provider's request id in each."""

from __future__ import annotations

import pytest

from shared.core.errors import ServiceUnavailable, UpstreamRefused, UpstreamThrottled
from shared.upstream.errors import ErrorStatus
from shared.upstream.errors import status_error as answered
from shared.upstream.resilience.breaker import BreakerSettings
from tests.unit.resilience.helpers import FakeClock, api_error, endpoint, policy, scripted


def status_error(status: int, body: object, headers: dict[str, str] | None = None) -> ErrorStatus:
    return answered(status, headers or {}, body)


async def test_every_region_throttled_is_a_429_with_the_smallest_retry_after_and_the_provider_s_id() -> None:
    clock = FakeClock()
    calls: list[str] = []
    eps = [endpoint("primary", 0), endpoint("secondary", 1)]
    outcomes: list[BaseException | str] = [api_error(429, {"retry-after": "20"}),
                                           api_error(429, {"retry-after": "7", "x-request-id": "req-123"})]
    with pytest.raises(UpstreamThrottled) as err:
        await policy(clock, ["primary", "secondary"], deadline=5).call(eps, scripted(outcomes, calls))
    assert calls == ["primary", "secondary"]
    assert err.value.status == 429 and err.value.retry_after_s == pytest.approx(7)
    assert err.value.headers == {"x-upstream-request-id": "req-123"}


async def test_a_region_down_behind_an_open_breaker_is_still_a_503() -> None:
    clock = FakeClock()
    trips = BreakerSettings(consecutive_failures=1, min_calls=1)
    p = policy(clock, ["primary", "secondary"], breaker=trips, deadline=5)
    eps = [endpoint("primary", 0), endpoint("secondary", 1)]
    calls: list[str] = []
    with pytest.raises(ServiceUnavailable) as err:
        await p.call(eps, scripted([api_error(500), api_error(429, {"retry-after": "9"})], calls))
    assert calls == ["primary", "secondary"]
    assert err.value.status == 503 and not isinstance(err.value, UpstreamThrottled)


async def test_a_provider_400_reaches_the_client_cleaned_with_its_param_code_and_request_id() -> None:
    clock = FakeClock()
    body = {"error": {"message": "Invalid value for 'top_logprobs' on http://primary: must be <= 20.",
                      "type": "invalid_request_error", "param": "top_logprobs", "code": "invalid_value"}}
    calls: list[str] = []
    with pytest.raises(UpstreamRefused) as err:
        await policy(clock, ["primary"]).call([endpoint("primary")],
                                              scripted([status_error(400, body, {"apim-request-id": "ap-9"})], calls))
    provider = err.value.provider
    assert provider is not None and calls == ["primary"]
    assert provider.message == "Invalid value for 'top_logprobs' on [redacted] must be <= 20."
    assert (provider.param, provider.code) == ("top_logprobs", "invalid_value")
    assert err.value.headers == {"x-upstream-request-id": "ap-9"}
