"""Refusals that tell the truth (issue #8): which 429, how long to wait, and whether to retry at all."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import httpx
import httpx2
import openai
import pytest

from shared.core.settings import hash_api_key
from shared.core.tokens import prompt_tokens
from tests.e2e.conftest import assert_problem
from tools.localenv import LocalStack

pytestmark = pytest.mark.e2e
PROMPT = "Name one lighthouse on the north coast."
MAX_TOKENS = 50
ONE_REQUEST = prompt_tokens("gpt-4o-mini", [("user", PROMPT)]) + MAX_TOKENS


def tenant(name: str, **limits: object) -> dict[str, object]:
    return {"tenant": name, "keys": [{"id": name, "sha256": hash_api_key(f"{name}-key")}],
            "limits": {"cache_ttl_s": 0, **limits}}


TENANTS = json.dumps([tenant("tiny", daily_tokens=10), tenant("one-minute", rpm=1),
                      tenant("one-at-a-time", daily_tokens=ONE_REQUEST + ONE_REQUEST // 2)])


@pytest.fixture(scope="module")
def url(stack: LocalStack) -> Iterator[str]:
    with stack.app_on_free_port("refusals", {"TENANTS": TENANTS}) as app:
        yield app


def chat(url: str, name: str) -> httpx.Response:
    return httpx.post(f"{url}/api/v1/chat", headers={"x-api-key": f"{name}-key"}, timeout=30,
                      json={"messages": [{"role": "user", "content": PROMPT}], "max_tokens": MAX_TOKENS})


def test_budget_exhausted_says_so_and_tells_the_sdk_not_to_retry(url: str) -> None:
    response = chat(url, "tiny")
    body = assert_problem(response, 429)
    assert body["type"].endswith("/budget-exhausted")
    assert response.headers["x-should-retry"] == "false"
    assert int(response.headers["retry-after"]) > 60, "until the day resets"

    sent: list[str] = []
    http_client = httpx2.Client(event_hooks={"request": [lambda request: sent.append(str(request.url))]})
    client = openai.OpenAI(base_url=f"{url}/api/v1", api_key="tiny-key", max_retries=2, http_client=http_client)
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": PROMPT}],
                                       max_tokens=MAX_TOKENS)
    assert len(sent) == 1, "the SDK made one request, not three"


def test_rate_limited_waits_for_the_next_minute(url: str) -> None:
    assert chat(url, "one-minute").status_code == 200
    second = chat(url, "one-minute")
    refused = second if second.status_code == 429 else chat(url, "one-minute")  # a new minute began between
    body = assert_problem(refused, 429)
    assert body["type"].endswith("/rate-limited")
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert refused.headers["x-ratelimit-remaining-requests"] == "0"
    assert "x-should-retry" not in refused.headers


async def test_budget_busy_is_a_short_wait_while_another_request_holds_the_room(url: str,
                                                                                 stack: LocalStack) -> None:
    async with httpx.AsyncClient(timeout=30) as client:
        for region in ("primary", "secondary"):
            await client.post(f"{stack.sim_url(region)}/_sim/faults", json={"latency_ms": 3000, "rate": 1.0})
        try:
            holder = asyncio.ensure_future(asyncio.to_thread(chat, url, "one-at-a-time"))
            await asyncio.sleep(1.0)  # the first request is reserved and waiting on the model
            refused = await asyncio.to_thread(chat, url, "one-at-a-time")
            assert (await holder).status_code == 200
        finally:
            for region in ("primary", "secondary"):
                await client.delete(f"{stack.sim_url(region)}/_sim/faults")
    body = assert_problem(refused, 429)
    assert body["type"].endswith("/budget-busy")
    assert 1 <= int(refused.headers["retry-after"]) <= 60, "the earliest lease end, capped at 60 s"
    assert "x-should-retry" not in refused.headers
