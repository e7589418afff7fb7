"""The pass-through's wire helpers and limits: cache keys, finish reasons, streams assembled and
replayed, the semantic cache's view, and the completion cap from the model and the tenant."""

from __future__ import annotations

from typing import Any

import pytest

from shared.core.errors import BadRequest
from shared.pipeline.openai_path import Limits, completion_cap, embedding_tokens
from shared.upstream.protocol import assemble, billed_text, cache_key, finish_of, replay, semantic_view

BODY: dict[str, Any] = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "temperature": 0.5}
LIMITS = Limits(context_window=1000, max_output_tokens=300)
CHUNKS: list[dict[str, Any]] = [
    {"id": "a", "object": "chat.completion.chunk", "model": "sim", "choices": [
        {"index": 0, "delta": {"role": "assistant", "content": None, "tool_calls": [
            {"index": 0, "id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": ""}}]},
         "finish_reason": None}]},
    {"id": "a", "object": "chat.completion.chunk", "model": "sim", "choices": [
        {"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": '{"city":'}}]},
         "finish_reason": None}]},
    {"id": "a", "object": "chat.completion.chunk", "model": "sim", "choices": [
        {"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": '"Oslo"}'}}]},
         "finish_reason": None}]},
    {"id": "a", "object": "chat.completion.chunk", "model": "sim", "choices": [
        {"index": 0, "delta": {}, "finish_reason": "tool_calls"}]},
    {"id": "a", "object": "chat.completion.chunk", "model": "sim", "choices": [],
     "usage": {"prompt_tokens": 10, "completion_tokens": 9, "total_tokens": 19}},
]


def test_the_cache_key_ignores_who_asks_and_how_it_is_delivered_but_nothing_else() -> None:
    base = cache_key(BODY)
    same = {**BODY, "stream": True, "stream_options": {"include_usage": True}, "user": "u", "metadata": {"a": 1},
            "safety_identifier": "s", "prompt_cache_key": "p", "store": True, "model": "other"}
    assert cache_key(same) == base
    assert cache_key(dict(reversed(list(BODY.items())))) == base, "key order never splits a key"
    change: dict[str, Any]
    for change in ({"tools": []}, {"tool_choice": "none"}, {"n": 2}, {"seed": 1}, {"stop": "x"}, {"logprobs": True},
                   {"temperature": 0.6}, {"response_format": {"type": "json_object"}}, {"frobnicate": 1}):
        assert cache_key({**BODY, **change}) != base, change


def test_one_finish_reason_for_all_choices() -> None:
    def response(*reasons: str) -> dict[str, Any]:
        return {"choices": [{"index": i, "finish_reason": r} for i, r in enumerate(reasons)]}

    assert finish_of(response("stop", "stop")) == "stop"
    assert finish_of(response("tool_calls")) == "tool_calls"
    assert finish_of(response("stop", "length")) == "length", "one cut choice makes the answer unfit to cache"


def test_a_stream_assembles_into_the_completion_it_stands_for() -> None:
    whole = assemble(CHUNKS)
    [choice] = whole["choices"]
    assert whole["object"] == "chat.completion" and whole["usage"]["total_tokens"] == 19
    assert choice["finish_reason"] == "tool_calls" and choice["message"]["content"] is None
    assert choice["message"]["tool_calls"] == [
        {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'}}]
    assert "".join(billed_text(c) for c in CHUNKS) == billed_text(whole) == 'get_weather{"city":"Oslo"}'


def test_a_replayed_completion_assembles_back_to_itself() -> None:
    whole = assemble(CHUNKS)
    assert assemble(replay(whole)) == whole


def test_the_semantic_cache_sees_only_plain_single_turn_text() -> None:
    view = semantic_view({**BODY, "messages": [{"role": "developer", "content": "be brief"},
                                               {"role": "user", "content": [{"type": "text", "text": "hi"}]}],
                          "stop": ["x"], "user": "u"})
    assert view == ([("system", "be brief"), ("user", "hi")], {"temperature": 0.5, "stop": ["x"]})
    change: dict[str, Any]
    for change in ({"tools": [{}]}, {"response_format": {"type": "json_object"}}, {"n": 2}, {"logprobs": True},
                   {"messages": [{"role": "user", "content": "hi", "name": "bob"}]},
                   {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]}):
        assert semantic_view({**BODY, **change}) is None, change


def test_the_completion_cap_is_the_clients_times_n_else_what_the_model_may_still_generate() -> None:
    assert completion_cap({"max_tokens": 100, "n": 3}, 50, LIMITS, None) == 300
    assert completion_cap({"max_tokens": 100, "max_completion_tokens": 80}, 50, LIMITS, None) == 80
    assert completion_cap({}, 50, LIMITS, None) == 300
    assert completion_cap({}, 800, LIMITS, None) == 200, "no more than the context window leaves"


@pytest.mark.parametrize(("body", "prompt", "tenant", "named"), [
    ({"max_tokens": 301}, 10, None, "max_output_tokens (300)"),
    ({"max_tokens": 300}, 701, None, "context_window of 1000"),
    ({}, 1000, None, "context_window of 1000"),
    ({"n": 2}, 10, 500, "max_request_tokens of 500"),
])
def test_a_request_that_cannot_fit_is_a_400_naming_the_limit(body: dict[str, Any], prompt: int, tenant: int | None,
                                                             named: str) -> None:
    with pytest.raises(BadRequest) as err:
        completion_cap(body, prompt, LIMITS, tenant)
    assert named in err.value.detail


def test_embedding_inputs_count_texts_and_token_ids() -> None:
    assert embedding_tokens("gpt-4o-mini", [1, 2, 3]) == 3
    assert embedding_tokens("gpt-4o-mini", [[1, 2], [3]]) == 3
    assert embedding_tokens("gpt-4o-mini", ["harbour", "pier"]) == 3


def test_a_cached_azure_answer_replays_as_azure_streams_it() -> None:
    filters = {"hate": {"filtered": False, "severity": "safe"}}
    prompt = [{"prompt_index": 0, "content_filter_results": filters}]
    answer = {"id": "x", "object": "chat.completion", "created": 7, "model": "m", "system_fingerprint": "fp",
              "prompt_filter_results": prompt,
              "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None, "content_filter_results": filters,
                           "message": {"role": "assistant", "content": "Hi.", "refusal": None, "annotations": []}}],
              "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}}
    chunks = replay(answer)
    head = {"id": "x", "object": "chat.completion.chunk", "created": 7, "model": "m", "system_fingerprint": "fp"}
    assert chunks == [
        {"choices": [], "created": 0, "id": "", "model": "", "object": "", "prompt_filter_results": prompt},
        {**head, "choices": [{"index": 0, "content_filter_results": {}, "logprobs": None, "finish_reason": None,
                              "delta": {"role": "assistant", "content": "", "refusal": None}}]},
        {**head, "choices": [{"index": 0, "content_filter_results": filters, "logprobs": None, "finish_reason": None,
                              "delta": {"content": "Hi."}}]},
        {**head, "choices": [{"index": 0, "content_filter_results": {}, "delta": {}, "logprobs": None,
                              "finish_reason": "stop"}]},
        {**head, "choices": [], "usage": answer["usage"]},
    ]
