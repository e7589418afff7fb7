"""Issue 10: models.list(), embeddings on both routes, limits from the model and the tenant, and a
cache keyed on every field that changes the answer — through the real openai SDK."""

from __future__ import annotations

import base64
import struct
import uuid
from typing import Any

import httpx
import openai
import pytest

from tests.conftest import LIMITED_KEY
from tests.e2e.conftest import assert_openai_error
from tests.e2e.oai_stack import CACHED_KEY, SMALL_KEY, WEATHER, Ledger, simulator_billed, tokens_used

pytestmark = pytest.mark.e2e
MODEL = "gpt-4o-mini"


def test_models_list_on_both_clients(fid_oai: openai.OpenAI, fid_azure: openai.AzureOpenAI, app_url: str) -> None:
    # The two chat tiers of the local settings (docs/routing.md), then the embedding deployment and
    # its model's name (both address it).
    listed = ["gpt-4o", "gpt-4o-mini", "embeddings", "text-embedding-3-small"]
    assert [m.id for m in fid_oai.models.list()] == listed
    assert [m.id for m in fid_azure.models.list()] == listed
    limited = openai.OpenAI(base_url=f"{app_url}/api/v1", api_key=LIMITED_KEY, max_retries=0)
    assert all(m.object == "model" for m in limited.models.list())


def test_embeddings_float_and_base64_on_both_routes(fid_oai: openai.OpenAI, fid_azure: openai.AzureOpenAI,
                                                    oai_app: str, ledger: Ledger) -> None:
    floats = fid_oai.embeddings.create(model="embeddings", input=["the north pier", "tide tables"],
                                       encoding_format="float")
    assert len(floats.data) == 2 and floats.usage.prompt_tokens > 0
    default = fid_oai.embeddings.create(model="embeddings", input="the north pier")  # the SDK asks for base64
    assert default.data[0].embedding == pytest.approx(floats.data[0].embedding, abs=1e-6)
    azure = fid_azure.embeddings.create(model="embeddings", input="the north pier")
    assert azure.data[0].embedding == pytest.approx(floats.data[0].embedding, abs=1e-6)
    raw = httpx.post(f"{oai_app}/api/v1/embeddings", headers={"api-key": ledger.key}, timeout=30,
                     json={"model": "embeddings", "input": [1000, 2000, 3000], "encoding_format": "base64"})
    vector = base64.b64decode(raw.json()["data"][0]["embedding"])
    assert raw.status_code == 200 and len(vector) % 4 == 0
    assert all(isinstance(x, float) for x in struct.unpack(f"<{len(vector) // 4}f", vector))


def test_embeddings_errors_are_openai_errors(oai_app: str, ledger: Ledger, fid_oai: openai.OpenAI) -> None:
    fid_oai.embeddings.create(model="embeddings", input="one billed call, so the ledger has something to compare")
    with httpx.Client(base_url=f"{oai_app}/api", headers={"api-key": ledger.key}, timeout=30) as api:
        missing = assert_openai_error(api.post("/v1/embeddings", json={"model": "embeddings"}), 400, "invalid_value")
        assert missing["param"] == "input" and "input" in missing["message"]
        assert_openai_error(api.post("/v1/embeddings", json={"model": "nope", "input": "x"}), 404, "model_not_found")
        assert_openai_error(api.post("/openai/deployments/nope/embeddings", json={"input": "x"}), 404,
                            "model_not_found")
        # The provider refuses (tool_choice without tools): its own message and field reach the client.
        refused = api.post("/v1/chat/completions", json={"model": MODEL, "tool_choice": "required",
                                                         "messages": [{"role": "user", "content": "hi"}]})
        error = assert_openai_error(refused, 400, None)
        assert error["param"] == "tool_choice" and "tools" in error["message"]
        assert refused.headers["x-upstream-request-id"]


def test_limits_come_from_the_model_and_the_tenant(oai_app: str, ledger: Ledger, fid_oai: openai.OpenAI) -> None:
    # The model's whole max_output_tokens is accepted; streamed, since 16,384 tokens at the default
    # slowest pace (40 a second) cannot be a whole answer within 220 s (docs/accounting.md, "Time limits").
    for _ in fid_oai.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}],
                                             max_tokens=16_384, stream=True):
        pass
    with pytest.raises(openai.BadRequestError) as whole:
        fid_oai.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}], max_tokens=16_384)
    assert whole.value.param == "max_tokens" and "stream: true" in whole.value.message
    with httpx.Client(base_url=f"{oai_app}/api/v1", headers={"api-key": ledger.key}, timeout=30) as api:
        over = api.post("/chat/completions", json={"model": MODEL, "max_tokens": 16_385,
                                                   "messages": [{"role": "user", "content": "hi"}]})
        assert "max_output_tokens (16384)" in assert_openai_error(over, 400, None)["message"]
        huge = " ".join(["harbour"] * 130_000)
        too_long = api.post("/chat/completions", json={"model": MODEL, "messages": [{"role": "user", "content": huge}]})
        assert "context_window of 128000" in assert_openai_error(too_long, 400, "context_length_exceeded")["message"]


