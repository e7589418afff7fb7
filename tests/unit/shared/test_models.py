"""Request validation: bounds from docs/api.md, and OpenAI parameters we cannot honour are refused."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from shared.models import ChatRequest, OpenAIChatRequest, SummarizeRequest


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


def test_openai_requests_accept_what_sdks_send_by_default() -> None:
    req = OpenAIChatRequest.model_validate({
        "model": "gpt-4o-mini", "n": 1, "stream": True, "stream_options": {"include_usage": True},
        "messages": [{"role": "developer", "content": "be brief"},
                     {"role": "user", "content": [{"type": "text", "text": "hi "}, {"type": "text", "text": "there"}]}],
    })
    assert req.include_usage and req.messages[1].text() == "hi there"


@pytest.mark.parametrize("extra", [{"n": 2}, {"tools": [{"type": "function"}]}, {"logprobs": True},
                                   {"response_format": {"type": "json_object"}}, {"frobnicate": 1}])
def test_openai_parameters_we_cannot_honour_are_refused_not_ignored(extra: dict[str, Any]) -> None:
    with pytest.raises(ValidationError) as err:
        OpenAIChatRequest.model_validate({"messages": [{"role": "user", "content": "x"}], **extra})
    assert next(iter(extra)) in str(err.value)


def test_image_parts_are_refused() -> None:
    with pytest.raises(ValidationError):
        OpenAIChatRequest.model_validate({"messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "http://x"}}]}]})
