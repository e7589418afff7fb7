"""Which failed attempts a provider may have billed (issue #8): charged exactly those, no others."""

from __future__ import annotations

import asyncio

import httpx2
import openai
import pytest

from shared.upstream.errors import StreamErrorEvent, status_error, transport_error
from shared.upstream.failures import billable_failure
from shared.upstream.routing import sdk_error

REQUEST = httpx2.Request("POST", "http://model/chat/completions")
BODY_CUT = "peer closed connection without sending complete message body"
STALE = "Server disconnected without sending a response."


def wrapped(cause: Exception) -> openai.APIConnectionError:
    """How the openai SDK raises a transport error: its own exception, the transport's as cause."""
    try:
        raise openai.APIConnectionError(request=REQUEST) from cause
    except openai.APIConnectionError as exc:
        return exc


def sdk_status(status: int, headers: dict[str, str] | None = None) -> openai.APIStatusError:
    response = httpx2.Response(status, headers=headers or {}, request=REQUEST)
    return openai.APIStatusError(f"status {status}", response=response, body=None)


@pytest.mark.parametrize(("exc", "billed"), [
    (asyncio.CancelledError(), True),  # the deadline or a client gone while the provider worked
    # What the wire raises (the kernel adapter alike, below).
    (transport_error(httpx2.ReadTimeout("timed out")), True),
    (transport_error(httpx2.RemoteProtocolError(BODY_CUT)), True),
    (transport_error(httpx2.RemoteProtocolError(STALE)), False),
    (transport_error(httpx2.ConnectError("connection refused")), False),
    (status_error(503, {}, {"error": {}}), False),
    (status_error(429, {"retry-after": "2"}, "slow down"), False),
    # An error event after the 200 and before content: the SDK's APIError was not billed either.
    (StreamErrorEvent({"message": "overloaded"}), False),
    # The openai SDK's, as the kernel adapter turns them into the tree.
    (sdk_error(openai.APITimeoutError(request=REQUEST)), True),
    (sdk_error(wrapped(httpx2.RemoteProtocolError(BODY_CUT))), True),
    (sdk_error(wrapped(httpx2.RemoteProtocolError(STALE))), False),
    (sdk_error(wrapped(httpx2.ConnectError("connection refused"))), False),
    (sdk_error(sdk_status(503)), False),
    (sdk_error(sdk_status(429, {"retry-after": "2"})), False),
    (sdk_error(openai.APIError("overloaded", REQUEST, body=None)), False),
    (ValueError("a malformed answer"), False),
], ids=["cancelled", "timeout", "body-cut", "stale-keep-alive", "refused", "503", "429", "stream-error",
        "sdk-timeout", "sdk-body-cut", "sdk-stale-keep-alive", "sdk-refused", "sdk-503", "sdk-429",
        "sdk-stream-error", "malformed"])
def test_only_attempts_the_provider_may_have_processed_are_billed(exc: BaseException, billed: bool) -> None:
    assert billable_failure(exc) is billed


def test_a_stream_whose_answer_had_started_is_billed_whatever_broke_it() -> None:
    assert billable_failure(transport_error(httpx2.RemoteProtocolError(STALE)), answer_started=True)