def test_a_tenant_max_request_tokens_refuses_what_could_exceed_it(oai_app: str, stack: Any) -> None:
    book = Ledger(stack, oai_app, SMALL_KEY)
    small = httpx.post(f"{oai_app}/api/v1/chat/completions", headers={"api-key": SMALL_KEY}, timeout=30,
                       json={"model": MODEL, "messages": [{"role": "user", "content": "hi"}]})
    assert "max_request_tokens of 2000" in assert_openai_error(small, 400, None)["message"]
    fits = httpx.post(f"{oai_app}/api/v1/chat/completions", headers={"api-key": SMALL_KEY}, timeout=30,
                      json={"model": MODEL, "max_tokens": 500, "messages": [{"role": "user", "content": "hi"}]})
    assert fits.status_code == 200
    billed, charged = book.deltas()
    assert charged == billed > 0


def _create(client: openai.OpenAI, **body: Any) -> tuple[str, Any]:
    raw = client.chat.completions.with_raw_response.create(model=MODEL, **body)
    return raw.headers["x-cache"], raw.parse()


def test_the_exact_cache_covers_every_field_that_changes_the_answer(oai_app: str, stack: Any) -> None:
    client = openai.OpenAI(base_url=f"{oai_app}/api/v1", api_key=CACHED_KEY, max_retries=0)
    ask: dict[str, Any] = {"messages": [{"role": "user", "content": f"weather in Oslo {uuid.uuid4()}"}],
                           "tools": [WEATHER]}
    state, first = _create(client, **ask)
    assert state == "MISS" and first.choices[0].finish_reason == "tool_calls"
    billed, used = simulator_billed(stack), tokens_used(oai_app, CACHED_KEY)
    state, again = _create(client, **ask, user="someone-else", metadata={"trace": "1"})
    assert state == "HIT", "a tool-call answer is cached; who asks does not change the answer"
    assert again.choices[0].message.tool_calls == first.choices[0].message.tool_calls
    assert again.id != first.id
    assert (simulator_billed(stack), tokens_used(oai_app, CACHED_KEY)) == (billed, used), "a hit costs nothing"
    for change in ({"tool_choice": "none"}, {"parallel_tool_calls": False}, {"seed": 3}, {"n": 2},
                   {"response_format": {"type": "text"}}, {"logprobs": True}, {"temperature": 0.2}):
        assert _create(client, **ask, **change)[0] == "MISS", change
    streamed = client.chat.completions.create(model=MODEL, stream=True, **ask)
    names = [d.function.name for c in streamed if c.choices for d in c.choices[0].delta.tool_calls or []
             if d.function and d.function.name]
    assert names == ["get_weather"], "a cached tool call replays as a stream"


def test_the_semantic_cache_keys_on_sampling_parameters(oai_app: str) -> None:
    client = openai.OpenAI(base_url=f"{oai_app}/api/v1", api_key=CACHED_KEY, max_retries=0)
    text = f"Describe the harbour master's logbook entry number {uuid.uuid4().int % 10_000} in detail"
    assert _create(client, messages=[{"role": "user", "content": text}], stop=["zz"])[0] == "MISS"
    state, _ = _create(client, messages=[{"role": "user", "content": text + " please"}], stop=["qq"])
    assert state == "MISS", "other stop sequences never share an answer"
    state, _ = _create(client, messages=[{"role": "user", "content": text + " please"}], stop=["zz"])
    assert state == "HIT", "the same parameters and a near-identical prompt do"


def test_a_failing_region_fails_over_unseen_and_its_refusals_cost_nothing(
        fid_oai: openai.OpenAI, faults: dict[str, httpx.Client], ledger: Ledger) -> None:
    faults["primary"].post("/_sim/faults", json={"status": 503, "rate": 1.0})
    result = fid_oai.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "weather in Oslo"}],
                                             tools=[WEATHER])
    assert result.choices[0].finish_reason == "tool_calls" and result.system_fingerprint == "sim-secondary"
    chunks = list(fid_oai.chat.completions.create(model=MODEL, stream=True, max_tokens=10,
                                                  messages=[{"role": "user", "content": "describe the pier"}]))
    assert chunks[-1].choices[0].finish_reason in ("stop", "length")
    assert faults["primary"].get("/_sim/stats").json()["by_status"].get("503", 0) >= 2
