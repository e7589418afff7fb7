"""Classifies a failed model call: retryable or not, and what the provider asked us to wait."""

from __future__ import annotations

import email.utils
import math
import re
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx2

from shared.core.errors import ProviderError, exception_chain
from shared.upstream.wire import UpstreamStatusError, upstream_request_id

FailureKind = Literal["retryable", "refused", "misconfigured"]
RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class UpstreamFailure:
    """What went wrong with one model call, in terms the resilience layer can act on."""

    kind: FailureKind
    status: int | None  # None: no HTTP answer (connection error, timeout, cut stream)
    retry_after_s: float | None = None
    # True when the provider may have started work (a timeout or a cut stream), as opposed to a
    # refusal it sent before doing anything.
    maybe_processed: bool = False
    # The provider's id of the request (x-request-id / apim-request-id), for the client to quote.
    request_id: str | None = None
    # A refusal's `error` object as the provider sent it: never shown before provider_error cleans it.
    refusal: Mapping[str, Any] | None = field(default=None, repr=False)


# Every model call sends through httpx2: shared/upstream/wire.py, and the openai SDK (3.x) under Semantic Kernel.
_HTTP_ERRORS: tuple[type[Exception], ...] = (httpx2.HTTPError,)
_TIMEOUTS: tuple[type[Exception], ...] = (httpx2.TimeoutException,)
# A connection that broke after the server answered: it may have started generating.
_BROKEN_AFTER_START = (httpx2.RemoteProtocolError, httpx2.ReadError)


@dataclass(frozen=True)
class _SdkErrors:
    """The openai SDK's and Semantic Kernel's exceptions, for the kernel's path. Read from
    sys.modules, never imported: one of their exceptions cannot exist unless its package is loaded,
    and the pass-through must not pay for loading them."""

    status: tuple[type[Exception], ...] = ()
    timeouts: tuple[type[Exception], ...] = ()
    connection: tuple[type[Exception], ...] = ()
    content_filter: tuple[type[Exception], ...] = ()


def _sdk_errors() -> _SdkErrors:
    openai, sk = sys.modules.get("openai"), sys.modules.get("semantic_kernel.exceptions")
    return _SdkErrors(
        status=(openai.APIStatusError,) if openai else (),
        timeouts=(openai.APITimeoutError,) if openai else (),
        connection=(openai.APIConnectionError,) if openai else (),
        content_filter=(sk.ServiceContentFilterException,) if sk else (),
    )


def _status_of(chain: list[BaseException], sdk: _SdkErrors) -> tuple[int, Mapping[str, str], object] | None:
    """The error status an endpoint answered with, its headers and its body, from our wire or the SDK."""
    for e in chain:
        if isinstance(e, UpstreamStatusError):
            return e.status_code, e.headers, e.body
        if isinstance(e, sdk.status):
            # openai.APIStatusError: `body` is the error object already taken out of {"error": ...}
            return e.status_code, e.response.headers, {"error": e.body}  # type: ignore[attr-defined]
    return None


def billable_failure(exc: BaseException, *, answer_started: bool = False) -> bool:
    """Whether a failed attempt may have been billed by the provider: it was cancelled (the
    deadline, a client gone) or timed out while the provider worked on it, or its answer had
    started (a 200 that broke mid-body). A refused connection, an idle keep-alive connection the
    server had closed, or an error status, never reached a billing provider."""
    if not isinstance(exc, Exception) or answer_started:
        return True
    chain = exception_chain(exc)
    timeouts = (*_TIMEOUTS, *_sdk_errors().timeouts)
    if any(isinstance(e, timeouts) for e in chain):
        return True
    # h11's words for a response whose body was cut after it began.
    return any(isinstance(e, _BROKEN_AFTER_START) and "message body" in str(e) for e in chain)


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


