"""Long answers and hostile requests (issue 19): time limits that follow the request, charges never
below the bill nor billed twice blindly, breakers that one tenant cannot open for the others,
cut tool-call streams charged their framing, and answers bounded in size."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import openai
import pytest

from bench.measure import rss_mb
from shared.core.settings import hash_api_key
from tests.conftest import ADMIN_KEY
from tests.e2e.oai_stack import FID_KEY, TENANTS, WEATHER, Ledger, simulator_billed
from tools.localenv import LocalStack

pytestmark = pytest.mark.e2e

ATTACKER_KEY = "long-attacker-key"
BYSTANDER_KEY = "long-bystander-key"
APP = "long-answers"
MODEL_TIMEOUT_S = 2.0
DEADLINE_S = 5.0
PACE = 1000.0  # the endpoints' slowest_tokens_per_s here: max_tokens 400 -> a 2.4 s limit
SLOW_MS_PER_TOKEN = 12.5  # the simulators at 80 tokens a second
# The honest long answer, a fifth of the defaults' scale: 400 tokens at 80 tokens a second take 5 s,
# past a 4 s MODEL_TIMEOUT_S (the defaults: 2,000 tokens, 25 s, past 20 s) and within its own limit
# of 4 + 400 / 40 = 14 s (70 s) and a 6 s deadline (30 s).
HONEST_TOKENS = 400
HONEST_SETTINGS = {"MODEL_TIMEOUT_S": "4", "REQUEST_DEADLINE_S": "6"}


def _tenants() -> str:
    def tenant(name: str, key: str, **limits: Any) -> dict[str, Any]:
        return {"tenant": name, "keys": [{"id": name, "sha256": hash_api_key(key)}],
                "limits": {"cache_ttl_s": 0, **limits}}

    return json.dumps([tenant("long-atk", ATTACKER_KEY), tenant("long-bystander", BYSTANDER_KEY),
                       {"tenant": "ops", "keys": [{"id": "ops-1", "sha256": hash_api_key(ADMIN_KEY)}],
                        "roles": ["admin"]}])


@pytest.fixture(scope="module")
def long_app(stack: LocalStack) -> Iterator[str]:
    """Endpoints taken to be healthy down to 1,000 tokens a second, 2 s before the first byte and
    a 5 s request deadline: the simulators' 80 tokens a second then outgrow a call's own limit."""
    endpoints = [{**e, "slowest_tokens_per_s": PACE} for e in json.loads(stack.settings["AI_ENDPOINTS"])]
    env = {"TENANTS": _tenants(), "AI_ENDPOINTS": json.dumps(endpoints), "MODEL_TIMEOUT_S": str(MODEL_TIMEOUT_S),
           "REQUEST_DEADLINE_S": str(DEADLINE_S), "SEMANTIC_CACHE_MODE": "off"}
    with stack.app_on_free_port(APP, env) as url:
        yield url


@pytest.fixture(scope="module")
def honest_app(stack: LocalStack) -> Iterator[str]:
    """The OpenAI-compatible tenants on an app with the default pace and a fifth of the default times."""
    with stack.app_on_free_port("long-honest", {"TENANTS": TENANTS, **HONEST_SETTINGS}) as url:
        yield url


@pytest.fixture
def sims(stack: LocalStack) -> Iterator[dict[str, httpx.Client]]:
    """Both regions' control surfaces, their pace and faults back to the start's afterwards."""
    clients = {r: httpx.Client(base_url=stack.sim_url(r), timeout=10) for r in ("primary", "secondary")}
    for client in clients.values():
        client.delete("/_sim/faults").raise_for_status()
    yield clients
    for client in clients.values():
        client.delete("/_sim/faults")
        client.delete("/_sim/pace")
        client.close()


def slow(sims: dict[str, httpx.Client]) -> None:
    for client in sims.values():
        client.post("/_sim/pace", json={"ms_per_token": SLOW_MS_PER_TOKEN}).raise_for_status()


def items_schema(items: int) -> dict[str, Any]:
    """A structured output the simulator fills with `items` strings: a long answer on demand."""
    return {"type": "json_schema", "json_schema": {"name": "inventory", "strict": True, "schema": {
        "type": "object", "additionalProperties": False, "required": ["items"],
        "properties": {"items": {"type": "array", "minItems": items, "items": {"type": "string"}}}}}}


def region_requests(sims: dict[str, httpx.Client]) -> dict[str, int]:
    return {r: int(c.get("/_sim/stats").json()["requests"]) for r, c in sims.items()}


def settled(app: str, key: str) -> int:
    """The tenant's tokens used, once nothing it reserved is still held."""
    for _ in range(100):
        day = httpx.get(f"{app}/api/v1/usage", headers={"x-api-key": key}, timeout=10).json()["daily"]
        if day["tokens_reserved"] == 0:
            return int(day["tokens_used"])
        httpx.get(f"{app}/api/health")  # a beat: the settlement is one Cosmos write away
    raise AssertionError("the reservation was never settled")


