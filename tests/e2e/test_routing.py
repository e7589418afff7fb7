"""Model routing end to end (docs/routing.md): `model: "auto"` over the simulators' two chat tiers,
with the openai SDK, the native API and a job; what the response, the header, the audit record,
the request span and the savings metric say; the price charged; the cache per tier; a tier down."""

from __future__ import annotations

import json
import math
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from openai.types import CompletionUsage
from openai.types.chat import ChatCompletionUserMessageParam

from shared.core.settings import hash_api_key
from shared.observability import names as n
from shared.routing.scorer import score_chat
from shared.routing.second_opinion import MAX_TOKENS as JUDGE_MAX_TOKENS
from shared.routing.second_opinion import SEED as JUDGE_SEED
from shared.routing.second_opinion import judge_prompt, verdict
from tests.conftest import DEV_KEY, LIMITED_KEY, TEST_ROUTES, TEST_TENANTS
from tests.e2e import test_telemetry
from tests.e2e.conftest import assert_problem
from tests.e2e.test_jobs import wait_for as wait_for_job
from tests.e2e.test_telemetry import _audit, _props, _type, wait_for, wait_for_metrics
from tools.localenv import LocalStack
from tools.simulator.text import generate_answer
from tools.telemetry_sink import Sink, appinsights

pytestmark = pytest.mark.e2e
sink = test_telemetry.sink  # the ingestion server the app's telemetry goes to, one for this module
OWN_KEY, STRICT_KEY, JUDGED_KEY = "routing-own-key", "routing-strict-key", "routing-judged-key"
PRICES = {"gpt-4o-mini": (0.15, 0.6), "gpt-4o": (2.5, 10.0)}  # local.settings.example.json MODEL_PRICES
DEPLOYMENT = {"gpt-4o-mini": "chat", "gpt-4o": "chat-large"}  # its AI_ENDPOINTS: each tier's deployment
TIER_MODEL = {"simple": "gpt-4o-mini", "complex": "gpt-4o"}
SIMPLE = "Hi! Thanks a lot for your help yesterday."
COMPLEX = ("Write a Python function that parses a CSV of transactions, then compute the monthly totals per category, "
           "prove that the rounding error is bounded, and explain step by step the time complexity. Constraints: no "
           "pandas, must stream the file, must handle malformed rows, and return JSON. ```python\ndef parse(path):\n"
           "    pass\n```")
ASKS = {"simple": SIMPLE, "complex": COMPLEX}
# No cache lookup or store: the semantic cache's embedding would be charged too (docs/accounting.md),
# and here the charge must be the routed model's price for the answer alone.
UNCACHED = {"cache-control": "no-store"}


def _tenants() -> str:
    """The test tenants, one whose own route sends everything to its simple model, one that never
    falls back across tiers, one whose route asks gpt-4o-mini's second opinion on every score."""
    own = json.loads(TEST_ROUTES)
    everything_simple = {"auto": {**own["auto"], "threshold": 1.0}}
    no_fallback = {"auto": {**own["auto"], "fallback_across_tiers": False}}
    judged = {"auto": {**own["auto"], "second_opinion": {"model": "gpt-4o-mini", "band": [0.0, 1.0]}}}
    return json.dumps([*json.loads(TEST_TENANTS),
                       {"tenant": "routing-own", "keys": [{"id": "own-1", "sha256": hash_api_key(OWN_KEY)}],
                        "routes": everything_simple},
                       {"tenant": "routing-strict", "keys": [{"id": "strict-1", "sha256": hash_api_key(STRICT_KEY)}],
                        "routes": no_fallback},
                       {"tenant": "routing-judged", "keys": [{"id": "judged-1", "sha256": hash_api_key(JUDGED_KEY)}],
                        "routes": judged}])