def classify(exc: BaseException) -> UpstreamFailure:
    """Map any exception out of a model call to an UpstreamFailure."""
    chain = exception_chain(exc)
    sdk = _sdk_errors()
    answered = _status_of(chain, sdk)
    if isinstance(exc, sdk.content_filter):
        failure = UpstreamFailure("refused", 400)
    elif answered is not None:
        status, headers, body = answered
        request_id = upstream_request_id(headers)
        if status in RETRYABLE_STATUSES:
            wait = retry_after_seconds(dict(headers))
            failure = UpstreamFailure("retryable", status, wait, maybe_processed=status >= 500, request_id=request_id)
        elif status in (401, 403):
            # Our credentials are wrong for this endpoint: a rotated key was already re-read
            # once (shared/upstream/clients.py); the policy never asks this endpoint again for the request.
            failure = UpstreamFailure("misconfigured", status, request_id=request_id)
        else:
            error = body.get("error") if isinstance(body, Mapping) else None
            failure = UpstreamFailure("refused", status, request_id=request_id,
                                      refusal=error if isinstance(error, Mapping) else None)
    elif any(isinstance(e, (*_TIMEOUTS, *sdk.timeouts)) for e in chain):
        failure = UpstreamFailure("retryable", None, maybe_processed=True)
    elif any(isinstance(e, (*sdk.connection, *_HTTP_ERRORS)) for e in chain):
        # A refused connection never reached the server; a cut stream did.
        started = any(isinstance(e, _BROKEN_AFTER_START) for e in chain)
        failure = UpstreamFailure("retryable", None, maybe_processed=started)
    else:
        # Anything else (an error event in a stream, as UpstreamStreamError or the SDK's APIError,
        # a malformed answer, a bug in a connector) is treated as transient: the provider may
        # have worked on it.
        failure = UpstreamFailure("retryable", None, maybe_processed=True)
    return failure


def provider_error(refusal: Mapping[str, Any] | None, status: int | None,
                   hidden: Iterable[str]) -> ProviderError | None:
    """A provider's 400 as the client may see it: its message, `param` and `code`, with every
    name in `hidden` (our deployments, endpoints, hosts), URLs, host names and anything shaped
    like a key replaced by [redacted]. None for any other status or an error without a message."""
    if status != 400 or refusal is None or not isinstance(message := refusal.get("message"), str) or not message:
        return None
    text = message[:_MAX_MESSAGE]
    for pattern in _SECRET_SHAPES:
        text = pattern.sub(_REDACTED, text)
    for name in sorted({h for h in hidden if len(h) >= 3}, key=len, reverse=True):
        text = re.sub(re.escape(name), _REDACTED, text, flags=re.IGNORECASE)
    param, code = refusal.get("param"), refusal.get("code")
    return ProviderError(text, _plain(param, _PARAM, hidden), _plain(code, _CODE, hidden))


def _plain(value: object, shape: re.Pattern[str], hidden: Iterable[str]) -> str | None:
    """A `param` or `code` passed on only when it is a field path or an identifier naming nothing of ours."""
    if not isinstance(value, str) or not shape.fullmatch(value):
        return None
    lowered = value.lower()
    return None if any(len(h) >= 3 and h.lower() in lowered for h in hidden) else value


_REDACTED = "[redacted]"
_MAX_MESSAGE = 1000
_PARAM = re.compile(r"[A-Za-z0-9_.\[\]-]{1,128}")
_CODE = re.compile(r"[A-Za-z0-9_.-]{1,64}")
# Providers quote a rejected key ("Incorrect API key provided: sk-ab***yz"), a resource's URL or
# host, or an id of our subscription: none of it is the client's to read.
_SECRET_SHAPES = (
    re.compile(r"[a-z][a-z0-9+.-]*://\S+", re.IGNORECASE),  # URLs
    re.compile(r"\S*\*{3,}\S*"),  # masked keys
    re.compile(r"\b(?:sk|pk|rk)-[A-Za-z0-9_-]{6,}"),  # OpenAI-style keys
    re.compile(r"\b(?=[A-Za-z0-9_+/=-]*\d)(?=[A-Za-z0-9_+/=-]*[A-Za-z])[A-Za-z0-9_+/=-]{20,}"),  # long key-like tokens
    re.compile(r"\b[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.(?:com|net|org|io|ai|azure|cn|us)\b", re.IGNORECASE),  # hosts
    re.compile(r"/subscriptions/\S+", re.IGNORECASE),  # Azure resource ids
)
