"""In process: tool-call streams, n, stop, logprobs streams, request checks, and what each bills."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.unit.simulator.conftest import CHAT, KEY, RecordedSleep, o200k, sse_payloads
from tools.simulator import Simulator
from tools.simulator.prompt import IMAGE_TOKENS_HIGH, count_prompt_tokens
from tools.simulator.responses import DroppedConnection

TOOL = {
    "type": "function",
    "function": {
        "name": "lookup_order",
        "description": "Find an order by its number.",
        "parameters": {"type": "object", "properties": {"order": {"type": "string"}}, "required": ["order"]},
    },
}
ORDER_CHAT: dict[str, Any] = {
    "model": "m",
    "messages": [{"role": "user", "content": "Where is my order 1234?"}],
    "tools": [TOOL],
    "stream": True,
    "stream_options": {"include_usage": True},
}


async def test_a_streamed_tool_call_pays_latency_per_token_and_its_usage_is_what_was_sent(
    client: httpx.AsyncClient, sim: Simulator, sleep: RecordedSleep
) -> None:
    chunks = sse_payloads((await client.post("/v1/chat/completions", json=ORDER_CHAT, headers=KEY)).text)

    deltas = [chunk["choices"][0]["delta"] for chunk in chunks[:-2]]
    arguments = "".join(delta["tool_calls"][0]["function"]["arguments"] for delta in deltas)
    header = o200k("lookup_order") + 3
    completion_tokens = chunks[-1]["usage"]["completion_tokens"]
    assert deltas[0]["tool_calls"][0]["function"] == {"name": "lookup_order", "arguments": ""}
    assert json.loads(arguments).keys() == {"order"}
    assert completion_tokens == header + o200k(arguments)
    # Base latency, the name (with its framing), then one token per argument fragment.
    assert sleep.waits == pytest.approx([0.020, 0.002 * header] + [0.002] * (len(deltas) - 1))
    assert sim.stats.snapshot()["completion_tokens"] == completion_tokens


async def test_a_dropped_tool_call_stream_bills_the_name_and_fragments_sent(
    client: httpx.AsyncClient, sim: Simulator
) -> None:
    await client.post("/_sim/faults", json={"status": "drop_stream", "after_tokens": 3})

    with pytest.raises(DroppedConnection):
        await client.post("/v1/chat/completions", json=ORDER_CHAT, headers=KEY)

    stats = sim.stats.snapshot()
    assert stats["by_status"] == {"dropped": 1}
    assert stats["completion_tokens"] == o200k("lookup_order") + 3 + 2  # the name chunk and two fragments


async def test_n_streams_interleave_choices_and_a_drop_bills_every_choice(
    client: httpx.AsyncClient, sim: Simulator, sleep: RecordedSleep
) -> None:
    body = {**CHAT, "n": 2, "stream": True, "stream_options": {"include_usage": True}}
    chunks = sse_payloads((await client.post("/v1/chat/completions", json=body, headers=KEY)).text)

    indexes = [chunk["choices"][0]["index"] for chunk in chunks[:-1]]
    choices = [chunk["choices"][0] for chunk in chunks[:-1]]
    texts = ["".join(c["delta"].get("content") or "" for c in choices if c["index"] == i) for i in (0, 1)]
    assert indexes[:4] == [0, 1, 0, 1]
    assert chunks[-1]["usage"]["completion_tokens"] == o200k(texts[0]) + o200k(texts[1])
    # Both choices decode side by side: one token delay per round, not per chunk.
    assert len(sleep.waits) == 1 + o200k(texts[0])

    sim.stats.reset()
    await client.post("/_sim/faults", json={"status": "drop_stream", "after_tokens": 2})
    with pytest.raises(DroppedConnection):
        await client.post("/v1/chat/completions", json=body, headers=KEY)
    assert sim.stats.snapshot()["completion_tokens"] == 4


async def test_a_stop_sequence_ends_the_answer_before_it(client: httpx.AsyncClient) -> None:
    full = (await client.post("/v1/chat/completions", json=CHAT, headers=KEY)).json()["choices"][0]
    word = full["message"]["content"].split()[3]

    cut = (await client.post("/v1/chat/completions", json={**CHAT, "stop": [word]}, headers=KEY)).json()

    assert cut["choices"][0]["finish_reason"] == "stop"
    text = full["message"]["content"]
    assert cut["choices"][0]["message"]["content"] == text[: text.find(word)]
    assert cut["usage"]["completion_tokens"] == o200k(cut["choices"][0]["message"]["content"])


async def test_streamed_logprobs_ride_on_their_chunks(client: httpx.AsyncClient) -> None:
    body = {**CHAT, "logprobs": True, "stream": True}
    plain = (await client.post("/v1/chat/completions", json={**CHAT, "logprobs": True}, headers=KEY)).json()
    chunks = sse_payloads((await client.post("/v1/chat/completions", json=body, headers=KEY)).text)

    streamed = [entry for chunk in chunks[1:-1] for entry in chunk["choices"][0]["logprobs"]["content"]]
    assert streamed == plain["choices"][0]["logprobs"]["content"]
    assert all(entry["top_logprobs"] == [] for entry in streamed)  # logprobs without top_logprobs


async def test_unknown_fields_and_every_client_field_are_accepted(client: httpx.AsyncClient) -> None:
    body = {
        **CHAT,
        "temperature": 0.2, "top_p": 0.9, "logit_bias": {"1": -100}, "user": "u", "safety_identifier": "s",
        "prompt_cache_key": "k", "metadata": {"a": "b"}, "store": False, "reasoning_effort": "low",
        "service_tier": "auto", "a_field_from_next_year": {"x": 1},
    }
    response = await client.post("/v1/chat/completions", json=body, headers=KEY)

    assert response.status_code == 200


async def test_names_images_and_assistant_tool_calls_are_billed_by_the_recipe(client: httpx.AsyncClient) -> None:
    call = {"id": "c1", "type": "function", "function": {"name": "lookup_order", "arguments": '{"order":"1"}'}}
    messages = [
        {"role": "user", "name": "ana", "content": [
            {"type": "text", "text": "Look"}, {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA"}}]},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "c1", "content": "shipped"},
    ]
    usage = (await client.post("/v1/chat/completions", json={"model": "m", "messages": messages}, headers=KEY)).json()

    expected = (
        count_prompt_tokens([("user", "Look"), ("assistant", ""), ("tool", "shipped")])
        + o200k("ana") + 1
        + IMAGE_TOKENS_HIGH
        + o200k("lookup_order") + o200k('{"order":"1"}') + 3
    )
    assert usage["usage"]["prompt_tokens"] == expected


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"tool_choice": {"type": "function", "function": {"name": "nope"}}}, "tool_choice.function.name"),
        ({"tool_choice": "required", "tools": []}, "tool_choice"),
        ({"messages": [{"role": "tool", "tool_call_id": "x", "content": "4"}]}, "messages.0"),
        ({"response_format": {"type": "json_object"}}, "messages"),
        ({"top_logprobs": 3}, "top_logprobs"),
        ({"tools": [{"type": "custom", "custom": {"name": "x"}}]}, "tools.0"),
        # The message of the union form that got furthest, not "content: Input should be a valid string".
        ({"messages": [{"role": "user", "content": [{"type": "input_audio"}]}]}, "messages.0.content.0: Input tag"),
    ],
)
async def test_refusals_name_the_field(client: httpx.AsyncClient, change: dict[str, Any], field: str) -> None:
    body = {**ORDER_CHAT, "stream": False, **change}

    response = await client.post("/v1/chat/completions", json=body, headers=KEY)

    assert response.status_code == 400
    assert response.json()["error"]["message"].startswith(field)


async def test_a_token_id_outside_the_vocabulary_is_a_400(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/embeddings", json={"model": "e", "input": [199_998]}, headers=KEY)

    assert response.status_code == 400
    assert "vocabulary" in response.json()["error"]["message"]


async def test_a_repeated_prefix_is_cached_until_the_cache_is_cleared(client: httpx.AsyncClient) -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "word " * 1300}], "max_tokens": 1}

    async def cached() -> int:
        usage = (await client.post("/v1/chat/completions", json=body, headers=KEY)).json()["usage"]
        value: int = usage["prompt_tokens_details"]["cached_tokens"]
        return value

    assert await cached() == 0
    assert await cached() == 1280  # 1,308 prompt tokens: 1024 + 2 steps of 128
    await client.delete("/_sim/prompt_cache")
    assert await cached() == 0


LOOSE = {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}  # no additionalProperties
NESTED = {
    "type": "object",
    "properties": {"inner": {"$ref": "#/$defs/Inner"}},
    "required": ["inner"],
    "additionalProperties": False,
    "$defs": {"Inner": {"type": "object", "properties": {"x": {"type": "integer"}, "y": {"type": "integer"}},
                        "required": ["x"], "additionalProperties": False}},
}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"tools": [{"type": "function", "function": {"name": "f", "parameters": LOOSE, "strict": True}}],
          "tool_choice": "required"},
         "tools.0.function.parameters: invalid schema for function 'f': in context=(), 'additionalProperties'"),
        ({"response_format": {"type": "json_schema", "json_schema": {"name": "r", "schema": NESTED, "strict": True}}},
         "response_format.json_schema.schema: invalid schema for response_format 'r': "
         "in context=('$defs', 'Inner'), 'required' must list every key in properties; missing 'y'"),
        ({"response_format": {"type": "json_schema",
                              "json_schema": {"name": "r", "schema": {"type": "array"}, "strict": True}}},
         "response_format.json_schema.schema: invalid schema for response_format 'r': the root schema must be"),
    ],
)
async def test_strict_schemas_follow_the_structured_outputs_rules(
    client: httpx.AsyncClient, change: dict[str, Any], message: str
) -> None:
    refused = await client.post("/v1/chat/completions", json={**CHAT, **change}, headers=KEY)
    loose = json.loads(json.dumps(change).replace('"strict": true', '"strict": false'))
    accepted = await client.post("/v1/chat/completions", json={**CHAT, **loose}, headers=KEY)

    assert refused.status_code == 400
    assert refused.json()["error"]["message"].startswith(message)
    assert accepted.status_code == 200  # the same schema without strict is the caller's business