@pytest.fixture(scope="module")
def routing_url(stack: LocalStack, sink: Sink) -> Iterator[str]:
    env = {**appinsights.app_settings(sink.url), "OTEL_BSP_SCHEDULE_DELAY": "200", "OTEL_BLRP_SCHEDULE_DELAY": "200",
           "OTEL_METRIC_EXPORT_INTERVAL": "1000", "OTEL_TRACES_SAMPLER": "always_on",
           "TENANTS": _tenants(), "ROUTES": TEST_ROUTES}
    with stack.app_on_free_port("routing", env, jobs=True) as url:
        yield url


def sdk(url: str, key: str = DEV_KEY) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/api/v1", api_key=key, max_retries=0, timeout=60)


@pytest.fixture
def native(routing_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"{routing_url}/api", headers={"x-api-key": DEV_KEY}, timeout=60) as c:
        yield c


def ask(kind: str) -> list[ChatCompletionUserMessageParam]:
    """A request of this kind, never asked before (so never in the cache)."""
    return [{"role": "user", "content": f"{ASKS[kind]} (ref {uuid.uuid4().hex[:8]})"}]


def charge(model: str, usage: CompletionUsage) -> float:
    """What the budget charges for this usage at `model`'s price (docs/accounting.md): micro-USD, rounded up."""
    per_in, per_out = PRICES[model]
    return round(math.ceil(usage.prompt_tokens * per_in + usage.completion_tokens * per_out) / 1_000_000, 6)


def agrees(sink: Sink, cid: str, header: str, answered: str, kind: str, *, fallback: bool = False) -> dict[str, Any]:
    """The header, the answer's model, the audit record and the request span all name the tier that ran."""
    model = TIER_MODEL[kind]
    assert header.startswith(f"auto -> {model} ({kind}, "), header
    assert ("fallback: simple tier unavailable" in header) is fallback, header
    assert answered == f"simulator-{DEPLOYMENT[model]}", "the provider's model of that tier's deployment"
    audit = _props(_audit(sink, cid))
    assert audit[n.ROUTING_ROUTE] == "auto" and audit[n.ROUTING_TIER] == kind
    assert audit[n.GEN_AI_REQUEST_MODEL] == model and audit[n.ROUTING_FALLBACK].lower() == str(fallback).lower()
    assert f"{float(audit[n.ROUTING_SCORE]):.2f}" in header
    span = wait_for(sink, "request span",
                    lambda e: _type(e) == "RequestData" and _props(e).get(n.CORRELATION_ID) == cid)
    assert _props(span[0])[n.ROUTING_TIER] == kind and _props(span[0])[n.ROUTING_ROUTE] == "auto"
    return audit


def test_the_requests_used_here_score_on_either_side_of_the_threshold() -> None:
    threshold = json.loads(TEST_ROUTES)["auto"]["threshold"]
    assert score_chat(ask("simple")).value < threshold <= score_chat(ask("complex")).value


@pytest.mark.parametrize("kind", ["simple", "complex"])
def test_auto_is_answered_by_each_tier_and_charged_that_tiers_price(routing_url: str, sink: Sink, kind: str) -> None:
    raw = sdk(routing_url).chat.completions.with_raw_response.create(model="auto", messages=ask(kind), max_tokens=60,
                                                                     extra_headers=UNCACHED)
    result = raw.parse()
    assert result.usage is not None
    audit = agrees(sink, raw.headers["x-correlation-id"], raw.headers["x-aigw-route"], result.model, kind)
    billed, charged = charge(TIER_MODEL[kind], result.usage), float(audit[n.COST_USD])
    print(f"{kind}: {result.usage.prompt_tokens}+{result.usage.completion_tokens} tokens on {TIER_MODEL[kind]}, "
          f"billed at its price {billed:.6f} USD, charged {charged:.6f} USD")
    assert charged == billed


