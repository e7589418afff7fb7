"""Tool calls through the real openai SDK: forced, auto, parallel, streamed, after a tool result, parse()."""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Any

import httpx
import jsonschema
import openai
import pytest
from openai.types.chat import (
    ChatCompletionMessageParam,
    ChatCompletionNamedToolChoiceParam,
    ChatCompletionToolParam,
)
from pydantic import BaseModel

from tests.integration.simulator.conftest import ASK_WEATHER, billed, o200k
from tools.simulator.process import SimulatorProcess

pytestmark = pytest.mark.usefixtures("control")


WEATHER: ChatCompletionToolParam = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather forecast for a city.",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "minLength": 2},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                "days": {"type": "integer", "minimum": 1, "maximum": 7},
                "where": {
                    "type": "object",
                    "properties": {"lat": {"type": "number"}, "tags": {"type": "array", "items": {"type": "string"}}},
                    "required": ["lat", "tags"],
                    "additionalProperties": False,
                },
            },
            "required": ["city", "unit", "days", "where"],
            "additionalProperties": False,
        },
        "strict": True,
    },
}
STOCKS: ChatCompletionToolParam = {
    "type": "function",
    "function": {
        "name": "get_stock_price",
        "description": "Look up the share price of a listed company.",
        "parameters": {"type": "object", "properties": {"ticker": {"type": "string"}}, "required": ["ticker"]},
    },
}



def tool_tokens(*tools: ChatCompletionToolParam) -> int:
    """The README's recipe, written out again here so a change in the simulator's billing shows."""
    total = 12
    for tool in tools:
        function: dict[str, Any] = dict(tool["function"])
        shown = {key: function[key] for key in ("name", "description", "parameters") if key in function}
        total += o200k(json.dumps(shown, sort_keys=True, separators=(",", ":"), ensure_ascii=False)) + 7
    return total



def test_a_forced_tool_call_has_schema_valid_arguments_and_is_billed(
    oai: openai.OpenAI, control: httpx.Client
) -> None:
    forced: ChatCompletionNamedToolChoiceParam = {"type": "function", "function": {"name": "get_weather"}}
    completion = oai.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "Hello"}],
        tools=[STOCKS, WEATHER],
        tool_choice=forced,
    )

    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    assert choice.message.tool_calls is not None and len(choice.message.tool_calls) == 1
    call = choice.message.tool_calls[0]
    assert call.type == "function" and call.id.startswith("call_")
    assert call.function.name == "get_weather"
    jsonschema.validate(json.loads(call.function.arguments), WEATHER["function"]["parameters"])
    assert completion.usage is not None
    assert completion.usage.prompt_tokens == tool_tokens(STOCKS, WEATHER) + 1 + o200k("Hello") + 3 + 3
    # The name, the arguments and 3 framing tokens: what the README says a generated call costs.
    assert completion.usage.completion_tokens == o200k("get_weather") + o200k(call.function.arguments) + 3
    assert billed(control) == (completion.usage.prompt_tokens, completion.usage.completion_tokens)


def test_auto_calls_the_tools_the_user_names_and_parallel_false_keeps_one(oai: openai.OpenAI) -> None:
    def called(content: str, **extra: Any) -> list[str]:
        message = oai.chat.completions.create(
            model="m", messages=[{"role": "user", "content": content}], tools=[WEATHER, STOCKS], **extra
        ).choices[0].message
        return [call.function.name for call in message.tool_calls or []]

    assert called("What is the weather in Paris?") == ["get_weather"]
    assert called("Is the share price of Contoso up, and the weather?") == ["get_weather", "get_stock_price"]
    assert called("Is the share price of Contoso up, and the weather?", parallel_tool_calls=False) == ["get_weather"]
    assert called("Tell me a joke.") == []
    assert called("Tell me a joke.", tool_choice="required") == ["get_weather"]
    assert called("What is the weather in Paris?", tool_choice="none") == []


def test_a_streamed_tool_call_is_assembled_by_the_sdk_and_equals_the_plain_one(
    oai: openai.OpenAI, control: httpx.Client
) -> None:
    plain = oai.chat.completions.create(model="m", messages=ASK_WEATHER, tools=[WEATHER])
    control.delete("/_sim/stats")

    with oai.chat.completions.stream(
        model="m", messages=ASK_WEATHER, tools=[WEATHER], stream_options={"include_usage": True}
    ) as stream:
        final = stream.get_final_completion()

    assert plain.choices[0].message.tool_calls is not None and final.choices[0].message.tool_calls is not None
    got, want = final.choices[0].message.tool_calls[0], plain.choices[0].message.tool_calls[0]
    assert want.type == "function", want  # not a custom tool call: it has .function
    assert (got.id, got.function.name, got.function.arguments) == (want.id, want.function.name, want.function.arguments)
    assert final.choices[0].finish_reason == "tool_calls"
    assert final.usage is not None and plain.usage is not None
    assert final.usage.completion_tokens == plain.usage.completion_tokens
    assert billed(control) == (final.usage.prompt_tokens, final.usage.completion_tokens)


