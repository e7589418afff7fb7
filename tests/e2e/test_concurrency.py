"""Four app processes, one Cosmos: budgets and rate limits hold across instances (issue #4)."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest

from shared.core.settings import hash_api_key
from shared.core.tokens import prompt_tokens
from tools.localenv import NO_JOBS, LocalStack, free_port

pytestmark = pytest.mark.e2e
BUDGET_KEY, RPM_KEY, STREAM_KEY = "budget-tenant-key", "rpm-tenant-key", "stream-budget-key"
PROMPT = "Tell me one fact about the tides in the north channel."
MAX_TOKENS = 16  # below the simulator's shortest answer: every answer uses exactly this many
PER_REQUEST = prompt_tokens("gpt-4o-mini", [("user", PROMPT)]) + MAX_TOKENS
DAILY_LIMIT = 30 * PER_REQUEST + PER_REQUEST // 2  # room for 30 requests, not 31
TENANTS = json.dumps([
    {"tenant": "budgeted", "keys": [{"id": "b1", "sha256": hash_api_key(BUDGET_KEY)}],
     "limits": {"daily_tokens": DAILY_LIMIT, "cache_ttl_s": 0}},
    {"tenant": "budgeted-streams", "keys": [{"id": "s1", "sha256": hash_api_key(STREAM_KEY)}],
     "limits": {"daily_tokens": DAILY_LIMIT, "cache_ttl_s": 0}},
    {"tenant": "rpm-limited", "keys": [{"id": "r1", "sha256": hash_api_key(RPM_KEY)}],
     "limits": {"rpm": 60, "cache_ttl_s": 0}},
])


@pytest.fixture(scope="module")
def four_apps(stack: LocalStack) -> Iterator[list[str]]:
    urls = []
    for i in range(4):
        port = free_port()
        stack.start_app(extra_env={"TENANTS": TENANTS, **NO_JOBS}, name=f"instance-{i}", port=port)
        urls.append(f"http://127.0.0.1:{port}")
    yield urls
    for i in range(4):
        stack.stop(f"instance-{i}")


async def burst(urls: list[str], key: str, count: int, *, stream: bool = False) -> Counter[int]:
    """`count` concurrent chat requests (or OpenAI-compatible streams), spread round-robin over the instances."""
    async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=count)) as client:
        async def one(i: int) -> int:
            body = {"messages": [{"role": "user", "content": PROMPT}], "max_tokens": MAX_TOKENS}
            path = "/api/v1/chat/completions" if stream else "/api/v1/chat"
            async with client.stream("POST", f"{urls[i % len(urls)]}{path}", headers={"x-api-key": key},
                                     json={**body, "stream": True} if stream else body) as response:
                text = (await response.aread()).decode()
            if stream and response.status_code == 200:
                assert text.rstrip().endswith("data: [DONE]"), "every admitted stream completes"
            if response.status_code == 429:
                assert int(response.headers["retry-after"]) >= 1
                media = "application/json" if stream else "application/problem+json"  # OpenAI's error shape
                assert response.headers["content-type"].startswith(media)
            return response.status_code

        return Counter(await asyncio.gather(*(one(i) for i in range(count))))


def sim_stats(stack: LocalStack) -> tuple[int, int]:
    totals = [httpx.get(f"{stack.sim_url(r)}/_sim/stats").json() for r in ("primary", "secondary")]
    return sum(t["requests"] for t in totals), sum(t["prompt_tokens"] + t["completion_tokens"] for t in totals)


def reset_sims(stack: LocalStack) -> None:
    for region in ("primary", "secondary"):
        httpx.delete(f"{stack.sim_url(region)}/_sim/faults")
        httpx.delete(f"{stack.sim_url(region)}/_sim/stats")


@pytest.mark.parametrize("stream", [False, True], ids=["native", "streamed"])
async def test_a_daily_budget_holds_across_four_instances(stack: LocalStack, four_apps: list[str],
                                                          stream: bool) -> None:
    key = STREAM_KEY if stream else BUDGET_KEY  # one tenant each, with the same daily limit
    reset_sims(stack)
    statuses = await burst(four_apps, key, 200, stream=stream)
    calls, billed = await asyncio.to_thread(sim_stats, stack)
    async with httpx.AsyncClient() as client:
        report = await client.get(f"{four_apps[0]}/api/v1/usage", headers={"x-api-key": key})
    usage = report.json()["daily"]
    print(f"stream={stream} statuses={dict(statuses)} model_calls={calls} billed={billed} limit={DAILY_LIMIT} "
          f"usage={usage}")
    assert set(statuses) <= {200, 429}
    assert billed <= DAILY_LIMIT, "the models never billed more than the budget"
    assert usage["tokens_used"] == billed, "what /usage reports is exactly what the models billed"
    assert usage["tokens_reserved"] == 0, "no reservation is left hanging"
    assert statuses[200] >= 25, "reservations are not so pessimistic that the budget starves"
    assert calls == statuses[200]


async def test_rpm_holds_across_four_instances(stack: LocalStack, four_apps: list[str]) -> None:
    # The limit is per minute window: start a burst well inside one, so it cannot straddle two.
    into_minute = time.time() % 60
    if into_minute > 40:
        await asyncio.sleep(60.5 - into_minute)
    statuses = await burst(four_apps, RPM_KEY, 150)
    print(f"statuses={dict(statuses)}")
    assert statuses[200] == 60 and statuses[429] == 90
