"""Which failed attempts a provider may have billed (issue #8): charged exactly those, no others."""

from __future__ import annotations

import asyncio

import httpx2
import openai
import pytest

from shared.upstream.failures import billable_failure
from shared.upstream.wire import UpstreamStatusError, UpstreamStreamError
from tests.unit.resilience.helpers import api_error

REQUEST = httpx2.Request("POST", "http://model/chat/completions")


def wrapped(cause: Exception) -> openai.APIConnectionError:
    """How the openai SDK raises a transport error: its own exception, the transport's as cause."""
    try:
        raise openai.APIConnectionError(request=REQUEST) from cause
    except openai.APIConnectionError as exc:
        return exc


@pytest.mark.parametrize(("exc", "billed"), [
    (asyncio.CancelledError(), True),  # the deadline or a client gone while the provider worked
    (openai.APITimeoutError(request=REQUEST), True),
    (wrapped(httpx2.RemoteProtocolError("peer closed connection without sending complete message body")), True),
    (wrapped(httpx2.RemoteProtocolError("Server disconnected without sending a response.")), False),
    (wrapped(httpx2.ConnectError("connection refused")), False),
    (api_error(503), False),
    (api_error(429, {"retry-after": "2"}), False),
    # What shared/upstream/wire.py raises: the transport's own errors, unwrapped, and its status errors.
    (httpx2.ReadTimeout("timed out"), True),
    (httpx2.RemoteProtocolError("peer closed connection without sending complete message body"), True),
    (httpx2.ConnectError("connection refused"), False),
    (UpstreamStatusError(503, httpx2.Headers(), {"error": {}}), False),
    (UpstreamStatusError(429, httpx2.Headers({"retry-after": "2"}), "slow down"), False),
    # An error event after the 200 and before content: the SDK's APIError was not billed either.
    (UpstreamStreamError({"message": "overloaded"}), False),
], ids=["cancelled", "timeout", "body-cut", "stale-keep-alive", "refused", "503", "429",
        "wire-timeout", "wire-body-cut", "wire-refused", "wire-503", "wire-429", "wire-stream-error"])
def test_only_attempts_the_provider_may_have_processed_are_billed(exc: BaseException, billed: bool) -> None:
    assert billable_failure(exc) is billed


def test_a_stream_whose_answer_had_started_is_billed_whatever_broke_it() -> None:
    stale = wrapped(httpx2.RemoteProtocolError("Server disconnected without sending a response."))
    assert billable_failure(stale, answer_started=True)
