"""The typed failures of a model call, raised where each is known: by the wire (an error status, a
transport error, a stream's error event) and by the kernel adapter for the openai SDK's own."""

from __future__ import annotations

import email.utils
import math
import re
import time
from collections.abc import Mapping
from typing import Any

import httpx2

# The statuses that say the endpoint, not the request, failed: another attempt may succeed.
_FAILING = frozenset({408, 500, 502, 503, 504})
_REQUEST_ID = re.compile(r"[A-Za-z0-9_.:-]{1,128}")


class UpstreamError(Exception):
    """A model call failed. Never shown to a client: its message carries no provider text, and
    `body` (the provider's own words: parsed JSON, else text) is kept for classification only."""

    def __init__(self, message: str, body: object = None) -> None:
        super().__init__(message)
        self.body = body


class ErrorStatus(UpstreamError):
    """The endpoint answered with an error status. `request_id` is the provider's id of the request
    (for the client to quote), `retry_after_s` its Retry-After, each read once from the headers."""

    def __init__(self, status: int, headers: Mapping[str, str], body: object) -> None:
        super().__init__(f"the model endpoint answered with status {status}", body)
        self.status = status
        self.request_id = upstream_request_id(headers)
        self.retry_after_s = retry_after_seconds(headers)


class EndpointRefused(ErrorStatus):
    """Any other error status (a 4xx but 401, 403, 408 and 429; a 5xx such as 501): the request
    itself is refused, and another endpoint would refuse it too."""

    @property
    def refusal(self) -> Mapping[str, Any] | None:
        """The provider's `error` object, for shared/upstream/failures.provider_error to clean."""
        error = self.body.get("error") if isinstance(self.body, Mapping) else None
        return error if isinstance(error, Mapping) else None


class CredentialsRefused(ErrorStatus):
    """401 or 403: our credentials are wrong for this endpoint (a rotated key was already re-read
    once, wire.KeyRefreshTransport); it is not asked again in this request."""


class EndpointThrottled(ErrorStatus):
    """429: the endpoint's rate limit; it is parked for its Retry-After, its breaker left alone."""


class EndpointFailed(ErrorStatus):
    """408 or 500/502/503/504: the endpoint failed (from a 5xx, the provider may have started work)."""


class EndpointUnreachable(UpstreamError):
    """No answer, and nothing the provider could have billed: the connection was refused or could
    not be made, the request could not be written, or a transport error of that kind."""


class ConnectionDropped(UpstreamError):
    """The connection closed with no answer begun (a keep-alive connection the server had closed,
    a reset): the provider may have seen the request, but sent nothing it bills."""


class EndpointTimedOut(UpstreamError):
    """No byte for the client's timeout (MODEL_TIMEOUT_S, or a call's own bound): the provider may
    be working on the request, and may bill it. Any of httpx2's timeouts, a connection's included,
    is counted so: what the meter charged before the tree."""


class AnswerCut(UpstreamError):
    """The answer had begun (a 200) and its body broke before its end: the provider bills it."""


class StreamErrorEvent(UpstreamError):
    """A stream carried an error event after its 200; `body` is the event's error. Before any
    content the provider bills nothing (the openai SDK's APIError for it was never charged)."""

    def __init__(self, body: object) -> None:
        super().__init__("the model endpoint's stream carried an error event", body)


def status_error(status: int, headers: Mapping[str, str], body: object) -> ErrorStatus:
    """The error a status answers for."""
    if status in (401, 403):
        return CredentialsRefused(status, headers, body)
    if status == 429:
        return EndpointThrottled(status, headers, body)
    if status in _FAILING:
        return EndpointFailed(status, headers, body)
    return EndpointRefused(status, headers, body)


def transport_error(exc: httpx2.HTTPError) -> UpstreamError:
    """httpx2's failure as the tree's (raised `from exc`)."""
    if isinstance(exc, httpx2.TimeoutException):
        return EndpointTimedOut("the model endpoint timed out")
    if isinstance(exc, httpx2.RemoteProtocolError | httpx2.ReadError):
        # h11's words for a response whose body was cut after it began.
        if "message body" in str(exc):
            return AnswerCut("the model endpoint's answer was cut")
        return ConnectionDropped("the model endpoint closed the connection without answering")
    return EndpointUnreachable("the model endpoint could not be reached")


def upstream_request_id(headers: Mapping[str, str]) -> str | None:
    """The provider's id of a request: OpenAI's and Azure's `x-request-id`, else Azure API
    Management's `apim-request-id`; only if it looks like an id (it goes into a header of ours)."""
    # httpx2's headers ignore case already (every answer's pays this); a plain mapping is lowered.
    lowered = headers if isinstance(headers, httpx2.Headers) else {k.lower(): v for k, v in headers.items()}
    for name in ("x-request-id", "apim-request-id"):
        value = lowered.get(name, "")
        if _REQUEST_ID.fullmatch(value):
            return value
    return None


def retry_after_seconds(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Retry-After in any form providers send: `retry-after-ms`, `x-ms-retry-after-ms`,
    `retry-after` as seconds or as an HTTP date."""
    lowered = {k.lower(): v for k, v in headers.items()}
    for name in ("retry-after-ms", "x-ms-retry-after-ms"):
        try:
            value = float(lowered[name]) / 1000.0
        except (KeyError, ValueError):
            continue
        if math.isfinite(value) and value >= 0:
            return value
    raw = lowered.get("retry-after")
    if raw is None:
        return None
    try:
        value = float(raw)
        return value if math.isfinite(value) and value >= 0 else None
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))
