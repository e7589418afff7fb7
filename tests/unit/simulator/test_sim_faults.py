"""Fault validation and sampling of the simulator."""

from __future__ import annotations

import httpx
import pytest

from tools.simulator.faults import Fault, FaultInjector
from tools.simulator.schemas import InvalidRequest, parse


@pytest.mark.parametrize(
    ("body", "names"),
    [
        (b'{"status": 404}', "status"),
        (b'{"status": "429"}', "status"),
        (b'{"status": 429, "rate": 1.5}', "rate"),
        (b'{"status": 429, "rate": -0.1}', "rate"),
        (b'{"status": 429, "rate": true}', "rate"),
        (b'{"status": 429, "retry_after": 2}', "retry_after"),
        (b'{"status": 500, "retry_after_s": 2}', "retry_after_s"),
        (b'{"status": 429, "after_tokens": 2}', "after_tokens"),
        (b'{"status": "drop_stream", "after_tokens": -1}', "after_tokens"),
        (b'{"latency_ms": -5}', "latency_ms"),
        (b'{"rate": 0.5}', "status"),
        (b"not json", "JSON"),
    ],
)
def test_bad_faults_are_refused_naming_the_problem(body: bytes, names: str) -> None:
    with pytest.raises(InvalidRequest, match=names):
        parse(Fault, body)


def test_a_fault_defaults_to_every_request_and_three_tokens_before_a_drop() -> None:
    fault = parse(Fault, b'{"status": "drop_stream"}')

    assert fault.rate == 1.0
    assert fault.drop_after == 3
    assert parse(Fault, b'{"status": "drop_stream", "after_tokens": 0}').drop_after == 0


def test_retry_after_is_sent_in_whole_seconds_rounded_up_and_in_ms() -> None:
    fault = parse(Fault, b'{"status": 429, "retry_after_s": 1.2}')

    assert fault.retry_headers() == {"retry-after": "2", "retry-after-ms": "1200"}
    assert parse(Fault, b'{"status": 429}').retry_headers() == {}


def test_rate_one_hits_every_request_and_rate_zero_none() -> None:
    injector = FaultInjector(seed=0)
    assert injector.draw() is None

    injector.set(Fault(status=503, rate=1.0))
    assert all(injector.draw() is not None for _ in range(200))

    injector.set(Fault(status=503, rate=0.0))
    assert all(injector.draw() is None for _ in range(200))


def test_a_partial_rate_is_reproducible_each_time_the_fault_is_set() -> None:
    injector = FaultInjector(seed=7)
    fault = Fault(status=429, rate=0.3)

    injector.set(fault)
    first = [injector.draw() is not None for _ in range(1000)]
    injector.set(fault)
    second = [injector.draw() is not None for _ in range(1000)]

    assert first == second
    assert 250 < sum(first) < 350


async def test_a_fault_for_one_deployment_spares_the_others_in_the_region(client: httpx.AsyncClient) -> None:
    """Two model tiers served by one region: the small one down, the large one still answers."""
    await client.post("/_sim/faults", json={"status": 503, "deployment": "chat"})
    body = {"messages": [{"role": "user", "content": "hi"}]}
    url = "/openai/deployments/{}/chat/completions?api-version=2024-10-21"

    down = await client.post(url.format("chat"), json=body, headers={"api-key": "any"})
    up = await client.post(url.format("chat-large"), json=body, headers={"api-key": "any"})

    assert down.status_code == 503
    assert up.status_code == 200 and up.json()["model"] == "simulator-chat-large"