def test_streamed_tool_call_deltas_have_the_services_shape(simulator: SimulatorProcess) -> None:
    body = {"model": "m", "messages": ASK_WEATHER, "tools": [WEATHER, STOCKS], "stream": True,
            "tool_choice": "required"}
    with httpx.stream("POST", f"{simulator.url}/v1/chat/completions", json=body, headers={"api-key": "k"}) as resp:
        events = [line.removeprefix("data: ") for line in resp.iter_lines() if line.startswith("data: ")]

    assert events[-1] == "[DONE]"
    chunks = [json.loads(event) for event in events[:-1]]
    first = chunks[0]["choices"][0]["delta"]
    assert first["role"] == "assistant" and first["content"] is None
    assert first["tool_calls"] == [
        {"index": 0, "id": first["tool_calls"][0]["id"], "type": "function",
         "function": {"name": "get_weather", "arguments": ""}}
    ]
    fragments = [chunk["choices"][0]["delta"]["tool_calls"][0] for chunk in chunks[1:-1]]
    assert all(fragment == {"index": 0, "function": {"arguments": fragment["function"]["arguments"]}}
               for fragment in fragments)
    assert len(fragments) > 3  # one per token, not the whole arguments at once
    jsonschema.validate(json.loads("".join(f["function"]["arguments"] for f in fragments)),
                        WEATHER["function"]["parameters"])
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"


def test_after_a_tool_result_the_answer_is_text_that_carries_the_result(
    azure: openai.AzureOpenAI, control: httpx.Client
) -> None:
    call = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}
    messages: list[ChatCompletionMessageParam] = [
        {"role": "developer", "content": "You help travellers."},
        *ASK_WEATHER,
        {"role": "assistant", "content": None, "tool_calls": [call]},  # type: ignore[list-item]
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny, 21 degrees"},
    ]

    completion = azure.chat.completions.create(model="chat-dep", messages=messages, tools=[WEATHER])

    choice = completion.choices[0]
    assert choice.finish_reason == "stop" and choice.message.tool_calls is None
    assert "sunny, 21 degrees" in (choice.message.content or "")
    expected_prompt = tool_tokens(WEATHER) + sum(
        [
            o200k("developer") + o200k("You help travellers.") + 3,
            1 + o200k("What is the weather in Paris?") + 3,
            o200k("assistant") + 3 + o200k("get_weather") + o200k('{"city":"Paris"}') + 3,
            o200k("tool") + o200k("sunny, 21 degrees") + 3,
        ]
    ) + 3
    assert completion.usage is not None and completion.usage.prompt_tokens == expected_prompt
    assert billed(control) == (expected_prompt, completion.usage.completion_tokens)


class Unit(StrEnum):
    celsius = "celsius"
    fahrenheit = "fahrenheit"

class GetWeather(BaseModel):
    city: str
    unit: Unit


def test_parse_with_a_pydantic_tool_gets_parsed_arguments(oai: openai.OpenAI) -> None:
    completion = oai.chat.completions.parse(
        model="m", messages=ASK_WEATHER, tools=[openai.pydantic_function_tool(GetWeather)], tool_choice="required"
    )

    calls = completion.choices[0].message.tool_calls
    assert calls is not None and isinstance(calls[0].function.parsed_arguments, GetWeather)


async def test_the_async_client_streams_tool_calls_with_usage(simulator: SimulatorProcess) -> None:
    client = openai.AsyncOpenAI(base_url=f"{simulator.url}/v1", api_key="k", max_retries=0)
    async with client.chat.completions.stream(
        model="m", messages=ASK_WEATHER, tools=[WEATHER, STOCKS], tool_choice="required",
        stream_options={"include_usage": True},
    ) as stream:
        final = await stream.get_final_completion()
    await client.close()

    calls = final.choices[0].message.tool_calls or []
    assert [call.function.name for call in calls] == ["get_weather"]
    jsonschema.validate(json.loads(calls[0].function.arguments), WEATHER["function"]["parameters"])
    assert final.usage is not None
    assert final.usage.completion_tokens == o200k("get_weather") + o200k(calls[0].function.arguments) + 3
