"""The OpenAPI 3.1 document of the native API, generated from the pydantic models of the contract."""

from __future__ import annotations

import functools
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict
from pydantic.json_schema import models_json_schema

from shared.api.admin_models import ADMIN_REQUESTS, ADMIN_RESPONSES, admin_paths
from shared.api.openapi_responses import responses_components, responses_paths
from shared.api.problems import PROBLEM_MEDIA_TYPE
from shared.core.models import ChatRequest, ChatResponse, JobView, SummarizeRequest, SummarizeResponse

# Shapes the handlers build as dicts today (jobs_submit, budget.usage); described here so the
# document covers every native answer. Field for field what DESIGN.md's HTTP contract says.


class JobAccepted(BaseModel):
    job_id: str
    status_url: str


class UsageWindow(BaseModel):
    tokens_used: int
    tokens_reserved: int
    token_limit: int | None
    usd_spent: float
    usd_limit: float | None
    resets_at: str


class UsageReport(BaseModel):
    tenant: str
    daily: UsageWindow
    monthly: UsageWindow


class FieldError(BaseModel):
    field: str
    message: str


class Problem(BaseModel):
    """RFC 9457 problem details, as every non-2xx answer carries them."""

    model_config = ConfigDict(extra="allow")  # e.g. `checks` and `invalid_settings` on /api/ready

    type: str
    title: str
    status: int
    detail: str
    correlation_id: str
    errors: list[FieldError] | None = None
    # `content-filtered`: what was detected, by kind (docs/safety.md), never the text.
    content_filter_result: dict[str, dict[str, Any]] | None = None


