"""Classifies a failed model call: retryable or not, and what the provider asked us to wait."""

from __future__ import annotations

import email.utils
import math
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import httpx2

from shared.errors import exception_chain
from shared.wire import UpstreamStatusError

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


# Every model call sends through httpx2: shared/wire.py, and the openai SDK (3.x) under Semantic Kernel.
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


def _status_of(chain: list[BaseException], sdk: _SdkErrors) -> tuple[int, Mapping[str, str]] | None:
    """The error status an endpoint answered with, and its headers, from our wire or the SDK."""
    for e in chain:
        if isinstance(e, UpstreamStatusError):
            return e.status_code, e.headers
        if isinstance(e, sdk.status):
            return e.status_code, e.response.headers  # type: ignore[attr-defined]  # openai.APIStatusError
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
        status, headers = answered
        if status in RETRYABLE_STATUSES:
            wait = retry_after_seconds(dict(headers))
            failure = UpstreamFailure("retryable", status, wait, maybe_processed=status >= 500)
        elif status in (401, 403):
            # Our credentials are wrong for this endpoint: a rotated key was already re-read
            # once (shared/clients.py); the policy never asks this endpoint again for the request.
            failure = UpstreamFailure("misconfigured", status)
        else:
            failure = UpstreamFailure("refused", status)
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
