"""The official openai SDK, pointed at the app unchanged: OpenAI and Azure OpenAI, streamed and not."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import openai
import pytest

from tests.conftest import DEV_KEY, OTHER_KEY

pytestmark = pytest.mark.e2e
MESSAGES: list[openai.types.chat.ChatCompletionMessageParam] = [
    {"role": "system", "content": "You are a harbour pilot."},
    {"role": "user", "content": "Describe the tide tables for the north channel this week."},
]


def tokens(text: str) -> int:
    return len(re.findall(r"\w+|[^\w\s]", text))


@pytest.fixture
def oai(app_url: str) -> Iterator[openai.OpenAI]:
    client = openai.OpenAI(base_url=f"{app_url}/api/v1", api_key=DEV_KEY, max_retries=0)
    yield client
    client.close()


@pytest.fixture
def azure(app_url: str) -> Iterator[openai.AzureOpenAI]:
    client = openai.AzureOpenAI(azure_endpoint=f"{app_url}/api", api_key=DEV_KEY, api_version="2024-10-21",
                                max_retries=0)
    yield client
    client.close()


def test_openai_client_completes_a_chat(oai: openai.OpenAI) -> None:
    result = oai.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, max_tokens=40)
    choice = result.choices[0]
    assert choice.message.role == "assistant" and choice.message.content
    assert result.model.startswith("simulator-") and result.usage is not None
    assert result.usage.completion_tokens == tokens(choice.message.content)


def test_openai_client_streams_with_usage(oai: openai.OpenAI) -> None:
    stream = oai.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, max_tokens=25, stream=True,
                                         stream_options={"include_usage": True})
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    usage = chunks[-1].usage
    assert text and finish == ["length"]
    assert usage is not None and usage.completion_tokens == tokens(text) == 25


def test_azure_client_completes_a_chat(azure: openai.AzureOpenAI) -> None:
    result = azure.chat.completions.create(model="chat", messages=MESSAGES, max_tokens=30)
    assert result.choices[0].message.content and result.usage is not None and result.usage.total_tokens > 0


def test_azure_client_streams(azure: openai.AzureOpenAI) -> None:
    # Long enough to pass the default policy's redaction window (docs/safety.md: a stream's first
    # text is held back up to 256 characters), so the answer shows whether it streams.
    pieces = [c.choices[0].delta.content or "" for c in
              azure.chat.completions.create(model="chat", messages=MESSAGES, max_tokens=200, stream=True) if c.choices]
    assert len([p for p in pieces if p]) > 1, "the answer arrives in pieces, not one block"


def test_the_sdk_sees_auth_and_model_errors_as_their_types(app_url: str, oai: openai.OpenAI) -> None:
    bad = openai.OpenAI(base_url=f"{app_url}/api/v1", api_key="nope", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    with pytest.raises(openai.NotFoundError):
        oai.chat.completions.create(model="no-such-model", messages=MESSAGES)
    with pytest.raises(openai.BadRequestError) as err:
        oai.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, max_tokens=100_000)
    assert "max_output_tokens (16384)" in err.value.message and err.value.param == "max_tokens"


def test_a_stream_cut_mid_answer_ends_in_an_error_never_a_clean_finish(
        oai: openai.OpenAI, faults: dict[str, httpx.Client]) -> None:
    faults["primary"].post("/_sim/faults", json={"status": "drop_stream", "rate": 1.0, "after_tokens": 4})
    received: list[str] = []
    with pytest.raises(openai.APIError) as err:
        for chunk in oai.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, max_tokens=30, stream=True):
            if chunk.choices:
                received.append(chunk.choices[0].delta.content or "")
                assert chunk.choices[0].finish_reason is None, "no clean finish after a cut"
    assert tokens("".join(received)) == 4
    assert "cut off" in str(err.value)


def test_other_tenants_key_works_for_its_own_calls(app_url: str) -> None:
    other = openai.OpenAI(base_url=f"{app_url}/api/v1", api_key=OTHER_KEY, max_retries=0)
    assert other.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, max_tokens=5).choices