class SummarizeJob(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["summarize"]
    input: SummarizeRequest


class ChatJob(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["chat"]
    input: ChatRequest


class Health(BaseModel):
    status: Literal["healthy"]


class Ready(BaseModel):
    status: Literal["ready"]
    checks: dict[str, str] | None = None  # only for a key of a tenant with the admin role


_REQUESTS: list[type[BaseModel]] = [SummarizeRequest, ChatRequest, SummarizeJob, ChatJob, *ADMIN_REQUESTS]
_RESPONSES: list[type[BaseModel]] = [SummarizeResponse, ChatResponse, JobAccepted, JobView, UsageReport, Problem,
                                     Health, Ready, *ADMIN_RESPONSES]
_ERRORS = {
    400: "The body is not JSON within the limits, or a field is invalid (`errors` names each); or the tenant's "
         "content-safety policy blocked it (`content-filtered`, with `content_filter_result`, docs/safety.md).",
    401: "No credential, or one that is not valid.",
    403: "The caller may not do this: the model or model route named (or the default model) is not enabled for "
         "the caller's tenant, or (the admin API) neither the `admin` role nor the `AI.Admin` app role.",
    404: "Nothing at this path, or no such job, tenant or key for the caller, or no such model or model route.",
    405: "The path exists; the `Allow` header lists its methods.",
    413: "The body is over MAX_REQUEST_BYTES.",
    409: "The change clashes with what exists (a tenant of that name, a tenant's last key, a concurrent change).",
    415: "The body is not sent as application/json.",
    429: "Rate limit (`rate-limited`) or budget (`budget-busy`, `budget-exhausted`, with `scope`: `tenant` or "
         "`key`, whose budget refused); see Retry-After.",
    503: "No model endpoint can answer, or a dependency of ours is down (the content-safety service under "
         "`on_error: closed`); see Retry-After.",
}
_KEYED: list[dict[str, list[str]]] = [{"x-api-key": []}, {"api-key": []}, {"bearer": []}]


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _json(schema: dict[str, Any], media_type: str = "application/json") -> dict[str, Any]:
    return {"content": {media_type: {"schema": schema}}}


def _operation(op_id: str, summary: str, ok: tuple[int, type[BaseModel] | None], errors: list[int], *,
               body: dict[str, Any] | None = None, open_: bool = False) -> dict[str, Any]:
    status, model = ok
    operation: dict[str, Any] = {
        "operationId": op_id, "summary": summary,
        "responses": {str(status): {"description": "OK", **(_json(_ref(model)) if model else {})},
                      **{str(code): {"$ref": f"#/components/responses/{code}"} for code in errors}},
    }
    if body is not None:
        operation["requestBody"] = {"required": True, **_json(body)}
    operation["security"] = [{}, *_KEYED] if open_ else _KEYED
    if status == 202:
        operation["responses"]["202"]["headers"] = {"Location": {"schema": {"type": "string"}}}
    return operation


_BODY_ERRORS = [400, 401, 405, 413, 415, 429, 503]
_MODEL_ERRORS = sorted([*_BODY_ERRORS, 403, 404])  # a body that names a model (docs/routing.md)


def _paths() -> dict[str, Any]:
    return {
        "/health": {"get": _operation("health", "Liveness; no auth, no dependency call.", (200, Health), [405],
                                      open_=True)},
        "/ready": {"get": _operation("ready", "Readiness from the last probe; details for the admin role.",
                                     (200, Ready), [401, 405, 503], open_=True)},
        "/openapi.json": {"get": {"operationId": "openapi", "summary": "This document.", "security": [{}],
                                  "responses": {"200": {"description": "OK", **_json({"type": "object"})},
                                                "405": {"$ref": "#/components/responses/405"}}}},
        "/v1/summarize": {"post": _operation("summarize", "Summarize a text.", (200, SummarizeResponse),
                                             _MODEL_ERRORS, body=_ref(SummarizeRequest))},
        "/v1/chat": {"post": _operation("chat", "One chat completion.", (200, ChatResponse), _MODEL_ERRORS,
                                        body=_ref(ChatRequest))},
        "/v1/usage": {"get": _operation("usage", "The caller's tenant: today's and this month's use.",
                                        (200, UsageReport), [401, 405, 503])},
        "/v1/jobs": {"post": _operation("jobs_submit", "Queue a summarize or chat job.", (202, JobAccepted),
                                        _BODY_ERRORS, body={"oneOf": [_ref(SummarizeJob), _ref(ChatJob)],
                                                            "discriminator": {"propertyName": "kind"}})},
        "/v1/jobs/{job_id}": {
            "parameters": [{"name": "job_id", "in": "path", "required": True,
                            "schema": {"type": "string", "minLength": 1, "maxLength": 128}}],
            "get": _operation("jobs_status", "A job of the caller's tenant.", (200, JobView), [401, 404, 405, 503]),
        },
        **admin_paths(_operation, _ref),  # docs/admin.md
    }


def _error_responses() -> dict[str, Any]:
    responses: dict[str, Any] = {}
    for code, description in _ERRORS.items():
        response: dict[str, Any] = {"description": description, **_json(_ref(Problem), PROBLEM_MEDIA_TYPE)}
        if code in (429, 503):
            response["headers"] = {"Retry-After": {"schema": {"type": "string", "pattern": "^[0-9]+$"}}}
        if code == 405:
            response["headers"] = {"Allow": {"required": True, "schema": {"type": "string"}}}
        responses[str(code)] = response
    return responses


@functools.cache
def openapi_document() -> dict[str, Any]:
    """Built once per process: the models do not change while it runs."""
    _, requests = models_json_schema([(m, "validation") for m in _REQUESTS],
                                     ref_template="#/components/schemas/{model}")
    _, responses = models_json_schema([(m, "serialization") for m in _RESPONSES],
                                      ref_template="#/components/schemas/{model}")
    extra = responses_components()  # the Responses API's OpenAI-shaped routes (docs/responses.md)
    schemas = {**requests.get("$defs", {}), **responses.get("$defs", {}), **extra["schemas"]}
    return {
        "openapi": "3.1.0",
        "info": {"title": "AI gateway native API", "version": "1.0.0",
                 "description": "The native JSON API. Limits: docs/api-limits.md. Every error is "
                                "application/problem+json; every answer carries x-correlation-id."},
        "servers": [{"url": "/api"}],
        "paths": {**_paths(), **responses_paths()},
        "components": {
            "schemas": schemas,
            "responses": {**_error_responses(), **extra["responses"]},
            "securitySchemes": {
                "x-api-key": {"type": "apiKey", "in": "header", "name": "x-api-key"},
                "api-key": {"type": "apiKey", "in": "header", "name": "api-key"},
                "bearer": {"type": "http", "scheme": "bearer",
                           "description": "An API key, or an Entra ID access token"},
            },
        },
    }
