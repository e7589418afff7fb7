"""The simulator app in process: validation, auth, accounting, latency and faults."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.unit.simulator.conftest import CHAT, KEY, O200K, QUESTION, RecordedSleep, o200k, sse_payloads
from tools.simulator import Simulator
from tools.simulator.responses import DroppedConnection
from tools.simulator.text import generate_answer


async def test_chat_usage_matches_the_content_and_latency_is_base_plus_per_token(
    client: httpx.AsyncClient, sleep: RecordedSleep
) -> None:
    response = await client.post("/v1/chat/completions", json=CHAT, headers=KEY)

    body = response.json()
    content = body["choices"][0]["message"]["content"]
    usage = body["usage"]
    assert response.status_code == 200
    assert response.headers["x-sim-region"] == "west"
    assert body["model"] == "simulator-gpt-4o"
    assert usage["completion_tokens"] == o200k(content)
    assert usage["prompt_tokens"] == 1 + o200k(QUESTION) + 3 + 3  # role "user" is one token
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert sleep.waits == pytest.approx([0.020, 0.002 * usage["completion_tokens"]])


async def test_azure_route_names_the_deployment_and_text_parts_count(client: httpx.AsyncClient) -> None:
    parts = {"messages": [{"role": "user", "content": [{"type": "text", "text": "Hello there!"}]}]}
    response = await client.post(
        "/openai/deployments/chat-dep/chat/completions?api-version=2024-10-21",
        json=parts,
        headers={"authorization": "Bearer token"},
    )

    assert response.json()["model"] == "simulator-chat-dep"
    assert response.json()["usage"]["prompt_tokens"] == 1 + o200k("Hello there!") + 3 + 3


async def test_usage_for_the_harbour_master_example(client: httpx.AsyncClient) -> None:
    # "Hello there, harbour master" is 5 o200k tokens: Hello| there|,| harbour| master.
    # Prompt: 1 for the role + 5 + 3 for the message + 3 for the reply; the answer is capped at 5 tokens.
    request = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hello there, harbour master"}]}
    response = await client.post("/v1/chat/completions", json={**request, "max_tokens": 5}, headers=KEY)

    body = response.json()
    assert {key: body["usage"][key] for key in ("prompt_tokens", "completion_tokens", "total_tokens")} == {
        "prompt_tokens": 12,
        "completion_tokens": 5,
        "total_tokens": 17,
    }
    assert body["choices"][0]["finish_reason"] == "length"
    assert o200k(body["choices"][0]["message"]["content"]) == 5


async def test_stream_spends_a_token_delay_per_chunk_and_matches_the_plain_answer(
    client: httpx.AsyncClient, sleep: RecordedSleep
) -> None:
    plain = (await client.post("/v1/chat/completions", json=CHAT, headers=KEY)).json()
    sleep.waits.clear()

    streamed = {**CHAT, "stream": True, "stream_options": {"include_usage": True}}
    response = await client.post("/v1/chat/completions", json=streamed, headers=KEY)

    chunks = sse_payloads(response.text)
    pieces = [chunk["choices"][0]["delta"]["content"] for chunk in chunks[1:-2]]
    assert response.headers["content-type"].startswith("text/event-stream")
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": "", "refusal": None}
    assert "".join(pieces) == plain["choices"][0]["message"]["content"]
    # An English answer streams exactly one token per chunk.
    assert pieces == [O200K.decode([token]) for token in O200K.encode("".join(pieces))]
    assert len(pieces) == plain["usage"]["completion_tokens"]
    assert chunks[-2]["choices"][0] == {"index": 0, "delta": {}, "finish_reason": "stop", "logprobs": None}
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"] == plain["usage"]
    assert sleep.waits == pytest.approx([0.020] + [0.002] * len(pieces))


async def test_stream_without_include_usage_sends_no_usage_chunk(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/chat/completions", json={**CHAT, "stream": True}, headers=KEY)

    assert all(chunk["choices"] and "usage" not in chunk for chunk in sse_payloads(response.text))


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"[]",
        json.dumps({"model": "m", "messages": []}).encode(),
        json.dumps({"model": "m"}).encode(),
        json.dumps({"messages": CHAT["messages"]}).encode(),  # no model on the OpenAI route
        json.dumps({**CHAT, "max_tokens": 0}).encode(),
        json.dumps({**CHAT, "max_tokens": "5"}).encode(),
        json.dumps({**CHAT, "stream": "yes"}).encode(),
        json.dumps({**CHAT, "n": 0}).encode(),
        json.dumps({**CHAT, "top_logprobs": 2}).encode(),  # without logprobs: true
        json.dumps({**CHAT, "tool_choice": "required"}).encode(),  # without tools
        json.dumps({"model": "m", "messages": [{"role": "tool", "content": "4", "tool_call_id": "x"}]}).encode(),
        json.dumps({**CHAT, "response_format": {"type": "json_object"}}).encode(),  # no "json" in the messages
        json.dumps({**CHAT, "response_format": {"type": "json_schema"}}).encode(),
        json.dumps({"model": "m", "messages": [{"role": "user", "content": [{"type": "input_audio"}]}]}).encode(),
        json.dumps({"model": "m", "messages": [{"role": "user", "content": 5}]}).encode(),
        json.dumps({"model": "m", "messages": [{"role": "robot", "content": "hi"}]}).encode(),
    ],
)
async def test_invalid_chat_bodies_get_an_openai_style_400(
    client: httpx.AsyncClient, sim: Simulator, body: bytes
) -> None:
    response = await client.post("/v1/chat/completions", content=body, headers=KEY)

    assert response.status_code == 400
    error = response.json()["error"]
    # The model service's own 400 (Azure passes it on): every member of OpenAI's error object.
    assert error.keys() == {"message", "type", "param", "code"} and error["type"] == "invalid_request_error"
    assert error["message"]
    assert sim.stats.snapshot()["by_status"] == {"400": 1}


@pytest.mark.parametrize(
    "headers", [{}, {"api-key": "  "}, {"authorization": "Bearer "}, {"authorization": "Basic abc"}]
)
async def test_requests_without_a_key_get_401(client: httpx.AsyncClient, headers: dict[str, str]) -> None:
    response = await client.post("/v1/embeddings", json={"model": "e", "input": "x"}, headers=headers)

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "401"
    assert response.headers["x-sim-region"] == "west"


async def test_embeddings_are_deterministic_in_both_encodings(client: httpx.AsyncClient) -> None:
    request: dict[str, Any] = {
        "model": "emb",
        "input": ["same words here", "same words here", "other harbour"],
        "dimensions": 8,
    }
    floats = (await client.post("/v1/embeddings", json=request, headers=KEY)).json()
    b64 = (await client.post("/v1/embeddings", json={**request, "encoding_format": "base64"}, headers=KEY)).json()

    vectors = [item["embedding"] for item in floats["data"]]
    assert [item["index"] for item in floats["data"]] == [0, 1, 2]
    assert len(vectors[0]) == 8 and vectors[0] == vectors[1] != vectors[2]
    assert isinstance(b64["data"][0]["embedding"], str)
    billed = sum(o200k(text) for text in request["input"])
    assert floats["usage"] == {"prompt_tokens": billed, "total_tokens": billed}
    assert floats["model"] == "simulator-emb"


async def test_a_stream_never_splits_a_character_and_a_drop_bills_the_tokens_of_its_chunks(
    client: httpx.AsyncClient, sim: Simulator, sleep: RecordedSleep
) -> None:
    # Rare CJK characters take several tokens each: a chunk carries whole characters, and costs
    # (in latency and in billing) as many tokens as it holds.
    rare = "龘 鱻 齉 靐"
    request = {
        "model": "m",
        "messages": [{"role": "user", "content": rare}],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    answer = generate_answer([("user", rare)], seed=sim.config.seed, max_tokens=None)

    chunks = sse_payloads((await client.post("/v1/chat/completions", json=request, headers=KEY)).text)
    pieces = [chunk["choices"][0]["delta"]["content"] for chunk in chunks[1:-2]]
    assert pieces == [piece.text for piece in answer.pieces]
    assert "\ufffd" not in "".join(pieces)
    assert len(pieces) < chunks[-1]["usage"]["completion_tokens"] == o200k("".join(pieces))

    sim.stats.reset()
    sleep.waits.clear()
    await client.post("/_sim/faults", json={"status": "drop_stream", "after_tokens": 4})
    # The in-process transport re-raises the cut instead of handing back a broken stream.
    with pytest.raises(DroppedConnection):
        await client.post("/v1/chat/completions", json=request, headers=KEY)

    sent = answer.pieces[:4]
    assert sim.stats.snapshot()["completion_tokens"] == sum(piece.tokens for piece in sent) > 4
    assert sim.stats.snapshot()["prompt_tokens"] == 1 + o200k(rare) + 3 + 3
    assert sleep.waits == pytest.approx([0.020] + [0.002 * piece.tokens for piece in sent])


async def test_inputs_too_long_to_tokenize_get_400(client: httpx.AsyncClient, sim: Simulator) -> None:
    huge = "a " * 600_000
    chat = {"model": "m", "messages": [{"role": "user", "content": huge}]}

    chat_response = await client.post("/v1/chat/completions", json=chat, headers=KEY)
    embedding_response = await client.post("/v1/embeddings", json={"model": "e", "input": huge}, headers=KEY)

    assert chat_response.status_code == embedding_response.status_code == 400
    assert "too long" in chat_response.json()["error"]["message"]
    assert sim.stats.snapshot()["by_status"] == {"400": 2}


@pytest.mark.parametrize("bad_input", ["", [], [""], [[]], [-1], [1, "a"], 5])
async def test_invalid_embedding_inputs_get_400(client: httpx.AsyncClient, bad_input: object) -> None:
    response = await client.post("/v1/embeddings", json={"model": "e", "input": bad_input}, headers=KEY)
    assert response.status_code == 400
    assert response.json()["error"]["message"].startswith("input: must be a non-empty string")


async def test_429_fault_carries_retry_headers_and_bills_nothing(client: httpx.AsyncClient, sim: Simulator) -> None:
    await client.post("/_sim/faults", json={"status": 429, "rate": 1, "retry_after_s": 0.25})

    response = await client.post("/v1/chat/completions", json=CHAT, headers=KEY)

    assert response.status_code == 429
    assert response.json()["error"]["code"] == "429"
    assert response.headers["retry-after"] == "1"
    assert response.headers["retry-after-ms"] == "250"
    assert sim.stats.snapshot() == {"requests": 1, "by_status": {"429": 1}, "prompt_tokens": 0, "completion_tokens": 0}


async def test_latency_fault_alone_only_slows_the_answer(client: httpx.AsyncClient, sleep: RecordedSleep) -> None:
    await client.post("/_sim/faults", json={"latency_ms": 1500})

    response = await client.post("/v1/embeddings", json={"model": "e", "input": "x"}, headers=KEY)

    assert response.status_code == 200
    assert sleep.waits == pytest.approx([1.5, 0.020])


async def test_timeout_fault_hangs_for_the_longest_a_client_could_wait(
    client: httpx.AsyncClient, sim: Simulator, sleep: RecordedSleep
) -> None:
    await client.post("/_sim/faults", json={"status": "timeout"})

    response = await client.post("/v1/embeddings", json={"model": "e", "input": "x"}, headers=KEY)

    assert sleep.waits == [600.0]
    assert response.status_code == 504
    assert sim.stats.snapshot()["by_status"] == {"timeout": 1}


async def test_control_surface_shows_replaces_and_clears_the_fault(client: httpx.AsyncClient) -> None:
    assert (await client.get("/_sim/faults")).json() == {"fault": None}

    await client.post("/_sim/faults", json={"status": 503, "rate": 0.5})
    replaced = await client.post("/_sim/faults", json={"status": "drop_stream", "after_tokens": 0})
    bad = await client.post("/_sim/faults", json={"status": 418})

    assert replaced.json() == {"fault": {"status": "drop_stream", "rate": 1.0, "after_tokens": 0}}
    assert bad.status_code == 400 and "status" in bad.json()["error"]["message"]
    assert (await client.get("/_sim/faults")).json() == replaced.json()
    assert (await client.delete("/_sim/faults")).json() == {"fault": None}


async def test_stats_count_billed_tokens_and_reset(client: httpx.AsyncClient) -> None:
    chat = (await client.post("/v1/chat/completions", json=CHAT, headers=KEY)).json()
    embedding_request = {"model": "e", "input": "four words right here"}
    emb = (await client.post("/v1/embeddings", json=embedding_request, headers=KEY)).json()
    await client.post("/v1/embeddings", json={"model": "e", "input": "x"})  # no key

    stats = (await client.get("/_sim/stats")).json()
    assert stats == {
        "requests": 3,
        "by_status": {"200": 2, "401": 1},
        "prompt_tokens": chat["usage"]["prompt_tokens"] + emb["usage"]["prompt_tokens"],
        "completion_tokens": chat["usage"]["completion_tokens"],
    }
    assert (await client.delete("/_sim/stats")).json()["requests"] == 0
    assert (await client.get("/_sim/stats")).json() == {
        "requests": 0,
        "by_status": {},
        "prompt_tokens": 0,
        "completion_tokens": 0,
    }


async def test_unknown_routes_get_an_openai_style_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/models/nope")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "404"
    assert response.headers["x-sim-region"] == "west"
