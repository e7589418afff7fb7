"""Classifies a failed model call: retryable or not, and what the provider asked us to wait.

Every failure of a model call arrives as the typed tree of shared/upstream/errors.py (the wire
raises it; the kernel adapter, shared/upstream/routing.py, turns the openai SDK's into it), so
classifying is a match on its type. Anything else (a malformed answer, a bug in a connector) is
treated as transient.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from shared.core.errors import ProviderError
from shared.upstream.errors import (
    AnswerCut,
    CredentialsRefused,
    EndpointFailed,
    EndpointRefused,
    EndpointThrottled,
    EndpointTimedOut,
    EndpointUnreachable,
)

FailureKind = Literal["retryable", "refused", "misconfigured"]


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


def billable_failure(exc: BaseException, *, answer_started: bool = False) -> bool:
    """Whether a failed attempt may have been billed by the provider: it was cancelled (the
    deadline, a client gone) or timed out while the provider worked on it, or its answer had
    started (a 200 that broke mid-body). A refused connection, an idle keep-alive connection the
    server had closed, or an error status, never reached a billing provider."""
    if not isinstance(exc, Exception) or answer_started:
        return True
    return isinstance(exc, EndpointTimedOut | AnswerCut)


def classify(exc: BaseException) -> UpstreamFailure:
    """Map any exception out of a model call to an UpstreamFailure."""
    match exc:
        case CredentialsRefused():
            # Our credentials are wrong for this endpoint: the policy never asks it again for the request.
            return UpstreamFailure("misconfigured", exc.status, request_id=exc.request_id)
        case EndpointRefused():
            return UpstreamFailure("refused", exc.status, request_id=exc.request_id, refusal=exc.refusal)
        case EndpointThrottled() | EndpointFailed():
            return UpstreamFailure("retryable", exc.status, exc.retry_after_s, maybe_processed=exc.status >= 500,
                                   request_id=exc.request_id)
        case EndpointUnreachable():
            return UpstreamFailure("retryable", None)
        case _:
            # A timeout, a dropped connection, a cut answer or a stream's error event, and anything
            # else (a malformed answer, a bug in a connector): transient, and the provider may have
            # worked on it.
            return UpstreamFailure("retryable", None, maybe_processed=True)


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
