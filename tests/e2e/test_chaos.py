"""Chaos against the running app and both simulator regions, through /_sim/faults (issue #3)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import openai
import pytest

from bench import resilience
from tests.conftest import ADMIN_KEY, DEV_KEY, TEST_TENANTS
from tests.e2e.conftest import assert_problem
from tools.localenv import LocalStack

pytestmark = pytest.mark.e2e
DEADLINE_S = 5.0


@pytest.fixture(scope="module")
def chaos_app(stack: LocalStack) -> Iterator[str]:
    env = {"TENANTS": TEST_TENANTS, "REQUEST_DEADLINE_S": str(DEADLINE_S), "LOCAL_CONTROL": "true"}
    with stack.app_on_free_port("chaos-app", env) as url:
        yield url


@pytest.fixture
def fresh_app(chaos_app: str) -> str:
    """The module's app with its breakers and retry budget as after a deploy (docs/breakers.md, "A
    local reset"): one process for every scenario instead of one each."""
    reset = httpx.post(f"{chaos_app}/api/_local/reset", headers={"x-api-key": ADMIN_KEY}, timeout=30)
    assert reset.status_code == 204, reset.text
    return chaos_app


def sims(stack: LocalStack) -> dict[str, str]:
    return {r: stack.sim_url(r) for r in ("primary", "secondary")}


async def test_primary_down_every_request_succeeds_via_secondary(stack: LocalStack, fresh_app: str) -> None:
    outcome = await resilience.run(resilience.SCENARIOS[0], fresh_app, sims(stack), DEV_KEY)
    print(outcome.summary())
    assert outcome.statuses[200] == outcome.requests == 1000
    # Calls that reach the failing primary at all (before and after its breaker opens) stay under 5%.
    assert outcome.model_calls["primary"] < 0.05 * outcome.requests
    assert outcome.model_calls["secondary"] == outcome.requests


async def test_primary_throttling_30_percent_costs_at_most_1_4_calls_per_request(stack: LocalStack,
                                                                                  fresh_app: str) -> None:
    outcome = await resilience.run(resilience.SCENARIOS[1], fresh_app, sims(stack), DEV_KEY)
    print(outcome.summary())
    assert outcome.statuses[200] == outcome.requests == 1000
    assert outcome.calls_per_request <= 1.4


async def test_both_regions_down_every_request_gets_a_503_within_the_deadline(stack: LocalStack,
                                                                               fresh_app: str) -> None:
    outcome = await resilience.run(resilience.SCENARIOS[2], fresh_app, sims(stack), DEV_KEY)
    print(outcome.summary())
    assert outcome.statuses == {503: outcome.requests}
    assert outcome.problem_json == outcome.requests and outcome.retry_after_missing == 0
    assert max(outcome.latencies) <= DEADLINE_S + 1


def test_a_stream_dropped_before_its_first_token_fails_over_and_completes(stack: LocalStack,
                                                                          fresh_app: str) -> None:
    with httpx.Client() as control:
        control.post(f"{stack.sim_url('primary')}/_sim/faults",
                     json={"status": "drop_stream", "rate": 1.0, "after_tokens": 0})
        try:
            client = openai.OpenAI(base_url=f"{fresh_app}/api/v1", api_key=DEV_KEY, max_retries=0)
            chunks = list(client.chat.completions.create(
                model="gpt-4o-mini", stream=True, max_tokens=12, stream_options={"include_usage": True},
                messages=[{"role": "user", "content": "Name the tide times please"}]))
        finally:
            control.delete(f"{stack.sim_url('primary')}/_sim/faults")
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text and chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 12
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["length"]


def open_primary_breaker(stack: LocalStack, app: str) -> None:
    """Eight native chats while the primary region answers 503: its breaker opens."""
    with httpx.Client() as control:
        control.post(f"{stack.sim_url('primary')}/_sim/faults", json={"status": 503, "rate": 1.0})
        try:
            for _ in range(8):
                httpx.post(f"{app}/api/v1/chat", headers={"x-api-key": DEV_KEY}, timeout=30,
                           json={"messages": [{"role": "user", "content": "x"}], "max_tokens": 3})
        finally:
            control.delete(f"{stack.sim_url('primary')}/_sim/faults")


def test_ready_reports_breaker_states(stack: LocalStack, fresh_app: str) -> None:
    open_primary_breaker(stack, fresh_app)
    body = httpx.get(f"{fresh_app}/api/ready", headers={"x-api-key": ADMIN_KEY}, timeout=30).json()
    assert body["status"] == "ready", json.dumps(body)
    assert body["checks"]["breaker:primary"] == "open" and body["checks"]["model:primary"] == "circuit_open"
    assert body["checks"]["breaker:secondary"] == "closed"


