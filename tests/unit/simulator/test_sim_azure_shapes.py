"""The simulator speaks Azure: its error bodies, request ids, rate-limit headers, content-filter
annotations, a deployment it does not serve, and a fault that clears itself after its count."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from openai.types import ErrorObject
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from tests.unit.simulator.conftest import CHAT, KEY, RecordedSleep, sse_payloads
from tools.simulator import Simulator, SimulatorConfig, create_app

AZURE = "/openai/deployments/chat/chat/completions?api-version=2024-10-21"


@pytest.fixture
async def served(sleep: RecordedSleep) -> AsyncIterator[httpx.AsyncClient]:
    """A region serving only the deployments `chat` and `embeddings`, as Azure would."""
    sim = Simulator(SimulatorConfig(deployments=("chat", "embeddings"), requests_per_minute=10,
                                    tokens_per_minute=1000), sleep=sleep)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(simulator=sim)),
                                 base_url="http://sim") as client:
        yield client


async def test_an_unknown_deployment_is_azure_s_404_deployment_not_found(served: httpx.AsyncClient) -> None:
    for path in ("/openai/deployments/gpt-5/chat/completions", "/openai/deployments/gpt-5/embeddings"):
        response = await served.post(path, json={**CHAT, "input": "x"}, headers=KEY)
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "DeploymentNotFound"
        assert response.json()["error"].keys() == {"code", "message"}
    assert (await served.post(AZURE, json=CHAT, headers=KEY)).status_code == 200


async def test_azure_errors_carry_code_and_message_only_the_openai_routes_the_whole_object(
        client: httpx.AsyncClient) -> None:
    await client.post("/_sim/faults", json={"status": 429, "retry_after_s": 2})
    azure = await client.post(AZURE, json=CHAT, headers=KEY)
    assert azure.status_code == 429 and azure.json() == {"error": {"code": "429", "message": azure.json()["error"][
        "message"]}}
    assert azure.headers["retry-after"] == "2"
    openai_route = await client.post("/v1/chat/completions", json=CHAT, headers=KEY)
    ErrorObject.model_validate(openai_route.json()["error"], strict=True)
    denied = await client.post(AZURE, json=CHAT)
    assert denied.status_code == 401 and denied.json()["error"].keys() == {"code", "message"}


async def test_a_400_names_the_field_and_a_text_past_the_tokenizer_is_context_length_exceeded(
        client: httpx.AsyncClient) -> None:
    refused = await client.post(AZURE, json={**CHAT, "top_logprobs": 2}, headers=KEY)
    error = refused.json()["error"]
    assert refused.status_code == 400 and (error["param"], error["type"]) == ("top_logprobs", "invalid_request_error")
    ErrorObject.model_validate(error, strict=True)
    huge = {**CHAT, "messages": [{"role": "user", "content": "ab" * 600_000}]}
    too_long = (await client.post(AZURE, json=huge, headers=KEY)).json()["error"]
    assert (too_long["code"], too_long["param"]) == ("context_length_exceeded", "messages")


async def test_every_answer_has_azure_s_request_ids_and_remaining_quota(served: httpx.AsyncClient) -> None:
    first = await served.post(AZURE, json={**CHAT, "max_tokens": 50}, headers=KEY)
    second = await served.post(AZURE, json={**CHAT, "max_tokens": 50}, headers=KEY)
    assert first.headers["x-request-id"] != second.headers["x-request-id"]
    assert first.headers["apim-request-id"]
    assert (first.headers["x-ratelimit-remaining-requests"], second.headers["x-ratelimit-remaining-requests"]) == (
        "9", "8")
    spent = 1000 - int(first.headers["x-ratelimit-remaining-tokens"])
    assert spent == first.json()["usage"]["prompt_tokens"] + 50  # the prompt plus max_tokens, as Azure counts
    missing = await served.get("/openai/nowhere")
    assert missing.status_code == 404 and missing.headers["x-request-id"]


async def test_azure_answers_carry_filter_results_and_a_stream_opens_with_the_filter_only_chunk(
        client: httpx.AsyncClient) -> None:
    answer = (await client.post(AZURE, json=CHAT, headers=KEY)).json()
    ChatCompletion.model_validate(answer, strict=True)
    assert answer["prompt_filter_results"][0]["content_filter_results"]["jailbreak"] == {"filtered": False,
                                                                                          "detected": False}
    assert answer["choices"][0]["content_filter_results"]["hate"] == {"filtered": False, "severity": "safe"}

    chunks = sse_payloads((await client.post(AZURE, json={**CHAT, "stream": True}, headers=KEY)).text)
    assert chunks[0] == {"choices": [], "created": 0, "id": "", "model": "", "object": "",
                         "prompt_filter_results": answer["prompt_filter_results"]}
    role, content, finish = chunks[1]["choices"][0], chunks[2]["choices"][0], chunks[-1]["choices"][0]
    assert role["content_filter_results"] == {} and finish["content_filter_results"] == {}
    assert content["content_filter_results"]["violence"]["severity"] == "safe"
    for chunk in chunks[1:]:
        ChatCompletionChunk.model_validate(chunk, strict=True)

    plain = (await client.post("/v1/chat/completions", json=CHAT, headers=KEY)).json()
    assert "prompt_filter_results" not in plain and "content_filter_results" not in plain["choices"][0]


async def test_a_fault_with_a_count_clears_itself(client: httpx.AsyncClient) -> None:
    await client.post("/_sim/faults", json={"status": 429, "retry_after_s": 1, "count": 2})
    statuses = [(await client.post(AZURE, json=CHAT, headers=KEY)).status_code for _ in range(3)]
    assert statuses == [429, 429, 200]
    assert (await client.get("/_sim/faults")).json() == {"fault": None}
