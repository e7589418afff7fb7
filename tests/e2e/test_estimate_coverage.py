"""A schema hidden where a recipe does not look is counted (issue #19, finding 3): `response_format:
{"type": "text", "json_schema": ...}` is forwarded as written and the simulator bills the schema, so
the estimate the gateway charges at admission must cover it: a cut stream is charged at least the
bill, a small day refuses it, and one too large for the model is refused before any upstream call."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from shared.core.settings import hash_api_key
from tools.localenv import LocalStack

pytestmark = pytest.mark.e2e
MODEL = "gpt-4o-mini"
WIDE, SMALL_DAY = "estimate-wide-key", "estimate-small-day-key"
TENANTS = json.dumps([
    {"tenant": "estimate-wide", "keys": [{"id": "ew", "sha256": hash_api_key(WIDE)}], "limits": {"cache_ttl_s": 0}},
    {"tenant": "estimate-small-day", "keys": [{"id": "es", "sha256": hash_api_key(SMALL_DAY)}],
     "limits": {"cache_ttl_s": 0, "daily_tokens": 3000}},
])


def hidden_schema(properties: int) -> dict[str, Any]:
    """A schema of many described properties under `type: "text"`, where no recipe reads one."""
    schema = {"type": "object", "properties": {
        f"field_{i}": {"type": "string", "description": f"The harbour master's note number {i} on tides and swell."}
        for i in range(properties)}}
    return {"type": "text", "json_schema": {"name": "notes", "schema": schema}}


def chat(response_format: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"model": MODEL, "messages": [{"role": "user", "content": "Say hello."}], "max_tokens": 16,
            "response_format": response_format, **extra}


@pytest.fixture(scope="module")
def app(stack: LocalStack) -> Iterator[str]:
    with stack.app_on_free_port("estimate-coverage", {"TENANTS": TENANTS}) as url:
        yield url


@pytest.fixture
def sims(stack: LocalStack) -> Iterator[list[str]]:
    urls = [stack.sim_url(region) for region in ("primary", "secondary")]
    for url in urls:
        httpx.delete(f"{url}/_sim/faults").raise_for_status()
    yield urls
    for url in urls:
        httpx.delete(f"{url}/_sim/faults").raise_for_status()


def billed(sims: list[str]) -> tuple[int, int]:
    """(requests, prompt + completion tokens) the simulators have billed, both regions."""
    stats = [httpx.get(f"{url}/_sim/stats").json() for url in sims]
    return (sum(s["requests"] for s in stats), sum(s["prompt_tokens"] + s["completion_tokens"] for s in stats))


def used(app: str, key: str) -> int:
    day = httpx.get(f"{app}/api/v1/usage", headers={"x-api-key": key}, timeout=30).json()["daily"]
    assert day["tokens_reserved"] == 0, "every reservation is settled when the answer has been read"
    return int(day["tokens_used"])


def post(app: str, key: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(f"{app}/api/v1/chat/completions", headers={"x-api-key": key}, json=body, timeout=60)


def test_a_hidden_schema_answered_is_charged_its_bill(app: str, sims: list[str]) -> None:
    (_, billed0), used0 = billed(sims), used(app, WIDE)
    answer = post(app, WIDE, chat(hidden_schema(1000)))
    assert answer.status_code == 200, answer.text
    bill, charged = billed(sims)[1] - billed0, used(app, WIDE) - used0
    print(f"hidden schema, answered: billed {bill}, charged {charged}")
    assert bill > 20_000, "the simulator bills the schema under type text"
    assert charged == bill


def test_a_hidden_schema_in_a_cut_stream_is_charged_at_least_its_bill(app: str, sims: list[str]) -> None:
    """A stream cut after its first tokens is charged the prompt as estimated: the schema with it."""
    for url in sims:
        httpx.post(f"{url}/_sim/faults", json={"status": "drop_stream", "rate": 1.0, "after_tokens": 3}
                   ).raise_for_status()
    (_, billed0), used0 = billed(sims), used(app, WIDE)
    with httpx.stream("POST", f"{app}/api/v1/chat/completions", headers={"x-api-key": WIDE}, timeout=60,
                      json=chat(hidden_schema(1000), stream=True)) as response:
        assert response.status_code == 200
        events = [line for line in response.iter_lines() if line.startswith("data: ")]
    assert "error" in events[-1], "the cut stream ends in an error event"
    bill, charged = billed(sims)[1] - billed0, used(app, WIDE) - used0
    print(f"hidden schema, stream cut upstream: billed {bill}, charged {charged}")
    assert bill > 20_000
    assert charged >= bill, f"charged {charged} tokens, the simulators billed {bill}"


def test_a_hidden_schema_does_not_slip_past_a_small_day(app: str, sims: list[str]) -> None:
    before = billed(sims)
    answer = post(app, SMALL_DAY, chat(hidden_schema(1000)))
    print(f"hidden schema against a 3,000-token day: {answer.status_code}, billed {billed(sims)[1] - before[1]}")
    assert answer.status_code == 429, answer.text
    assert answer.json()["error"]["code"] == "insufficient_quota", "budget-exhausted, in OpenAI's error shape"
    assert billed(sims) == before, "refused before any upstream call"
    assert used(app, SMALL_DAY) == 0


def test_an_800_kb_hidden_schema_is_refused_for_the_context_window(app: str, sims: list[str]) -> None:
    body = chat(hidden_schema(7_400))
    assert 790_000 < len(json.dumps(body)) < 850_000, "800 kB, under the body limit (MAX_REQUEST_BYTES, 1 MiB)"
    before = billed(sims)
    answer = post(app, WIDE, body)
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["code"] == "context_length_exceeded" and "context_window" in error["message"]
    assert billed(sims) == before, "refused before any upstream call"