@pytest.mark.parametrize("kind", ["simple", "complex"])
def test_auto_streamed_is_answered_by_each_tier(routing_url: str, sink: Sink, kind: str) -> None:
    raw = sdk(routing_url).chat.completions.with_raw_response.create(
        model="auto", messages=ask(kind), max_tokens=60, stream=True, stream_options={"include_usage": True},
        extra_headers=UNCACHED)
    chunks = list(raw.parse())
    usage = chunks[-1].usage
    assert usage is not None and {c.model for c in chunks if c.model} == {f"simulator-{DEPLOYMENT[TIER_MODEL[kind]]}"}
    audit = agrees(sink, raw.headers["x-correlation-id"], raw.headers["x-aigw-route"], chunks[-1].model, kind)
    print(f"{kind}, streamed: billed {charge(TIER_MODEL[kind], usage):.6f} USD, charged {audit[n.COST_USD]} USD")
    assert float(audit[n.COST_USD]) == charge(TIER_MODEL[kind], usage)


def test_a_cache_entry_of_one_tier_never_answers_the_other(routing_url: str) -> None:
    client, messages = sdk(routing_url), ask("complex")
    small = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=messages, max_tokens=400)
    assert small.headers["x-cache"] == "MISS" and small.parse().choices[0].finish_reason == "stop"
    stored(client, "gpt-4o-mini", messages)

    routed = client.chat.completions.with_raw_response.create(model="auto", messages=messages, max_tokens=400)
    assert routed.headers["x-cache"] == "MISS", "the small tier's entry for the same request was not served"
    assert routed.parse().model == "simulator-chat-large"
    again = stored(client, "auto", messages)
    assert again.parse().model == "simulator-chat-large", "the large tier's own entry"
    assert again.headers["x-aigw-route"] == routed.headers["x-aigw-route"]


def stored(client: openai.OpenAI, model: str, messages: list[ChatCompletionUserMessageParam]) -> Any:
    """The answer once the cache has it (the store runs after the response: polled, not timed)."""
    deadline = time.monotonic() + 30
    while True:
        raw = client.chat.completions.with_raw_response.create(model=model, messages=messages, max_tokens=400)
        if raw.headers["x-cache"] == "HIT" or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert raw.headers["x-cache"] == "HIT"
    return raw


def test_models_lists_the_routes_a_tenant_may_use(routing_url: str) -> None:
    assert "auto" in [m.id for m in sdk(routing_url).models.list()]
    limited = sdk(routing_url, LIMITED_KEY)  # allowed_models: gpt-4o-mini only
    assert "auto" not in [m.id for m in limited.models.list()]
    with pytest.raises(openai.PermissionDeniedError) as refused:
        limited.chat.completions.create(model="auto", messages=ask("simple"), max_tokens=5)
    assert "allowed_models" in str(refused.value)


def test_a_tenants_own_route_wins_over_the_apps(routing_url: str) -> None:
    raw = sdk(routing_url, OWN_KEY).chat.completions.with_raw_response.create(model="auto", messages=ask("complex"),
                                                                              max_tokens=20)
    assert raw.headers["x-aigw-route"].startswith("auto -> gpt-4o-mini (simple, "), "its threshold is 1.0"
    assert raw.parse().model == "simulator-chat"


@pytest.mark.parametrize("kind", ["simple", "complex"])
def test_native_chat_and_summarize_with_model_auto(native: httpx.Client, sink: Sink, kind: str) -> None:
    chat = native.post("/v1/chat", json={"model": "auto", "messages": ask(kind), "max_tokens": 40})
    assert chat.status_code == 200, chat.text
    agrees(sink, chat.headers["x-correlation-id"], chat.headers["x-aigw-route"], chat.json()["model"], kind)

    text = str(ask(kind)[0]["content"])
    summary = native.post("/v1/summarize", json={"model": "auto", "text": text, "max_words": 20})
    assert summary.status_code == 200, summary.text
    agrees(sink, summary.headers["x-correlation-id"], summary.headers["x-aigw-route"], summary.json()["model"], kind)