def wait_billed(stack: LocalStack, before: int, *, at_least: int) -> int:
    """What the simulators billed since `before`, once a cut call has finished there too."""
    for _ in range(200):
        billed = simulator_billed(stack) - before
        if billed >= at_least:
            return billed
        httpx.get(f"{stack.sim_url('primary')}/_sim/stats", timeout=5)
    return simulator_billed(stack) - before


def test_a_long_answer_is_refused_up_front_when_it_cannot_fit_the_front_ends_wait(
        stack: LocalStack, oai_app: str, sims: dict[str, httpx.Client]) -> None:
    """The attack of finding 1: 4 x 12,000 tokens at 40 tokens a second cannot be a whole answer
    within 230 s; it is a 400 naming max_tokens before anything is reserved or called."""
    before = simulator_billed(stack)
    attack = {"model": "gpt-4o-mini", "n": 4, "max_tokens": 12000, "response_format": items_schema(3000),
              "messages": [{"role": "user", "content": "List every item in the warehouse."}]}
    response = httpx.post(f"{oai_app}/api/v1/chat/completions", headers={"api-key": FID_KEY}, json=attack, timeout=30)
    assert response.status_code == 400, response.text
    assert "max_tokens" in response.text and "stream" in response.text
    assert simulator_billed(stack) == before, "nothing reached a model"


def test_an_honest_long_answer_at_80_tokens_a_second_is_answered_and_charged_exactly(
        stack: LocalStack, honest_app: str, sims: dict[str, httpx.Client]) -> None:
    """400 tokens at 80 tokens a second take 5 s, past the 4 s read timeout (MODEL_TIMEOUT_S) that
    used to cut it: answered whole, and the same streamed, each charged what the simulator billed."""
    slow(sims)
    ledger = Ledger(stack, honest_app, FID_KEY)
    ask: dict[str, Any] = {"model": "gpt-4o-mini", "max_tokens": HONEST_TOKENS,
                           "response_format": items_schema(HONEST_TOKENS),
                           "messages": [{"role": "user", "content": "List the inventory of the north warehouse."}]}

    def whole() -> tuple[str | None, int]:
        with openai.OpenAI(base_url=f"{honest_app}/api/v1", api_key=FID_KEY, max_retries=0, timeout=120) as c:
            answer = c.chat.completions.create(**ask)
            assert answer.usage is not None
            return answer.choices[0].finish_reason, answer.usage.completion_tokens

    def streamed() -> tuple[str | None, int]:
        with openai.OpenAI(base_url=f"{honest_app}/api/v1", api_key=FID_KEY, max_retries=0, timeout=120) as c:
            finish, completion = None, 0
            for chunk in c.chat.completions.create(**ask, stream=True, stream_options={"include_usage": True}):
                finish = next((ch.finish_reason for ch in chunk.choices if ch.finish_reason), finish)
                completion = chunk.usage.completion_tokens if chunk.usage else completion
            return finish, completion

    with ThreadPoolExecutor(2) as pool:
        results = [f.result() for f in (pool.submit(whole), pool.submit(streamed))]
    billed, charged = ledger.deltas()
    print(f"long answers (whole, streamed): {results}; billed {billed}, charged {charged}")
    assert results == [("length", HONEST_TOKENS), ("length", HONEST_TOKENS)]
    assert billed > 0 and charged == billed, f"charged {charged} tokens, the simulators billed {billed}"


