"""Request validation: bounds from docs/api.md, and OpenAI parameters we cannot honour are refused."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from shared.core.models import ChatRequest, OpenAIChatRequest, SummarizeRequest


def fields_of(exc: ValidationError) -> set[str]:
    return {".".join(str(p) for p in e["loc"]) for e in exc.errors()}


@pytest.mark.parametrize(("body", "field"), [
    ({"text": ""}, "text"),
    ({"text": "x" * 100_001}, "text"),
    ({"text": "ok", "max_words": 0}, "max_words"),
    ({"text": "ok", "max_words": "12"}, "max_words"),
    ({"text": "ok", "style": "poem"}, "style"),
    ({"text": "ok", "colour": "red"}, "colour"),
])
def test_summarize_bounds_name_the_field(body: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as err:
        SummarizeRequest.model_validate(body)
    assert field in fields_of(err.value)


def test_summarize_defaults() -> None:
    req = SummarizeRequest.model_validate({"text": "t"})
    assert (req.style, req.max_words) == ("concise", 150)


@pytest.mark.parametrize(("body", "field"), [
    ({"messages": []}, "messages"),
    ({"messages": [{"role": "user", "content": "x"}] * 51}, "messages"),
    ({"messages": [{"role": "tool", "content": "x"}]}, "messages.0.role"),
    ({"messages": [{"role": "user", "content": "x" * 32_001}]}, "messages.0.content"),
    ({"messages": [{"role": "user", "content": "x"}], "temperature": 2.5}, "temperature"),
    ({"messages": [{"role": "user", "content": "x"}], "max_tokens": 4097}, "max_tokens"),
])
def test_chat_bounds_name_the_field(body: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as err:
        ChatRequest.model_validate(body)
    assert field in fields_of(err.value)


def test_openai_requests_accept_what_sdks_send() -> None:
    req = OpenAIChatRequest.model_validate({
        "model": "gpt-4o-mini", "n": 2, "stream": True, "stream_options": {"include_usage": True},
        "tools": [{"type": "function", "function": {"name": "f"}}], "frobnicate": 1,
        "messages": [{"role": "developer", "content": "be brief"},
                     {"role": "assistant", "content": None, "tool_calls": [{"id": "c", "type": "function"}]},
                     {"role": "tool", "tool_call_id": "c", "content": "x" * 40_000},
                     {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "http://x"}}]}],
    })
    assert req.include_usage and req.n == 2 and len(req.messages) == 4


@pytest.mark.parametrize(("body", "field"), [
    ({"messages": []}, "messages"),
    ({"messages": [{"content": "x"}]}, "messages.0.role"),
    ({"messages": [{"role": "user", "content": "x"}], "max_tokens": 0}, "max_tokens"),
    ({"messages": [{"role": "user", "content": "x"}], "max_completion_tokens": "9"}, "max_completion_tokens"),
    ({"messages": [{"role": "user", "content": "x"}], "n": 129}, "n"),
    ({"messages": [{"role": "user", "content": "x"}], "stream_options": "yes"}, "stream_options"),
])
def test_what_the_gateway_reads_is_validated_naming_the_field(body: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as err:
        OpenAIChatRequest.model_validate(body)
    assert field in fields_of(err.value)
