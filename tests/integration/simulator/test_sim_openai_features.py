"""Tools, structured outputs, n, logprobs, prompt caching, images and embeddings, through the real openai SDK."""

from __future__ import annotations

import json
from collections.abc import Iterator
from enum import StrEnum
from typing import Any

import bpe_openai
import httpx
import jsonschema
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam, ChatCompletionToolParam
from pydantic import BaseModel

from tools.simulator.process import SimulatorProcess

O200K = bpe_openai.get_encoding("o200k_base")

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
ASK_WEATHER: list[ChatCompletionMessageParam] = [{"role": "user", "content": "What is the weather in Paris?"}]


def o200k(text: str) -> int:
    return len(O200K.encode(text))


def tool_tokens(*tools: ChatCompletionToolParam) -> int:
    """The README's recipe, written out again here so a change in the simulator's billing shows."""
    total = 12
    for tool in tools:
        function: dict[str, Any] = dict(tool["function"])
        shown = {key: function[key] for key in ("name", "description", "parameters") if key in function}
        total += o200k(json.dumps(shown, sort_keys=True, separators=(",", ":"), ensure_ascii=False)) + 7
    return total


@pytest.fixture(autouse=True)
def control(simulator: SimulatorProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=simulator.url, timeout=5) as client:
        client.delete("/_sim/faults")
        client.delete("/_sim/stats")
        client.delete("/_sim/prompt_cache")
        yield client


@pytest.fixture
def oai(simulator: SimulatorProcess) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{simulator.url}/v1", api_key="k", max_retries=0)


@pytest.fixture
def azure(simulator: SimulatorProcess) -> openai.AzureOpenAI:
    return openai.AzureOpenAI(azure_endpoint=simulator.url, api_key="k", api_version="2024-10-21", max_retries=0)


def billed(control: httpx.Client) -> tuple[int, int]:
    stats = control.get("/_sim/stats").json()
    return stats["prompt_tokens"], stats["completion_tokens"]


def test_a_forced_tool_call_has_schema_valid_arguments_and_is_billed(
    oai: openai.OpenAI, control: httpx.Client
) -> None:
    forced = {"type": "function", "function": {"name": "get_weather"}}
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


class Reading(BaseModel):
    hour: int
    value: float
    note: str | None


class Forecast(BaseModel):
    city: str
    unit: Unit
    readings: list[Reading]


def test_parse_with_a_pydantic_model_gets_a_valid_instance(oai: openai.OpenAI) -> None:
    completion = oai.chat.completions.parse(model="m", messages=ASK_WEATHER, response_format=Forecast)

    parsed = completion.choices[0].message.parsed
    assert isinstance(parsed, Forecast)
    assert parsed.unit is Unit.celsius and len(parsed.readings) == 1
    assert completion.usage is not None
    assert completion.usage.completion_tokens == o200k(completion.choices[0].message.content or "")


def test_json_object_answers_parse_as_an_object(oai: openai.OpenAI) -> None:
    messages: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Reply in JSON: how are you?"}]
    content = oai.chat.completions.create(
        model="m", messages=messages, response_format={"type": "json_object"}
    ).choices[0].message.content

    assert isinstance(json.loads(content or ""), dict)


def test_n_choices_differ_and_usage_counts_them_all(oai: openai.OpenAI, control: httpx.Client) -> None:
    one = oai.chat.completions.create(model="m", messages=ASK_WEATHER)
    control.delete("/_sim/stats")
    two = oai.chat.completions.create(model="m", messages=ASK_WEATHER, n=2)

    contents = [choice.message.content or "" for choice in two.choices]
    assert [choice.index for choice in two.choices] == [0, 1]
    assert contents[0] == one.choices[0].message.content and contents[0] != contents[1]
    assert two.usage is not None and two.usage.completion_tokens == sum(o200k(text) for text in contents)
    assert billed(control) == (two.usage.prompt_tokens, two.usage.completion_tokens)


def test_streamed_n_choices_rebuild_the_plain_ones(oai: openai.OpenAI) -> None:
    plain = oai.chat.completions.create(model="m", messages=ASK_WEATHER, n=3)
    with oai.chat.completions.stream(model="m", messages=ASK_WEATHER, n=3) as stream:
        final = stream.get_final_completion()

    assert [c.message.content for c in final.choices] == [c.message.content for c in plain.choices]