def test_a_job_with_model_auto_runs_on_the_routed_tier(native: httpx.Client) -> None:
    for kind, model in TIER_MODEL.items():
        job = native.post("/v1/jobs", json={"kind": "chat", "input": {"model": "auto", "messages": ask(kind),
                                                                        "max_tokens": 20}})
        assert job.status_code == 202, job.text
        done = wait_for_job(native, f"/v1/jobs/{job.json()['job_id']}")
        assert done["status"] == "succeeded", done
        assert done["result"]["model"] == f"simulator-{DEPLOYMENT[model]}"
    unknown = {"kind": "chat", "input": {"model": "no-such-route", "messages": ask("simple")}}
    failed = wait_for_job(native, f"/v1/jobs/{native.post('/v1/jobs', json=unknown).json()['job_id']}")
    assert failed["status"] == "failed"
    assert failed["error"] == "The model or deployment 'no-such-route' is not available here."


def test_a_native_request_for_an_unknown_or_barred_route_is_refused(native: httpx.Client) -> None:
    body = {"model": "no-such-route", "messages": ask("simple")}
    assert "no-such-route" in assert_problem(native.post("/v1/chat", json=body), 404)["detail"]
    barred = native.post("/v1/summarize", json={"model": "auto", "text": SIMPLE}, headers={"x-api-key": LIMITED_KEY})
    assert "allowed_models" in assert_problem(barred, 403)["detail"]


def judged_as(verdict_wanted: str, kind: str) -> list[ChatCompletionUserMessageParam]:
    """A request of this kind (by its score) that the simulator, asked for the second opinion as the
    gateway asks it (greedy, seeded: its answer depends on the prompt alone), answers with this verdict."""
    for _ in range(5000):
        messages = ask(kind)
        said = generate_answer(judge_prompt(messages), seed=f"request-{JUDGE_SEED}", max_tokens=JUDGE_MAX_TOKENS)
        if verdict(said.content) == verdict_wanted:
            return messages
    raise AssertionError(f"no {kind} request the simulator judges {verdict_wanted}")


@pytest.mark.parametrize(("kind", "judged"), [("complex", "simple"), ("simple", "complex")])
def test_a_second_opinion_picks_the_tier_and_is_charged_to_the_tenant(routing_url: str, sink: Sink, kind: str,
                                                                      judged: str) -> None:
    messages = judged_as(judged, kind)
    raw = sdk(routing_url, JUDGED_KEY).chat.completions.with_raw_response.create(
        model="auto", messages=messages, max_tokens=60, extra_headers=UNCACHED)
    result = raw.parse()
    assert result.usage is not None

    score = score_chat(messages).value
    model = TIER_MODEL[judged]
    assert raw.headers["x-aigw-route"] == f"auto -> {model} ({judged}, {score:.2f}; second opinion: {judged})"
    assert result.model == f"simulator-{DEPLOYMENT[model]}", "the judged tier answered, not the scored one"
    audit = _props(_audit(sink, raw.headers["x-correlation-id"]))
    assert audit[n.ROUTING_TIER] == judged and audit[n.ROUTING_SECOND_OPINION] == judged
    assert audit[n.GEN_AI_REQUEST_MODEL] == model
    # The record holds both calls: the judge's usage is what it holds beyond the answer's.
    judge = CompletionUsage(prompt_tokens=int(audit[n.GEN_AI_USAGE_INPUT_TOKENS]) - result.usage.prompt_tokens,
                            completion_tokens=int(audit[n.GEN_AI_USAGE_OUTPUT_TOKENS]) - result.usage.completion_tokens,
                            total_tokens=0)
    assert judge.prompt_tokens > 100 and 0 < judge.completion_tokens <= JUDGE_MAX_TOKENS
    billed = charge(model, result.usage) + charge("gpt-4o-mini", judge)
    print(f"{kind} judged {judged}: answer {result.usage.prompt_tokens}+{result.usage.completion_tokens} on {model}, "
          f"second opinion {judge.prompt_tokens}+{judge.completion_tokens} on gpt-4o-mini, billed {billed:.6f} USD, "
          f"charged {audit[n.COST_USD]} USD")
    assert float(audit[n.COST_USD]) == pytest.approx(billed, abs=1e-9)


