"""Every OpenAI-route answer and error, from the gateway and from the simulator, validated in
strict mode by the openai SDK's own models; cached answers replayed as the provider sends them."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest
from openai.types import CreateEmbeddingResponse, ErrorObject, Model
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from tests.e2e.oai_stack import CACHED_KEY, FID_KEY, Ledger
from tools.localenv import LocalStack

pytestmark = pytest.mark.e2e
CHAT = {"messages": [{"role": "user", "content": "Describe the north pier."}], "max_tokens": 12}
AZURE_CHAT = "/openai/deployments/chat/chat/completions?api-version=2024-10-21"
AZURE_FILTER_CHUNK = {"choices", "created", "id", "model", "object", "prompt_filter_results"}


def chunks(response: httpx.Response) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.text
    lines = [line.removeprefix("data: ") for line in response.text.splitlines() if line.startswith("data: ")]
    assert lines[-1] == "[DONE]"
    return [json.loads(line) for line in lines[:-1]]


def strict_chunks(events: list[dict[str, Any]]) -> None:
    """Each chunk is a ChatCompletionChunk, but Azure's filter-only first chunk (its `object` is
    "" and its choices empty, as Azure sends it: the SDK's model cannot take it strictly)."""
    for i, chunk in enumerate(events):
        if chunk.get("object") == "":
            assert i == 0 and chunk.keys() == AZURE_FILTER_CHUNK and chunk["choices"] == [], chunk
            continue
        ChatCompletionChunk.model_validate(chunk, strict=True)


def strict_error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    ErrorObject.model_validate(error, strict=True)
    assert error.keys() == {"message", "type", "param", "code"}
    return error


@pytest.mark.parametrize("path", ["/v1/chat/completions", AZURE_CHAT])
def test_the_gateway_s_answers_and_errors_pass_the_sdk_s_strict_models(oai_app: str, ledger: Ledger,
                                                                       path: str) -> None:
    with httpx.Client(base_url=f"{oai_app}/api", headers={"api-key": FID_KEY}, timeout=60) as api:
        answer = api.post(path, json={"model": "chat", **CHAT})
        ChatCompletion.model_validate(answer.json(), strict=True)
        assert answer.headers["x-request-id"] == answer.headers["x-correlation-id"]
        with_usage = chunks(api.post(path, json={"model": "chat", **CHAT, "stream": True,
                                                 "stream_options": {"include_usage": True}}))
        strict_chunks(with_usage)
        assert with_usage[-1]["choices"] == [] and with_usage[-1]["usage"]["completion_tokens"] > 0
        # Azure's filter-only chunk passes through unharmed (its id is ours); the usage chunk the
        # gateway asked for is removed again; the ledger fixture checks the charge.
        plain = chunks(api.post(path, json={"model": "chat", **CHAT, "stream": True}))
        strict_chunks(plain)
        assert plain[0].keys() == AZURE_FILTER_CHUNK and plain[0]["prompt_filter_results"]
        assert plain[0]["id"] == plain[1]["id"] and not any("usage" in c for c in plain)
        embedded = api.post("/v1/embeddings", json={"model": "embeddings", "input": ["pier", "tide"]})
        CreateEmbeddingResponse.model_validate(embedded.json(), strict=True)
        for model in api.get("/v1/models").json()["data"]:
            Model.model_validate(model, strict=True)
        strict_error(api.post(path, json={"model": "chat", "messages": "no"}), 400)
        strict_error(api.post(path, json={"model": "chat", **CHAT, "top_logprobs": 2}), 400)  # the provider's
        strict_error(api.post("/v1/chat/completions", json={"model": "nope", **CHAT}), 404)
        strict_error(api.post(path, json={"model": "chat", **CHAT}, headers={"api-key": "wrong"}), 401)
        wrong_method = api.get("/v1/chat/completions")
        assert strict_error(wrong_method, 405)["code"] == "method_not_allowed"
        assert wrong_method.headers["allow"] == "POST"


def test_the_simulator_s_answers_pass_the_sdk_s_strict_models_and_its_errors_are_azure_s(stack: LocalStack) -> None:
    with httpx.Client(base_url=stack.sim_url("primary"), headers={"api-key": "k"}, timeout=60) as sim:
        for path in ("/v1/chat/completions", AZURE_CHAT):
            answer = sim.post(path, json={"model": "m", **CHAT})
            ChatCompletion.model_validate(answer.json(), strict=True)
            assert answer.headers["x-request-id"] and answer.headers["apim-request-id"]
            assert int(answer.headers["x-ratelimit-remaining-requests"]) >= 0
            assert int(answer.headers["x-ratelimit-remaining-tokens"]) >= 0
            events = chunks(sim.post(path, json={"model": "m", **CHAT, "stream": True}))
            strict_chunks(events)
            strict_error(sim.post(path, json={"model": "m", **CHAT, "top_logprobs": 2}), 400)
        azure = sim.post(AZURE_CHAT, json=CHAT).json()
        assert "prompt_filter_results" in azure and "content_filter_results" in azure["choices"][0]
        CreateEmbeddingResponse.model_validate(sim.post("/v1/embeddings", json={"model": "e", "input": "x"}).json(),
                                               strict=True)
        denied = httpx.post(f"{stack.sim_url('primary')}{AZURE_CHAT}", json=CHAT, timeout=30)
        assert denied.status_code == 401 and denied.json()["error"].keys() == {"code", "message"}  # no param: null
        strict_error(httpx.post(f"{stack.sim_url('primary')}/v1/chat/completions", json=CHAT, timeout=30), 401)


def test_cached_answers_replay_as_fresh_ones(oai_app: str) -> None:
    text = f"Describe the harbour master's logbook entry number {uuid.uuid4().int % 10_000} in detail"
    with httpx.Client(base_url=f"{oai_app}/api", headers={"api-key": CACHED_KEY}, timeout=60) as api:
        body = {"messages": [{"role": "user", "content": text}], "max_tokens": 400, "stop": ["zz"]}
        fresh = api.post(AZURE_CHAT, json=body)
        assert fresh.headers["x-cache"] == "MISS"
        first = fresh.json()

        replayed = api.post(AZURE_CHAT, json={**body, "stream": True, "stream_options": {"include_usage": True}})
        assert replayed.headers["x-cache"] == "HIT"
        events = chunks(replayed)
        strict_chunks(events)
        # As Azure streams: the filter-only chunk, the role, the content with its filter results,
        # the finish, the usage; no `annotations` in a delta.
        assert events[0].keys() == AZURE_FILTER_CHUNK
        deltas = [e["choices"][0]["delta"] for e in events[1:-1]]
        assert deltas == [{"role": "assistant", "content": "", "refusal": None},
                          {"content": first["choices"][0]["message"]["content"]}, {}]
        assert events[2]["choices"][0]["content_filter_results"] == first["choices"][0]["content_filter_results"]
        assert {e["created"] for e in events[1:]} == {first["created"]}
        assert events[-1]["usage"] == first["usage"]

        similar = api.post(AZURE_CHAT, json={**body, "messages": [{"role": "user", "content": text + " please"}]})
        assert similar.headers["x-cache"] == "HIT", "a semantic hit"
        again = similar.json()
        ChatCompletion.model_validate(again, strict=True)
        assert (again["created"], again["system_fingerprint"]) == (first["created"], first["system_fingerprint"])
        assert again["usage"] == first["usage"] and "prompt_tokens_details" in again["usage"]