def test_a_model_outage_is_a_503_with_retry_after_and_no_provider_text(fresh_app: str,
                                                                       faults: dict[str, httpx.Client]) -> None:
    # Not the session's app: the outage parks every region's embedding endpoint too (the local
    # reset leaves the cache's embedder alone), which must not leak into its semantic-cache tests.
    for region in faults.values():
        region.post("/_sim/faults", json={"status": 500, "rate": 1.0})
    response = httpx.post(f"{fresh_app}/api/v1/chat", headers={"x-api-key": DEV_KEY}, timeout=30,
                          json={"messages": [{"role": "user", "content": "x"}]})
    assert_problem(response, 503)
    assert int(response.headers["retry-after"]) >= 1


@pytest.fixture
def short_deadline_app(stack: LocalStack) -> Iterator[str]:
    """A fresh app whose request deadline (1.5 s) is far below the endpoints' own timeout (MODEL_TIMEOUT_S)."""
    env = {"TENANTS": TEST_TENANTS, "REQUEST_DEADLINE_S": "1.5", "SEMANTIC_CACHE_MODE": "off"}
    with stack.app_on_free_port("deadline-app", env) as url:
        yield url


def test_slow_answers_past_the_callers_deadline_leave_both_breakers_closed(
        short_deadline_app: str, faults: dict[str, httpx.Client]) -> None:
    # Both regions answer, only slower than this caller's deadline: no evidence against either.
    # A stream whose first content has not come by the deadline is cut there (a 503 before any
    # byte); a whole answer is bounded by its own time limit instead (MODEL_TIMEOUT_S + its
    # max_tokens at the slowest pace: docs/accounting.md, "Time limits"), so it is answered.
    for region in faults.values():
        region.post("/_sim/faults", json={"latency_ms": 4000, "rate": 1.0}).raise_for_status()
    with httpx.Client(base_url=f"{short_deadline_app}/api", headers={"x-api-key": DEV_KEY}, timeout=30) as api:
        def slow_stream(i: int) -> httpx.Response:
            return api.post("/v1/chat/completions", headers={"cache-control": "no-store"},
                            json={"model": "gpt-4o-mini", "stream": True, "max_tokens": 3,
                                  "messages": [{"role": "user", "content": f"slow question {i}"}]})

        # At once, as a burst of callers would: twelve outcomes (more than BREAKER_MIN_CALLS and
        # BREAKER_CONSECUTIVE_FAILURES) in one deadline instead of twelve deadlines one after another.
        with ThreadPoolExecutor(12) as pool:
            streams = list(pool.map(slow_stream, range(12)))
        whole = api.post("/v1/chat", headers={"cache-control": "no-store"},
                         json={"messages": [{"role": "user", "content": "slow but whole"}], "max_tokens": 3})
        for region in faults.values():
            region.delete("/_sim/faults")
        checks = api.get("/ready", headers={"x-api-key": ADMIN_KEY}).json()["checks"]
        answered = api.post("/v1/chat", json={"messages": [{"role": "user", "content": "fast now"}], "max_tokens": 3})
    assert [r.status_code for r in streams] == [503] * 12, [r.text for r in streams if r.status_code != 503]
    assert checks["breaker:primary"] == "closed" and checks["breaker:secondary"] == "closed", checks
    assert whole.status_code == 200, "a whole answer within its own time limit is not cut at the deadline"
    assert answered.status_code == 200 and answered.json()["model"], answered.text


def test_the_local_reset_closes_open_breakers_and_answers_only_an_admin(stack: LocalStack, fresh_app: str,
                                                                        app_url: str) -> None:
    open_primary_breaker(stack, fresh_app)

    def breaker() -> str:
        ready = httpx.get(f"{fresh_app}/api/ready", headers={"x-api-key": ADMIN_KEY}, timeout=30).json()
        return str(ready["checks"]["breaker:primary"])

    assert breaker() == "open"
    refused = httpx.post(f"{fresh_app}/api/_local/reset", headers={"x-api-key": DEV_KEY}, timeout=30)
    assert_problem(refused, 403)
    assert breaker() == "open", "a caller who is not an admin resets nothing"
    reset = httpx.post(f"{fresh_app}/api/_local/reset", headers={"x-api-key": ADMIN_KEY}, timeout=30)
    assert reset.status_code == 204 and breaker() == "closed"
    # Without LOCAL_CONTROL (the session's app) the route does not exist.
    assert_problem(httpx.post(f"{app_url}/api/_local/reset", headers={"x-api-key": ADMIN_KEY}, timeout=30), 404)
