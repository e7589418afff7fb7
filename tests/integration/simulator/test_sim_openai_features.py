"""Structured outputs, n, logprobs, seed, prompt caching, images and embeddings through the real openai SDK."""

from __future__ import annotations

import json
from enum import StrEnum

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam
from pydantic import BaseModel

from tests.integration.simulator.conftest import ASK_WEATHER, O200K, billed, o200k
from tools.simulator.process import SimulatorProcess

pytestmark = pytest.mark.usefixtures("control")




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


