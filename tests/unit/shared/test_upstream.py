"""Classifying model-call failures: the tree the wire raises, and the openai SDK's real exceptions
as the kernel adapter turns them into it."""

from __future__ import annotations

import email.utils

import httpx2
import openai
import pytest
from semantic_kernel.exceptions import ServiceResponseException

from shared.upstream.errors import StreamErrorEvent, retry_after_seconds, status_error, transport_error
from shared.upstream.failures import UpstreamFailure, classify
from shared.upstream.routing import sdk_error

REQUEST = httpx2.Request("POST", "http://model/chat/completions")


def sdk_status(status: int, headers: dict[str, str] | None = None) -> openai.APIStatusError:
    response = httpx2.Response(status, headers=headers or {}, request=REQUEST)
    cls = {429: openai.RateLimitError, 400: openai.BadRequestError, 401: openai.AuthenticationError,
           500: openai.InternalServerError, 503: openai.InternalServerError}.get(status, openai.APIStatusError)
    return cls("upstream said something private", response=response, body={"message": "private"})


@pytest.mark.parametrize(("headers", "expected"), [
    ({"retry-after": "2"}, 2.0),
    ({"retry-after-ms": "1500"}, 1.5),
    ({"x-ms-retry-after-ms": "250", "retry-after": "9"}, 0.25),
    ({"Retry-After": "0"}, 0.0),
    ({"retry-after": "soon"}, None),
    ({"retry-after": "-3"}, None),
    ({}, None),
])
def test_retry_after_in_every_form_providers_send(headers: dict[str, str], expected: float | None) -> None:
    assert retry_after_seconds(headers) == expected


def test_retry_after_as_an_http_date() -> None:
    now = 1_700_000_000.0
    header = email.utils.formatdate(now + 30, usegmt=True)
    assert retry_after_seconds({"retry-after": header}, now=now) == pytest.approx(30, abs=1)


@pytest.mark.parametrize(("status", "expected"), [
    (429, ("retryable", 429, 3.0, False)), (500, ("retryable", 500, None, True)),
    (503, ("retryable", 503, 3.0, True)), (408, ("retryable", 408, None, False)),
    (400, ("refused", 400, None, False)), (404, ("refused", 404, None, False)),
    (501, ("refused", 501, None, False)),
    (401, ("misconfigured", 401, None, False)), (403, ("misconfigured", 403, None, False)),
])
def test_the_wires_status_error_is_classified_as_the_sdks(status: int, expected: tuple[object, ...]) -> None:
    headers = {"Retry-After": "3"} if status in (429, 503) else {}
    for exc in (status_error(status, headers, {"error": {"message": "private"}}),
                sdk_error(sdk_status(status, headers))):
        failure = classify(exc)
        assert (failure.kind, failure.status, failure.retry_after_s, failure.maybe_processed) == expected


def test_a_refusal_keeps_the_providers_error_object_for_provider_error_to_clean() -> None:
    for exc in (status_error(400, {}, {"error": {"message": "private"}}), sdk_error(sdk_status(400))):
        assert classify(exc).refusal == {"message": "private"}


def test_a_throttle_wrapped_by_semantic_kernel_keeps_its_retry_after() -> None:
    try:
        try:
            raise sdk_status(429, {"retry-after-ms": "2000"})
        except openai.APIStatusError as inner:
            raise ServiceResponseException("service failed to complete the prompt") from inner
    except ServiceResponseException as outer:
        failure = classify(sdk_error(outer))
    assert (failure.kind, failure.status, failure.retry_after_s) == ("retryable", 429, 2.0)
    assert not failure.maybe_processed


def test_timeouts_and_cut_streams_may_have_been_processed_refused_connections_not() -> None:
    assert classify(sdk_error(openai.APITimeoutError(request=REQUEST))).maybe_processed
    try:
        raise openai.APIConnectionError(request=REQUEST) from httpx2.ConnectError("refused")
    except openai.APIConnectionError as exc:
        assert not classify(sdk_error(exc)).maybe_processed
    assert not classify(sdk_error(openai.APIConnectionError(request=REQUEST))).maybe_processed
    assert classify(transport_error(httpx2.RemoteProtocolError("peer closed connection"))).maybe_processed
    assert not classify(transport_error(httpx2.ConnectError("refused"))).maybe_processed


def test_a_stream_error_event_is_transient_and_may_have_been_processed() -> None:
    # As the SDK's APIError for the same event was: the provider started answering.
    assert classify(StreamErrorEvent({"message": "overloaded"})) == UpstreamFailure(
        "retryable", None, maybe_processed=True)
    assert classify(sdk_error(openai.APIError("overloaded", REQUEST, body=None))) == classify(StreamErrorEvent(None))


def test_anything_else_is_transient() -> None:
    assert classify(ValueError("a malformed answer")) == UpstreamFailure("retryable", None, maybe_processed=True)
