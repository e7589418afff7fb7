"""The OpenAPI document covers every native route and describes what the handlers really answer."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest

from functions import admin_api, console, http_api
from functions.http_common import ROUTES
from shared.api.openapi import openapi_document
from shared.api.problems import problem_body
from shared.core.errors import ValidationFailed

DOC = openapi_document()


def schema_of(name: str) -> dict[str, Any]:
    """A component schema with its refs resolvable (the document's components ride along)."""
    return {**DOC["components"]["schemas"][name], "components": DOC["components"]}


def test_every_native_route_and_method_is_described() -> None:
    assert http_api.bp and admin_api.bp and console.bp  # importing registers the native routes in ROUTES
    # The OpenAI-compatible routes follow OpenAI's own published API, not this document; the
    # console is a page, not an API.
    openai_compatible = ("v1/chat/", "v1/models", "v1/embeddings", "openai", "v1/responses", "console")
    native = {f"/{route}": methods for route, methods in ROUTES.items() if not route.startswith(openai_compatible)}
    documented = {path: {m.upper() for m in ops if m != "parameters"} for path, ops in DOC["paths"].items()
                  if not path.startswith("/v1/responses")}  # OpenAI-shaped, described too (docs/responses.md)
    assert documented == {path: set(methods) for path, methods in native.items()}


def test_only_health_ready_and_the_document_are_open() -> None:
    open_ops = {path for path, ops in DOC["paths"].items() for m, op in ops.items()
                if m != "parameters" and {} in op["security"]}
    assert open_ops == {"/health", "/ready", "/openapi.json"}
    assert set(DOC["components"]["securitySchemes"]) == {"x-api-key", "api-key", "bearer"}


@pytest.mark.parametrize("code", ["400", "401", "404", "405", "413", "415", "429", "503"])
def test_every_documented_error_is_problem_json(code: str) -> None:
    assert "application/problem+json" in DOC["components"]["responses"][code]["content"]


def test_a_real_problem_body_conforms() -> None:
    err = ValidationFailed("The request is invalid.", [{"field": "text", "message": "Field required"}])
    jsonschema.validate(problem_body(err, "cid"), schema_of("Problem"))


@pytest.mark.parametrize(("name", "body", "valid"), [
    ("SummarizeRequest", {"text": "x", "max_words": 10}, True),
    ("SummarizeRequest", {"text": "", "max_words": 10}, False),
    ("SummarizeRequest", {"text": "x", "extra": 1}, False),
    ("ChatRequest", {"messages": [{"role": "user", "content": "hi"}], "temperature": 2}, True),
    ("ChatRequest", {"messages": [{"role": "wizard", "content": "hi"}]}, False),
    ("ChatJob", {"kind": "chat", "input": {"messages": [{"role": "user", "content": "hi"}]}}, True),
    ("SummarizeJob", {"kind": "summarize", "input": {}}, False),
])
def test_request_schemas_accept_and_refuse_as_the_models_do(name: str, body: dict[str, Any], valid: bool) -> None:
    errors = list(jsonschema.Draft202012Validator(schema_of(name)).iter_errors(body))
    assert (not errors) is valid, errors
