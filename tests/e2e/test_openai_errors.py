"""The openai SDK (and LangChain) against the running app: each error arrives as the exception
class, `code`, `param`, `type` and `request_id` the SDK's users branch on; a request throttled in
every region is retried by the SDK after the Retry-After and then answered."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import httpx2
import openai
import pytest

from shared.core.settings import hash_api_key
from tools.localenv import LocalStack

pytestmark = pytest.mark.e2e
KEY, RPM_KEY, TINY_KEY = "errors-key", "errors-rpm-key", "errors-tiny-key"
TENANTS = json.dumps([
    {"tenant": "errors", "keys": [{"id": "errors", "sha256": hash_api_key(KEY)}], "limits": {"cache_ttl_s": 0}},
    {"tenant": "errors-rpm", "keys": [{"id": "errors-rpm", "sha256": hash_api_key(RPM_KEY)}],
     "limits": {"cache_ttl_s": 0, "rpm": 1}},
    {"tenant": "errors-tiny", "keys": [{"id": "errors-tiny", "sha256": hash_api_key(TINY_KEY)}],
     "limits": {"cache_ttl_s": 0, "daily_tokens": 10}},
])
HI: list[openai.types.chat.ChatCompletionMessageParam] = [{"role": "user", "content": "Name a harbour."}]
HUGE: list[openai.types.chat.ChatCompletionMessageParam] = [
    {"role": "user", "content": " ".join(["harbour"] * 130_000)}]


@pytest.fixture(scope="module")
def app(stack: LocalStack) -> Iterator[str]:
    with stack.app_on_free_port("openai-errors", {"TENANTS": TENANTS}) as url:
        yield url


def clients(app: str, key: str = KEY, retries: int = 0, **kwargs: Any) -> list[openai.OpenAI]:
    """The OpenAI client and the Azure OpenAI client, both sync."""
    return [openai.OpenAI(base_url=f"{app}/api/v1", api_key=key, max_retries=retries, **kwargs),
            openai.AzureOpenAI(azure_endpoint=f"{app}/api", api_key=key, api_version="2024-10-21",
                               max_retries=retries, **kwargs)]


def raised(exc_type: type[openai.APIStatusError], call: Any) -> openai.APIStatusError:
    with pytest.raises(exc_type) as err:
        call()
    e = err.value
    # request_id is our correlation id: the SDK reads it from x-request-id.
    assert e.request_id and e.request_id == e.response.headers["x-correlation-id"]
    assert isinstance(e.code, str) or e.code is None
    return e


@pytest.mark.parametrize("kind", ["openai", "azure"])
def test_each_refusal_is_the_sdk_exception_with_its_code_param_and_type(app: str, kind: str) -> None:
    client = dict(zip(["openai", "azure"], clients(app), strict=True))[kind]
    chat = client.chat.completions

    e = raised(openai.AuthenticationError,
               lambda: clients(app, key="wrong")[kind == "azure"].chat.completions.create(model="chat", messages=HI))
    assert (e.code, e.type, e.param) == ("invalid_api_key", "invalid_request_error", None)
    assert e.response.headers["www-authenticate"]

    e = raised(openai.NotFoundError, lambda: chat.create(model="no-such-model", messages=HI))
    assert (e.code, e.type, e.param) == ("model_not_found", "invalid_request_error", "model")
    assert "no-such-model" in e.message

    e = raised(openai.BadRequestError, lambda: chat.create(model="chat", messages=HI, max_tokens=0))
    assert (e.code, e.type, e.param) == ("invalid_value", "invalid_request_error", "max_tokens")

    e = raised(openai.BadRequestError, lambda: chat.create(model="chat", messages=HUGE))
    assert (e.code, e.type, e.param) == ("context_length_exceeded", "invalid_request_error", "messages")

    e = raised(openai.BadRequestError, lambda: chat.create(model="chat", messages=HI, max_tokens=16_385))
    assert (e.code, e.param) == (None, "max_tokens") and "max_output_tokens (16384)" in e.message

    # The provider's own 400 (top_logprobs without logprobs), with its message, field and request id.
    e = raised(openai.BadRequestError, lambda: chat.create(model="chat", messages=HI, top_logprobs=2))
    assert (e.type, e.param) == ("invalid_request_error", "top_logprobs") and "logprobs" in e.message
    assert e.response.headers["x-upstream-request-id"]

    e = raised(openai.NotFoundError, lambda: client.embeddings.create(model="no-such-embeddings", input="x"))
    assert (e.code, e.param) == ("model_not_found", "model")


def test_rate_limit_and_budget_are_rate_limit_errors_with_their_codes(app: str) -> None:
    rpm = clients(app, key=RPM_KEY)[0].chat.completions
    first = None
    for _ in range(3):  # one request a minute: a second within the same minute is refused
        try:
            rpm.create(model="chat", messages=HI, max_tokens=4)
        except openai.RateLimitError as err:
            first = err
            break
    assert first is not None and first.request_id == first.response.headers["x-correlation-id"]
    assert (first.code, first.type, first.param) == ("rate_limit_exceeded", "rate_limit_error", None)
    assert 1 <= int(first.response.headers["retry-after"]) <= 60

    for tiny in clients(app, key=TINY_KEY):
        e = raised(openai.RateLimitError, lambda c=tiny: c.chat.completions.create(model="chat", messages=HI))
        assert (e.code, e.type) == ("insufficient_quota", "insufficient_quota")
        assert e.response.headers["x-should-retry"] == "false"


def _throttle(faults: dict[str, httpx.Client], count: int) -> None:
    for client in faults.values():
        client.post("/_sim/faults", json={"status": 429, "rate": 1.0, "retry_after_s": 1, "count": count}
                    ).raise_for_status()


def test_every_region_throttled_is_a_429_then_the_sdk_retries_after_it_and_is_answered(
        app: str, faults: dict[str, httpx.Client]) -> None:
    _throttle(faults, count=10)  # more than these two requests' attempts can use up
    for client in clients(app):
        e = raised(openai.RateLimitError, lambda c=client: c.chat.completions.create(model="chat", messages=HI))
        assert (e.code, e.type) == ("rate_limit_exceeded", "rate_limit_error")
        assert e.response.headers["retry-after"] == "1" and "x-should-retry" not in e.response.headers
        assert e.response.headers["x-upstream-request-id"]
    for control in faults.values():
        control.delete("/_sim/faults").raise_for_status()

    # Each region throttles its next two calls, then the fault clears itself: the first request's
    # attempts (a call or two in each region) are all refused; the SDK's retries are answered.
    _throttle(faults, count=2)
    statuses: list[tuple[int, str | None]] = []
    hooks = {"response": [lambda r: statuses.append((r.status_code, r.headers.get("retry-after")))]}
    with openai.OpenAI(base_url=f"{app}/api/v1", api_key=KEY, max_retries=2,
                       http_client=httpx2.Client(event_hooks=hooks)) as sdk:
        answer = sdk.chat.completions.with_raw_response.create(model="chat", messages=HI, max_tokens=8)
    assert statuses[0] == (429, "1") and statuses[-1][0] == 200, statuses
    assert answer.parse().choices[0].message.content
    assert answer.headers["x-request-id"] == answer.headers["x-correlation-id"]


def test_a_stream_cut_after_its_first_token_ends_in_an_error_event_with_a_string_code(
        app: str, faults: dict[str, httpx.Client]) -> None:
    for control in faults.values():
        control.post("/_sim/faults", json={"status": "drop_stream", "after_tokens": 3}).raise_for_status()
    sdk = clients(app)[0]
    with pytest.raises(openai.APIError) as err:
        for _ in sdk.chat.completions.create(model="chat", messages=HI, max_tokens=40, stream=True):
            pass
    assert not isinstance(err.value, openai.APIStatusError), "the 200 had begun: an error event, not a status"
    assert (err.value.code, err.value.type, err.value.param) == ("stream_interrupted", "server_error", None)
    assert isinstance(err.value.body, dict) and err.value.body.keys() == {"message", "type", "param", "code"}


def test_langchain_sees_context_length_exceeded_as_the_code_of_its_error(app: str) -> None:
    from langchain_openai import ChatOpenAI  # imported here: every worker collects this module, one runs it

    llm = ChatOpenAI(model="chat", base_url=f"{app}/api/v1", api_key=KEY, max_retries=0)
    # LangChain re-raises the SDK's BadRequestError as its own subclass, body and all.
    with pytest.raises(openai.BadRequestError) as err:
        llm.invoke(" ".join(["harbour"] * 130_000))
    assert err.value.code == "context_length_exceeded" and err.value.param == "messages"


def test_every_answer_names_the_providers_request_id_in_a_header_of_its_own(app: str) -> None:
    """Whole, streamed and embeddings: `x-request-id` is ours (the SDK's request_id), the
    provider's own id comes in `x-upstream-request-id`, so either side can be asked about a call."""
    with openai.OpenAI(base_url=f"{app}/api/v1", api_key=KEY, max_retries=0) as sdk:
        whole = sdk.chat.completions.with_raw_response.create(model="chat", messages=HI, max_tokens=8)
        with sdk.chat.completions.with_streaming_response.create(model="chat", messages=HI, max_tokens=8,
                                                                 stream=True) as streamed:
            streamed.read()
        embedded = sdk.embeddings.with_raw_response.create(model="embeddings", input="a harbour at dawn")
    for response in (whole, streamed, embedded):
        assert response.headers["x-request-id"] == response.headers["x-correlation-id"]
        upstream = response.headers.get("x-upstream-request-id")
        assert upstream and upstream != response.headers["x-request-id"], dict(response.headers)