def test_a_streamed_request_is_judged_before_its_stream_begins(routing_url: str, sink: Sink) -> None:
    messages = judged_as("simple", "complex")
    raw = sdk(routing_url, JUDGED_KEY).chat.completions.with_raw_response.create(
        model="auto", messages=messages, max_tokens=40, stream=True, stream_options={"include_usage": True},
        extra_headers=UNCACHED)
    chunks = list(raw.parse())
    assert raw.headers["x-aigw-route"].endswith("; second opinion: simple)")
    assert {c.model for c in chunks if c.model} == {"simulator-chat"}, "the judged tier streamed the answer"
    usage = chunks[-1].usage
    assert usage is not None
    audit = _props(_audit(sink, raw.headers["x-correlation-id"]))
    assert audit[n.ROUTING_SECOND_OPINION] == "simple"
    assert int(audit[n.GEN_AI_USAGE_INPUT_TOKENS]) > usage.prompt_tokens, "the second opinion's tokens count too"


def test_the_savings_metric_is_exported(routing_url: str, sink: Sink) -> None:
    sdk(routing_url).chat.completions.create(model="auto", messages=ask("simple"), max_tokens=20)
    wait_for_metrics(sink, {n.METRIC_ROUTING_SAVINGS})


# Last: they leave the small tier's breakers open for BREAKER_COOLDOWN_S.
def test_the_small_tier_down_goes_to_the_large_and_says_so(routing_url: str, sink: Sink,
                                                          faults: dict[str, httpx.Client]) -> None:
    for region in faults.values():
        region.post("/_sim/faults", json={"status": 503, "deployment": "chat"})
    client = sdk(routing_url)
    # First a stream, while the small tier's breakers are still closed: its attempts fail before any
    # content, and the stream is the large tier's, with the fallback in the header it was held for.
    streamed = client.chat.completions.with_raw_response.create(model="auto", messages=ask("simple"), max_tokens=20,
                                                                stream=True)
    assert "fallback: simple tier unavailable" in streamed.headers["x-aigw-route"]
    assert {c.model for c in streamed.parse() if c.model} == {"simulator-chat-large"}
    # Then whole answers: the first find the small tier failing (and fall back after its attempts),
    # the later ones find its breakers open (and go straight to the large tier).
    for _ in range(6):
        raw = client.chat.completions.with_raw_response.create(model="auto", messages=ask("simple"), max_tokens=20,
                                                               extra_headers=UNCACHED)
        result = raw.parse()
        assert result.usage is not None
        audit = agrees(sink, raw.headers["x-correlation-id"], raw.headers["x-aigw-route"], result.model, "complex",
                       fallback=True)
        assert float(audit[n.COST_USD]) == charge("gpt-4o", result.usage), "charged at the model that answered"

    strict = sdk(routing_url, STRICT_KEY)  # its route sets fallback_across_tiers: false
    with pytest.raises(openai.InternalServerError) as down:
        strict.chat.completions.create(model="auto", messages=ask("simple"), max_tokens=20)
    assert down.value.status_code == 503


def test_a_second_opinion_that_cannot_be_had_leaves_the_score_to_decide(routing_url: str, sink: Sink) -> None:
    """After the small tier went down (above): the judge, gpt-4o-mini, cannot answer, and the scored
    tier runs the request, which says nothing of a second opinion (up, it would have said simple)."""
    raw = sdk(routing_url, JUDGED_KEY).chat.completions.with_raw_response.create(
        model="auto", messages=judged_as("simple", "complex"), max_tokens=20, extra_headers=UNCACHED)
    assert raw.headers["x-aigw-route"].startswith("auto -> gpt-4o (complex, ")
    assert "second opinion" not in raw.headers["x-aigw-route"]
    assert raw.parse().model == "simulator-chat-large"
    audit = _props(_audit(sink, raw.headers["x-correlation-id"]))
    assert n.ROUTING_SECOND_OPINION not in audit and audit[n.ROUTING_TIER] == "complex"