def test_a_call_past_its_own_time_limit_is_charged_its_worst_case_and_not_billed_twice(
        stack: LocalStack, long_app: str, sims: dict[str, httpx.Client]) -> None:
    """Finding 1: a whole answer that outgrows its own limit (2 + 400 / 1,000 s) is cut, charged
    prompt + max_tokens (the provider finishes and bills it) and not sent to the other region."""
    slow(sims)
    used0, billed0, calls0 = settled(long_app, ATTACKER_KEY), simulator_billed(stack), region_requests(sims)
    response = httpx.post(f"{long_app}/api/v1/chat/completions", headers={"api-key": ATTACKER_KEY}, timeout=60,
                          json={"model": "gpt-4o-mini", "max_tokens": 400, "response_format": items_schema(400),
                                "messages": [{"role": "user", "content": "Count the crates."}]})
    assert response.status_code == 503, response.text
    calls = {r: n - calls0[r] for r, n in region_requests(sims).items()}
    charged = settled(long_app, ATTACKER_KEY) - used0
    billed = wait_billed(stack, billed0, at_least=400)
    print(f"cut at its own limit: billed {billed}, charged {charged}, calls per region {calls}")
    assert sum(calls.values()) == 1, f"one attempt, no failover: {calls}"
    assert billed <= charged <= billed + 50, "charged the worst case, never below the bill"


def test_one_tenant_cannot_open_the_breakers_for_the_others(
        long_app: str, sims: dict[str, httpx.Client]) -> None:
    """Finding 2: twelve calls that outgrow their own limits leave both breakers closed, and the
    next tenant's requests are answered."""
    slow(sims)

    def attack(i: int) -> int:
        return httpx.post(f"{long_app}/api/v1/chat/completions", headers={"api-key": ATTACKER_KEY}, timeout=60,
                          json={"model": "gpt-4o-mini", "max_tokens": 400, "response_format": items_schema(400),
                                "messages": [{"role": "user", "content": f"Count the crates in bay {i}."}]}).status_code

    with ThreadPoolExecutor(4) as pool:
        attacked = list(pool.map(attack, range(12)))
    checks = httpx.get(f"{long_app}/api/ready", headers={"x-api-key": ADMIN_KEY}, timeout=30).json()["checks"]
    others = [httpx.post(f"{long_app}/api/v1/chat/completions", headers={"api-key": BYSTANDER_KEY}, timeout=60,
                         json={"model": "gpt-4o-mini", "max_tokens": 50,
                               "messages": [{"role": "user", "content": f"hello {i}"}]}).status_code for i in range(9)]
    breakers = {k: v for k, v in checks.items() if k.startswith("breaker:")}
    print(f"attacker statuses {attacked}; breakers {breakers}; the other tenant's statuses {others}")
    assert set(attacked) == {503}
    assert set(breakers.values()) == {"closed"}, breakers
    assert others == [200] * 9


