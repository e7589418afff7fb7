"""Classifying model-call failures, with the SDK's real exception types."""

from __future__ import annotations

import email.utils

import httpx2
import openai
import pytest

from shared.upstream import classify, retry_after_seconds

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
