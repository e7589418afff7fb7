"""OpenAI's error shape for the OpenAI-compatible routes: one table from our error types to
OpenAI's `type` and `code` (docs/openai-compatibility.md#errors)."""

from __future__ import annotations

from typing import Any, NamedTuple

from shared.core.errors import AppError, BadRequest, ContentFiltered, ModelNotFound, UpstreamRefused


class OpenAIKind(NamedTuple):
    """What the openai SDKs and the apps on them branch on: `type`, and `code` (None: no code)."""

    type: str
    code: str | None


# Keyed by AppError.type_slug (shared/core/errors.py, and StreamInterrupted in shared/pipeline/stages.py);
# a unit test holds every error type of the tree to a row. The status stays the error's own.
OPENAI_ERRORS: dict[str, OpenAIKind] = {
    "bad-request": OpenAIKind("invalid_request_error", None),
    "validation": OpenAIKind("invalid_request_error", "invalid_value"),
    "context-length-exceeded": OpenAIKind("invalid_request_error", "context_length_exceeded"),
    "model-refused": OpenAIKind("invalid_request_error", None),  # the provider's own code when it sent one
    # Azure OpenAI's content filter (innererror added by openai_error): the SDK raises BadRequestError.
    "content-filtered": OpenAIKind("invalid_request_error", "content_filter"),
    "unauthorized": OpenAIKind("invalid_request_error", "invalid_api_key"),
    "forbidden": OpenAIKind("permission_error", "permission_denied"),
    "not-found": OpenAIKind("invalid_request_error", "not_found"),
    "model-not-found": OpenAIKind("invalid_request_error", "model_not_found"),
    "response-not-found": OpenAIKind("invalid_request_error", "response_not_found"),
    "conflict": OpenAIKind("invalid_request_error", "conflict"),
    "method-not-allowed": OpenAIKind("invalid_request_error", "method_not_allowed"),
    "payload-too-large": OpenAIKind("invalid_request_error", "request_too_large"),
    "unsupported-media-type": OpenAIKind("invalid_request_error", "unsupported_media_type"),
    "too-many-requests": OpenAIKind("rate_limit_error", "rate_limit_exceeded"),
    "rate-limited": OpenAIKind("rate_limit_error", "rate_limit_exceeded"),
    "budget-busy": OpenAIKind("rate_limit_error", "rate_limit_exceeded"),
    "upstream-throttled": OpenAIKind("rate_limit_error", "rate_limit_exceeded"),
    "budget-exhausted": OpenAIKind("insufficient_quota", "insufficient_quota"),
    "internal": OpenAIKind("server_error", "internal_error"),
    "stream-interrupted": OpenAIKind("server_error", "stream_interrupted"),
    "unavailable": OpenAIKind("server_error", "service_unavailable"),
    "dependency-unavailable": OpenAIKind("server_error", "service_unavailable"),
    "response-origin-unavailable": OpenAIKind("server_error", "response_origin_unavailable"),
    "content-safety-unavailable": OpenAIKind("server_error", "service_unavailable"),
}
_FALLBACK = {False: OpenAIKind("invalid_request_error", None), True: OpenAIKind("server_error", None)}


def openai_error(err: AppError) -> dict[str, Any]:
    """`{"error": {message, type, param, code}}` as OpenAI's API document defines it; every member
    present, `code` a string or null. A provider's refusal speaks in the provider's (cleaned) words;
    a content-safety block adds Azure OpenAI's `innererror` (ResponsibleAIPolicyViolation)."""
    kind = OPENAI_ERRORS.get(err.type_slug) or _FALLBACK[err.status >= 500]
    message, param, code = err.detail, None, kind.code
    if isinstance(err, BadRequest):
        param = err.param
    elif isinstance(err, ModelNotFound):
        param = "model"
    if isinstance(err, UpstreamRefused) and err.provider is not None:
        message, param, code = err.provider.message, err.provider.param, err.provider.code or code
    error: dict[str, Any] = {"message": message, "type": kind.type, "param": param, "code": code}
    if isinstance(err, ContentFiltered):
        error["innererror"] = {"code": "ResponsibleAIPolicyViolation", "content_filter_result": err.result}
    return {"error": error}