def test_a_tenants_long_calls_at_once_are_bounded(long_app: str, sims: dict[str, httpx.Client]) -> None:
    """Four calls that run past the request deadline (5 s; their own limits are 2 + 10,000 / 1,000
    s) fill the tenant's max_long_calls: a fifth that may run as long is a 429 at once, another
    tenant's is answered."""
    for client in sims.values():
        client.post("/_sim/faults", json={"latency_ms": 8000, "rate": 1.0}).raise_for_status()

    def ask(key: str, i: int) -> int:
        return httpx.post(f"{long_app}/api/v1/chat/completions", headers={"api-key": key}, timeout=60,
                          json={"model": "gpt-4o-mini", "max_tokens": 10000,
                                "messages": [{"role": "user", "content": f"tell me about tide {i}"}]}).status_code

    with ThreadPoolExecutor(6) as pool:
        running = [pool.submit(ask, ATTACKER_KEY, i) for i in range(4)]
        time.sleep(DEADLINE_S + 1)  # until the four have run past the deadline: long calls now
        fifth = ask(ATTACKER_KEY, 4)
        other = pool.submit(ask, BYSTANDER_KEY, 99)
        statuses = [f.result() for f in running]
    print(f"four long calls: {statuses}; a fifth: {fifth}; the other tenant's: {other.result()}")
    assert statuses == [200] * 4
    assert fifth == 429
    assert other.result() == 200


def test_a_stream_of_tool_calls_cut_upstream_is_charged_their_framing(
        stack: LocalStack, long_app: str, sims: dict[str, httpx.Client]) -> None:
    """Finding 4: 128 forced calls streamed, cut after three rounds: each begun call's framing is
    charged besides its name and arguments, never below what the provider billed."""
    for client in sims.values():
        client.post("/_sim/faults", json={"status": "drop_stream", "after_tokens": 3, "rate": 1.0}).raise_for_status()
    used0, billed0 = settled(long_app, ATTACKER_KEY), simulator_billed(stack)
    with openai.OpenAI(base_url=f"{long_app}/api/v1", api_key=ATTACKER_KEY, max_retries=0) as sdk, \
            pytest.raises(openai.APIError):
        for _ in sdk.chat.completions.create(
                model="gpt-4o-mini", n=128, max_tokens=100, tools=[WEATHER], stream=True,
                tool_choice={"type": "function", "function": {"name": "get_weather"}},
                messages=[{"role": "user", "content": "Weather in Lisbon, in c"}]):
            pass
    charged = settled(long_app, ATTACKER_KEY) - used0
    billed = simulator_billed(stack) - billed0
    print(f"cut stream of 128 tool calls: billed {billed}, charged {charged}")
    assert billed > 0, "the stream was cut after the provider had begun the calls"
    assert billed <= charged <= billed * 1.25


def test_an_answer_too_large_to_hold_is_refused_and_the_largest_allowed_keeps_memory_flat(
        stack: LocalStack, long_app: str) -> None:
    """Finding 6: n=128 with 20 logprobs a token is a 400 naming the fields; the largest answer
    allowed (128 x 97 x 21 tokens) grows the app process by less than 20 MB a request."""
    headers = {"api-key": ATTACKER_KEY}
    ask = {"model": "gpt-4o-mini", "n": 128, "logprobs": True, "top_logprobs": 20,
           "messages": [{"role": "user", "content": "Describe the harbour at dawn."}]}
    refused = httpx.post(f"{long_app}/api/v1/chat/completions", headers=headers, json=ask, timeout=60)
    assert refused.status_code == 400, refused.text
    assert all(field in refused.text for field in ("n", "max_tokens", "top_logprobs"))
    pid = stack.procs[APP].pid
    largest = {**ask, "max_tokens": 97}
    httpx.post(f"{long_app}/api/v1/chat/completions", headers=headers, json=largest, timeout=60).raise_for_status()
    start = rss_mb(pid)
    for _ in range(5):
        httpx.post(f"{long_app}/api/v1/chat/completions", headers=headers, json=largest,
                   timeout=60).raise_for_status()
    growth = (rss_mb(pid) - start) / 5
    print(f"largest allowed answer (n=128, max_tokens=97, top_logprobs=20): RSS growth {growth:.2f} MB a request")
    assert growth < 20
