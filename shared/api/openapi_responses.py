"""The Responses API's entries in the OpenAPI document (docs/responses.md): OpenAI's shapes, described
as far as this gateway reads them; every other member passes to the provider as written."""

from __future__ import annotations

from typing import Any

_KEYED: list[dict[str, list[str]]] = [{"x-api-key": []}, {"api-key": []}, {"bearer": []}]
_OPENAI_ERROR = {"$ref": "#/components/schemas/OpenAIError"}
_OBJECT = {"type": "object"}
_ERRORS = {
    400: "Refused (background, conversation, prompt, a hosted tool not allowed, store under `deny`), or invalid; "
         "`error.param` names the field.",
    401: "No credential, or one that is not valid.",
    404: "No such response of the caller's tenant (`response_not_found`), or an unknown model.",
    405: "The path exists; the `Allow` header lists its methods.",
    413: "The body is over MAX_REQUEST_BYTES.",
    415: "The body is not sent as application/json.",
    429: "Rate limit or budget; see Retry-After.",
    503: "No endpoint can answer; a follow-up whose origin endpoint is down: `response_origin_unavailable`, "
         "see Retry-After.",
}

CREATE_BODY: dict[str, Any] = {
    "type": "object", "required": ["model"],
    "properties": {
        "model": {"type": "string", "minLength": 1},
        "input": {"oneOf": [{"type": "string"}, {"type": "array", "items": _OBJECT}]},
        "instructions": {"type": "string"},
        "previous_response_id": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,200}$"},
        "max_output_tokens": {"type": "integer", "minimum": 16, "maximum": 16384},
        "stream": {"type": "boolean"},
        "store": {"type": "boolean"},
        "tools": {"type": "array", "items": {"type": "object", "required": ["type"],
                                             "properties": {"type": {"const": "function"}}}},
    },
}


def _errors(codes: list[int]) -> dict[str, Any]:
    return {str(code): {"$ref": f"#/components/responses/OpenAI{code}"} for code in codes}


def _op(op_id: str, summary: str, *, body: dict[str, Any] | None = None, stream: bool = False,
        codes: list[int]) -> dict[str, Any]:
    content: dict[str, Any] = {"application/json": {"schema": _OBJECT}}
    if stream:
        content["text/event-stream"] = {"schema": {"type": "string"}}
    op: dict[str, Any] = {"operationId": op_id, "summary": summary, "security": _KEYED,
                          "responses": {"200": {"description": "OK", "content": content}, **_errors(codes)}}
    if body is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    return op


_ID = [{"name": "response_id", "in": "path", "required": True,
        "schema": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,200}$"}}]
_READ = [401, 404, 405, 503]
_WRITE = [400, 401, 404, 405, 413, 415, 429, 503]


def responses_paths() -> dict[str, Any]:
    """/v1/responses and its routes (the same handlers serve /openai/v1/... and /openai/...)."""
    return {
        "/v1/responses": {"post": _op("responses_create", "Create a response (OpenAI's Responses API), whole or "
                                      "streamed.", body=CREATE_BODY, stream=True, codes=_WRITE)},
        "/v1/responses/input_tokens": {"post": _op("responses_input_tokens", "Count a request's input tokens.",
                                                   body=CREATE_BODY, codes=_WRITE)},
        "/v1/responses/{response_id}": {
            "parameters": _ID,
            "get": _op("responses_retrieve", "A stored response of the caller's tenant.", codes=_READ),
            "delete": _op("responses_delete", "Delete a stored response of the caller's tenant.", codes=_READ),
        },
        "/v1/responses/{response_id}/input_items": {
            "parameters": _ID,
            "get": _op("responses_input_items", "A stored response's input items.", codes=_READ)},
    }


def responses_components() -> dict[str, Any]:
    """OpenAI's error object and the error answers of the routes above (application/json)."""
    schema = {"type": "object", "required": ["error"], "properties": {"error": {
        "type": "object", "required": ["message", "type", "param", "code"],
        "properties": {"message": {"type": "string"}, "type": {"type": "string"},
                       "param": {"type": ["string", "null"]}, "code": {"type": ["string", "null"]}}}}}
    responses: dict[str, Any] = {}
    for code, description in _ERRORS.items():
        response: dict[str, Any] = {"description": description, "content": {"application/json": {"schema":
                                                                                                _OPENAI_ERROR}}}
        if code in (429, 503):
            response["headers"] = {"Retry-After": {"schema": {"type": "string", "pattern": "^[0-9]+$"}}}
        if code == 405:
            response["headers"] = {"Allow": {"required": True, "schema": {"type": "string"}}}
        responses[f"OpenAI{code}"] = response
    return {"schemas": {"OpenAIError": schema}, "responses": responses}
