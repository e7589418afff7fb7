"""The simulator's Responses API as the openai SDK reads it: usage billed by the chat recipe,
chaining within one region only, function tools, streamed events with sequence_number, faults."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import httpx2
import openai
import pytest

from tests.unit.simulator.conftest import o200k
from tools.simulator import Simulator, SimulatorConfig, create_app
from tools.simulator.responses import DroppedConnection

WEATHER: Any = {"type": "function", "name": "get_weather", "description": "Current weather for a city",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
                               "additionalProperties": False}, "strict": True}


@pytest.fixture
async def sdk(sim: Simulator) -> AsyncIterator[openai.AsyncOpenAI]:
    """The openai SDK over the app in process (its own HTTP library's ASGI transport)."""
    http = httpx2.AsyncClient(transport=httpx2.ASGITransport(app=create_app(simulator=sim)), base_url="http://sim")
    async with openai.AsyncOpenAI(base_url="http://sim/v1", api_key="any", http_client=http, max_retries=0) as c:
        yield c


async def test_usage_is_the_chat_recipe_and_the_stats_bill_it(sdk: openai.AsyncOpenAI, sim: Simulator) -> None:
    answer = await sdk.responses.create(model="gpt-4o-mini", instructions="Be brief.", input="Tell me of tides.")
    assert answer.usage is not None
    # developer + user messages: role + content + 3 each, + 3 for the reply.
    expected = o200k("developer") + o200k("Be brief.") + 3 + o200k("user") + o200k("Tell me of tides.") + 3 + 3
    assert answer.usage.input_tokens == expected
    assert answer.usage.output_tokens == o200k(answer.output_text)
    stats = sim.stats.snapshot()
    assert (stats["prompt_tokens"], stats["completion_tokens"]) == (expected, answer.usage.output_tokens)


async def test_chaining_bills_the_context_and_stays_in_its_region(sdk: openai.AsyncOpenAI, sleep: Any) -> None:
    first = await sdk.responses.create(model="gpt-4o-mini", input="What is the weather in Paris?", tools=[WEATHER])
    call = first.output[0]
    assert call.type == "function_call" and json.loads(call.arguments)["city"]
    second = await sdk.responses.create(model="gpt-4o-mini", previous_response_id=first.id, tools=[WEATHER],
                                        input=[{"type": "function_call_output", "call_id": call.call_id,
                                                "output": "sunny"}])
    assert second.output_text.startswith("The tool returned: sunny.")
    assert second.usage is not None and first.usage is not None
    assert second.usage.input_tokens > first.usage.input_tokens + first.usage.output_tokens
    items = await sdk.responses.input_items.list(second.id)
    assert [i.type for i in items.data] == ["function_call_output"]
    other = Simulator(SimulatorConfig(region="east"), sleep=sleep)  # another region knows none of this one's
    transport = httpx.ASGITransport(app=create_app(simulator=other))
    async with httpx.AsyncClient(transport=transport, base_url="http://sim") as east:
        refused = await east.post("/v1/responses", headers={"api-key": "x"},
                                  json={"model": "m", "input": "x", "previous_response_id": first.id})
        assert refused.status_code == 400 and refused.json()["error"]["code"] == "previous_response_not_found"
        assert (await east.get(f"/v1/responses/{first.id}", headers={"api-key": "x"})).status_code == 404
    await sdk.responses.delete(first.id)
    with pytest.raises(openai.NotFoundError):
        await sdk.responses.retrieve(first.id)


async def test_a_stream_numbers_its_events_and_a_cap_makes_it_incomplete(client: httpx.AsyncClient) -> None:
    response = await client.post("/openai/v1/responses", headers={"api-key": "x"},
                                 json={"model": "chat", "input": "A long tale of tides.", "stream": True,
                                       "max_output_tokens": 16})
    events = [json.loads(line[6:]) for line in response.text.splitlines() if line.startswith("data: ")]
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    assert events[-1]["type"] == "response.incomplete"
    assert events[-1]["response"]["incomplete_details"] == {"reason": "max_output_tokens"}
    deltas = "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
    assert o200k(deltas) == events[-1]["response"]["usage"]["output_tokens"] <= 16


async def test_a_dropped_stream_bills_what_it_sent(client: httpx.AsyncClient, sim: Simulator) -> None:
    await client.post("/_sim/faults", json={"status": "drop_stream", "after_tokens": 2})
    with pytest.raises(DroppedConnection):  # the server cuts the connection (ASGI: raised after the start)
        await client.post("/v1/responses", headers={"api-key": "x"},
                          json={"model": "m", "input": "Tell me of tides.", "stream": True})
    stats = sim.stats.snapshot()
    assert stats["by_status"] == {"dropped": 1} and 0 < stats["completion_tokens"] <= 2


async def test_sealed_reasoning_is_readable_only_where_it_was_sealed(sdk: openai.AsyncOpenAI, sleep: Any) -> None:
    sealed = await sdk.responses.create(model="m", input="Where is the quay?", store=False,
                                        include=["reasoning.encrypted_content"])
    reasoning = [item.model_dump(exclude_none=True) for item in sealed.output if item.type == "reasoning"]
    body: Any = {"model": "m", "store": False, "input": [*reasoning, {"role": "user", "content": "And the slipway?"}]}
    assert (await sdk.responses.create(**body)).output_text
    other = Simulator(SimulatorConfig(region="east"), sleep=sleep)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(simulator=other)),
                                 base_url="http://sim") as east:
        refused = await east.post("/v1/responses", headers={"api-key": "x"}, json=body)
        assert refused.status_code == 400 and refused.json()["error"]["param"] == "input.0.encrypted_content"
