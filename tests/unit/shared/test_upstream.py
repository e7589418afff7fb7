"""Classifying model-call failures, with the SDK's real exception types."""

from __future__ import annotations

import email.utils

import httpx2
import openai
import pytest

from shared.upstream.failures import UpstreamFailure, classify, retry_after_seconds
from shared.upstream.wire import UpstreamStatusError, UpstreamStreamError

REQUEST = httpx2.Request("POST", "http://model/chat/completions")


def status_error(status: int, headers: dict[str, str] | None = None) -> openai.APIStatusError:
    response = httpx2.Response(status, headers=headers or {}, request=REQUEST)
    cls = {429: openai.RateLimitError, 400: openai.BadRequestError, 401: openai.AuthenticationError,
           500: openai.InternalServerError, 503: openai.InternalServerError}.get(status, openai.APIStatusError)
    return cls("upstream said something private", response=response, body=None)


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


@pytest.mark.parametrize(("status", "kind"), [(429, "retryable"), (500, "retryable"), (503, "retryable"),
                                              (400, "refused"), (404, "refused"), (401, "misconfigured")])
def test_statuses_map_to_what_the_resilience_layer_may_do(status: int, kind: str) -> None:
    assert classify(status_error(status)).kind == kind


def test_a_wrapped_throttle_keeps_its_retry_after() -> None:
    try:
        try:
            raise status_error(429, {"retry-after-ms": "2000"})
        except openai.APIStatusError as inner:
            raise RuntimeError("service failed to complete the prompt") from inner  # as Semantic Kernel wraps it
    except RuntimeError as outer:
        failure = classify(outer)
    assert (failure.kind, failure.status, failure.retry_after_s) == ("retryable", 429, 2.0)
    assert not failure.maybe_processed


def test_timeouts_and_cut_streams_may_have_been_processed_refused_connections_not() -> None:
    assert classify(openai.APITimeoutError(request=REQUEST)).maybe_processed
    try:
        raise openai.APIConnectionError(request=REQUEST) from httpx2.ConnectError("refused")
    except openai.APIConnectionError as exc:
        assert not classify(exc).maybe_processed
    assert classify(httpx2.RemoteProtocolError("peer closed connection")).maybe_processed


def wire_status(status: int, headers: dict[str, str] | None = None) -> UpstreamStatusError:
    return UpstreamStatusError(status, httpx2.Headers(headers or {}), {"error": {"message": "private"}})


@pytest.mark.parametrize(("status", "expected"), [
    (429, ("retryable", 429, 3.0, False)), (500, ("retryable", 500, None, True)),
    (503, ("retryable", 503, 3.0, True)), (408, ("retryable", 408, None, False)),
    (400, ("refused", 400, None, False)), (404, ("refused", 404, None, False)),
    (401, ("misconfigured", 401, None, False)), (403, ("misconfigured", 403, None, False)),
])
def test_the_wires_status_error_is_classified_as_the_sdks(status: int, expected: tuple[object, ...]) -> None:
    headers = {"Retry-After": "3"} if status in (429, 503) else {}
    for exc in (wire_status(status, headers), status_error(status, headers)):
        failure = classify(exc)
        assert (failure.kind, failure.status, failure.retry_after_s, failure.maybe_processed) == expected


def test_a_stream_error_event_is_transient_and_may_have_been_processed() -> None:
    # As the SDK's APIError for the same event was: the provider started answering.
    assert classify(UpstreamStreamError({"message": "overloaded"})) == UpstreamFailure(
        "retryable", None, maybe_processed=True)
    assert classify(openai.APIError("overloaded", REQUEST, body=None)) == classify(UpstreamStreamError(None))