def test_logprobs_have_the_api_shape_and_rebuild_the_content(oai: openai.OpenAI) -> None:
    choice = oai.chat.completions.create(model="m", messages=ASK_WEATHER, logprobs=True, top_logprobs=3).choices[0]

    assert choice.logprobs is not None and choice.logprobs.content is not None
    entries = choice.logprobs.content
    assert b"".join(bytes(entry.bytes or []) for entry in entries).decode() == choice.message.content
    assert all(len(entry.top_logprobs) == 3 and entry.top_logprobs[0].token == entry.token for entry in entries)
    assert all(entry.logprob <= 0 and entry.top_logprobs[1].logprob < entry.logprob for entry in entries)


def test_a_request_seed_picks_the_words_and_repeats(oai: openai.OpenAI) -> None:
    def answer(seed: int) -> str:
        return oai.chat.completions.create(model="m", messages=ASK_WEATHER, seed=seed).choices[0].message.content or ""

    assert answer(11) == answer(11) != answer(12)


def test_a_repeated_long_prefix_reports_cached_tokens(oai: openai.OpenAI) -> None:
    long_system = "Policy clause about refunds and shipping. " * 200  # about 1,400 tokens
    messages: list[ChatCompletionMessageParam] = [{"role": "system", "content": long_system}, *ASK_WEATHER]

    first = oai.chat.completions.create(model="m", messages=messages).usage
    second = oai.chat.completions.create(model="m", messages=messages).usage
    other = oai.chat.completions.create(model="m", messages=[*messages[:1], {"role": "user", "content": "Hi"}]).usage

    assert first is not None and second is not None and other is not None
    assert first.prompt_tokens_details is not None and first.prompt_tokens_details.cached_tokens == 0
    cached = [u.prompt_tokens_details.cached_tokens for u in (second, other) if u.prompt_tokens_details]
    assert cached[0] is not None and 1024 <= cached[0] <= second.prompt_tokens and (cached[0] - 1024) % 128 == 0
    # The shared system prompt stays cached when only the question changes.
    assert cached[1] is not None and 1024 <= cached[1] <= cached[0]
    assert second.completion_tokens_details is not None and second.completion_tokens_details.reasoning_tokens == 0


@pytest.mark.parametrize(("detail", "tokens"), [("low", 85), ("high", 765), ("auto", 765)])
def test_an_image_part_bills_the_documented_figure(oai: openai.OpenAI, detail: str, tokens: int) -> None:
    content = [
        {"type": "text", "text": "What is in this picture?"},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png", "detail": detail}},
    ]
    usage = oai.chat.completions.create(
        model="m", messages=[{"role": "user", "content": content}], max_completion_tokens=5  # type: ignore[misc,list-item]
    ).usage

    assert usage is not None and usage.prompt_tokens == 1 + o200k("What is in this picture?") + tokens + 3 + 3


def test_embeddings_float_base64_and_token_ids_agree(oai: openai.OpenAI, azure: openai.AzureOpenAI) -> None:
    texts = ["quarterly revenue grew", "the harbour master"]
    floats = oai.embeddings.create(model="e", input=texts, encoding_format="float")
    decoded = azure.embeddings.create(model="emb-dep", input=texts, dimensions=64)  # the SDK asks for base64
    ids = oai.embeddings.create(model="e", input=[O200K.encode(text) for text in texts], encoding_format="float")

    assert decoded.model == "simulator-emb-dep" and len(decoded.data[0].embedding) == 64
    assert [d.embedding for d in ids.data] == [d.embedding for d in floats.data]
    default = oai.embeddings.create(model="e", input=texts)  # base64 on the wire, floats for the caller
    for got, want in zip(default.data, floats.data, strict=True):
        assert got.embedding == pytest.approx(want.embedding, abs=1e-6)  # float32 on the wire
    assert floats.usage.prompt_tokens == ids.usage.prompt_tokens == sum(o200k(text) for text in texts)


def test_models_list_on_both_routes(oai: openai.OpenAI, simulator: SimulatorProcess) -> None:
    ids = [model.id for model in oai.models.list()]
    azure = httpx.get(f"{simulator.url}/openai/models?api-version=2024-10-21", headers={"api-key": "k"})

    assert "gpt-4o-mini" in ids and "text-embedding-3-small" in ids
    assert [model["id"] for model in azure.json()["data"]] == ids


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
