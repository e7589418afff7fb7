"""Estimates never undercount (issue #8): a property test of every prompt the gateway builds,
against the simulator's billing (OpenAI's recipe with the model's real tokenizer)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.core.errors import BadRequest
from shared.core.tokens import prompt_tokens, request_prompt_tokens
from shared.pipeline.openai_path import Limits, completion_cap
from shared.upstream.prompts import render_summarize
from tools.simulator.prompt import count_prompt_tokens
from tools.simulator.prompt import prompt_tokens as sim_prompt_tokens
from tools.simulator.schemas import ChatRequest as SimChatRequest

MODEL = "gpt-4o-mini"
# Template syntax, markup, entities, emoji, combining marks, control and whitespace characters:
# what a hostile tenant sends to make a text cost more than it looks.
HOSTILE = st.one_of(
    st.sampled_from(["{{$max_words}}", "{{$style}}", "{{$text}}", "{{ }}", "{{", "}}", "<message role=\"system\">",
                     "&amp;", "&#x1F600;", "\u200b", "\r\n", "\t", "🧜‍♀️", "é", "e\u0301", " " * 7, "ـ", "日本語"]),
    st.text(min_size=1, max_size=12),
)
TEXTS = st.lists(HOSTILE, min_size=1, max_size=60).map("".join)


@settings(max_examples=300, deadline=None)
@given(text=TEXTS, style=st.sampled_from(["concise", "detailed", "bullets"]), max_words=st.integers(1, 2000))
def test_a_summarize_estimate_is_at_least_what_the_provider_bills(text: str, style: str, max_words: int) -> None:
    sent = render_summarize(text, style, max_words)
    assert text in sent, "the text reaches the model literally"
    assert prompt_tokens(MODEL, [("user", sent)]) >= count_prompt_tokens([("user", sent)])


@settings(max_examples=300, deadline=None)
@given(messages=st.lists(st.tuples(st.sampled_from(["system", "user", "assistant"]), TEXTS), min_size=1, max_size=8))
def test_a_chat_estimate_is_at_least_what_the_provider_bills(messages: list[tuple[str, str]]) -> None:
    assert prompt_tokens(MODEL, messages) >= count_prompt_tokens(messages)


# --- the OpenAI-compatible path: whole bodies, with tools, tool calls, names, images and schemas ---
WORDS = st.lists(HOSTILE, min_size=1, max_size=8).map("".join)
SCHEMA = st.fixed_dictionaries({"type": st.just("object"), "properties": st.dictionaries(
    st.text("abcdefghij_", min_size=1, max_size=8), st.sampled_from([{"type": "string"}, {"type": "integer"},
                                                                      {"enum": ["a", "b"]}]), max_size=4)})
TOOL = st.builds(lambda name, description, parameters, strict: {
    "type": "function", "function": {"name": name, "description": description, "parameters": parameters,
                                     **({"strict": True} if strict else {})}},
    st.from_regex(r"[a-z_]{1,20}", fullmatch=True), WORDS, SCHEMA, st.booleans())
CALL = st.builds(lambda i, name, arguments: {"id": f"call_{i}", "type": "function",
                                             "function": {"name": name, "arguments": arguments}},
                 st.integers(0, 99), st.from_regex(r"[a-z_]{1,20}", fullmatch=True), WORDS)
IMAGE_URL = "https://x.invalid/a.png"
PART = st.one_of(st.builds(lambda t: {"type": "text", "text": t}, WORDS),
                 st.builds(lambda d: {"type": "image_url", "image_url": {"url": IMAGE_URL, "detail": d}},
                           st.sampled_from(["low", "high", "auto"])))
NAME = st.one_of(st.none(), st.from_regex(r"[a-z]{1,10}", fullmatch=True))
MESSAGE = st.one_of(
    st.builds(lambda r, c: {"role": r, "content": c}, st.sampled_from(["system", "developer", "user"]), WORDS),
    st.builds(lambda parts, name: {"role": "user", "content": parts, **({"name": name} if name else {})},
              st.lists(PART, min_size=1, max_size=4), NAME),
    st.builds(lambda calls, c: {"role": "assistant", "content": c, "tool_calls": calls},
              st.lists(CALL, min_size=1, max_size=3), st.one_of(st.none(), WORDS)),
    st.builds(lambda c: {"role": "tool", "tool_call_id": "call_1", "content": c}, WORDS),
)
FORMAT = st.one_of(st.none(), st.just({"type": "json_object"}), st.builds(
    lambda name, schema, strict: {"type": "json_schema", "json_schema": {"name": name, "schema": schema,
                                                                         "strict": strict}},
    st.from_regex(r"[a-z_]{1,12}", fullmatch=True), SCHEMA, st.booleans()))


@settings(max_examples=300, deadline=None)
@given(messages=st.lists(MESSAGE, min_size=1, max_size=6), tools=st.lists(TOOL, max_size=4), response_format=FORMAT)
def test_an_openai_body_estimate_is_at_least_what_the_simulator_bills(
        messages: list[dict[str, Any]], tools: list[dict[str, Any]], response_format: dict[str, Any] | None) -> None:
    body: dict[str, Any] = {"model": MODEL, "messages": messages}
    if tools:
        body["tools"] = tools
    if response_format:
        body["response_format"] = response_format
    billed = len(sim_prompt_tokens(SimChatRequest.model_validate(body)))
    assert request_prompt_tokens(MODEL, body) >= billed


# --- issue #19, finding 3: a schema where no recipe looked, and one too large for the model ---
def hidden_schema_body(properties: int) -> dict[str, Any]:
    fields = {f"field_{i}": {"type": "string", "description": f"Note {i} on the tides."} for i in range(properties)}
    schema = {"type": "object", "properties": fields}
    return {"model": MODEL, "messages": [{"role": "user", "content": "Say hello."}], "max_tokens": 16,
            "response_format": {"type": "text", "json_schema": {"name": "notes", "schema": schema}}}


def test_a_schema_under_type_text_is_counted_at_least_at_its_bill() -> None:
    body = hidden_schema_body(2000)
    billed = len(sim_prompt_tokens(SimChatRequest.model_validate(body)))
    estimate = request_prompt_tokens(MODEL, body)
    assert billed > 20_000, "the simulator bills a schema whatever the format's type"
    assert estimate >= billed
    # At a token a byte: the schema's JSON, not its token count (a provider's rendering is unknown).
    assert estimate >= len(json.dumps(body["response_format"]["json_schema"], separators=(",", ":")))


def test_an_800_kb_hidden_schema_is_refused_for_the_context_window() -> None:
    body = hidden_schema_body(16_000)
    assert len(json.dumps(body)) > 800_000
    with pytest.raises(BadRequest, match="context_window of 128000"):
        completion_cap(body, request_prompt_tokens(MODEL, body), Limits(128_000, 16_384), None)


def test_parameters_that_are_never_prompt_text_cost_nothing_and_the_rest_a_token_a_byte() -> None:
    plain: dict[str, Any] = {"model": MODEL, "messages": [{"role": "user", "content": "Say hello."}]}
    parameters = {"temperature": 0.2, "top_p": 0.9, "seed": 7, "user": "u-1", "metadata": {"k": "v" * 500},
                  "logit_bias": {"1000": -5}, "store": False, "max_tokens": 9, "n": 2, "stream": True}
    assert request_prompt_tokens(MODEL, {**plain, **parameters}) == request_prompt_tokens(MODEL, plain)
    for member in ({"x_instructions": "Ignore the budget. " * 50}, {"stop": ["zzz"]},
                   {"prediction": {"type": "content", "content": "x" * 999}},
                   {"web_search_options": {"user_location": {"city": "Oslo"}}}):
        added = request_prompt_tokens(MODEL, {**plain, **member}) - request_prompt_tokens(MODEL, plain)
        assert added == len(json.dumps(member, separators=(",", ":")).encode()), member
