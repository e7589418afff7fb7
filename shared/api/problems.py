"""problem+json documents (RFC 9457) for every error a client can see."""

from __future__ import annotations

import math
from typing import Any

from shared.core.errors import AppError, BudgetRefusal, ContentFiltered, ValidationFailed

PROBLEM_MEDIA_TYPE = "application/problem+json"


def problem_body(err: AppError, correlation_id: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": err.type_uri,
        "title": err.title,
        "status": err.status,
        "detail": err.detail,
        "correlation_id": correlation_id,
    }
    if isinstance(err, ValidationFailed):
        body["errors"] = err.errors
    if isinstance(err, ContentFiltered):
        body["content_filter_result"] = err.result  # what was detected: categories and rule names, never text
    if isinstance(err, BudgetRefusal):
        body["scope"] = err.scope  # whose budget: "tenant", or "key" (the key's own limit)
    return body


def problem_headers(err: AppError, correlation_id: str) -> dict[str, str]:
    # x-request-id is what the openai SDKs read into `request_id`: the same id.
    headers = {"x-correlation-id": correlation_id, "x-request-id": correlation_id}
    if err.retry_after_s is not None:
        headers["Retry-After"] = str(max(1, math.ceil(err.retry_after_s)))
    headers.update(err.headers)
    return headers
