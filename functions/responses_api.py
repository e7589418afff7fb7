"""The Responses API routes (docs/responses.md), the same handlers under OpenAI's `/v1`, Azure's v1
API (`/openai/v1`) and Azure's preview (`/openai`, with `?api-version=`): create (whole or
streamed), retrieve, delete, input items and input token counts."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import azure.functions as func
from azurefunctions.extensions.http.fastapi import Request, Response, StreamingResponse

from functions.http_common import Scope, http_function, log_unexpected, ok, openai_problem, read_json, respond
from shared.api.openai_errors import openai_error
from shared.core.errors import AppError, BadRequest, MethodNotAllowed
from shared.core.streams import hold
from shared.core.values import UPSTREAM_REQUEST_ID, Delta

if TYPE_CHECKING:
    from shared.pipeline.responses import ResponsesApi

log = logging.getLogger(__name__)
bp = func.Blueprint(http_auth_level=func.AuthLevel.ANONYMOUS)
_QUERY = ("order", "limit", "after", "before", "include", "include[]")


@http_function(bp, "responses_create_openai", "v1/responses", ["POST"], errors=openai_problem)
async def responses_create_openai(req: Request) -> Response:
    return await respond(req, lambda scope: _create(scope, req))


@http_function(bp, "responses_input_tokens_openai", "v1/responses/input_tokens", ["POST"], errors=openai_problem)
async def responses_input_tokens_openai(req: Request) -> Response:
    return await respond(req, lambda scope: _input_tokens(scope, req))


@http_function(bp, "responses_item_openai", "v1/responses/{response_id}", ["GET", "DELETE"], errors=openai_problem)
async def responses_item_openai(req: Request) -> Response:
    return await respond(req, lambda scope: _item(scope, req))


@http_function(bp, "responses_input_items_openai", "v1/responses/{response_id}/input_items", ["GET"],
               errors=openai_problem)
async def responses_input_items_openai(req: Request) -> Response:
    return await respond(req, lambda scope: _input_items(scope, req))


@http_function(bp, "responses_create_azure", "openai/v1/responses", ["POST"], errors=openai_problem)
async def responses_create_azure(req: Request) -> Response:
    return await respond(req, lambda scope: _create(scope, req))


@http_function(bp, "responses_input_tokens_azure", "openai/v1/responses/input_tokens", ["POST"],
               errors=openai_problem)
async def responses_input_tokens_azure(req: Request) -> Response:
    return await respond(req, lambda scope: _input_tokens(scope, req))


@http_function(bp, "responses_item_azure", "openai/v1/responses/{response_id}", ["GET", "DELETE"],
               errors=openai_problem)
async def responses_item_azure(req: Request) -> Response:
    return await respond(req, lambda scope: _item(scope, req))


@http_function(bp, "responses_input_items_azure", "openai/v1/responses/{response_id}/input_items", ["GET"],
               errors=openai_problem)
async def responses_input_items_azure(req: Request) -> Response:
    return await respond(req, lambda scope: _input_items(scope, req))


@http_function(bp, "responses_create_azure_preview", "openai/responses", ["POST"], errors=openai_problem)
async def responses_create_azure_preview(req: Request) -> Response:
    return await respond(req, lambda scope: _create(scope, req))


@http_function(bp, "responses_input_tokens_azure_preview", "openai/responses/input_tokens", ["POST"],
               errors=openai_problem)
async def responses_input_tokens_azure_preview(req: Request) -> Response:
    return await respond(req, lambda scope: _input_tokens(scope, req))


@http_function(bp, "responses_item_azure_preview", "openai/responses/{response_id}", ["GET", "DELETE"],
               errors=openai_problem)
async def responses_item_azure_preview(req: Request) -> Response:
    return await respond(req, lambda scope: _item(scope, req))


@http_function(bp, "responses_input_items_azure_preview", "openai/responses/{response_id}/input_items", ["GET"],
               errors=openai_problem)
async def responses_input_items_azure_preview(req: Request) -> Response:
    return await respond(req, lambda scope: _input_items(scope, req))


def _api(scope: Scope) -> ResponsesApi:
    from shared.pipeline.responses import ResponsesApi  # noqa: PLC0415  loaded with the container

    return ResponsesApi.over(scope.container.gateway, scope.container.cosmos)


async def _body(scope: Scope) -> tuple[dict[str, Any], str | None]:
    data = await read_json(scope.request, scope.container.settings.max_request_bytes)
    model = data.get("model")
    if model is not None and not isinstance(model, str):
        raise BadRequest("model must be a string.", param="model")
    return data, model


async def _create(scope: Scope, req: Request) -> Response:
    data, model = await _body(scope)
    api = _api(scope)
    if not data.get("stream"):
        answer = await api.create(scope.context, model, data)
        return ok(answer.completion.raw or {}, headers=_headers(answer.headers, answer.completion.request_id))
    headers_of, deltas = await api.stream(scope.context, model, data)
    # Held until the answer begins: a failure before it is still answered with its status.
    held: list[Delta] = []
    await hold(deltas, lambda d: bool(d.content or d.finish_reason), held)
    request_id = next((d.request_id for d in held if d.request_id), None)
    headers = {"cache-control": "no-cache", "x-accel-buffering": "no", **_headers(headers_of, request_id)}
    return StreamingResponse(_sse(held, deltas, scope.correlation_id), media_type="text/event-stream",
                             headers=headers)


async def _input_tokens(scope: Scope, req: Request) -> Response:
    data, model = await _body(scope)
    return ok(await _api(scope).input_tokens(scope.context, model, data))


async def _item(scope: Scope, req: Request) -> Response:
    value = str(req.path_params["response_id"])
    if value == "input_tokens":  # the route of its own that the host hands here for GET and DELETE
        raise MethodNotAllowed("Use POST for this path.", headers={"Allow": "POST"})
    if req.method == "DELETE":
        return ok(await _api(scope).delete(scope.context, value))
    if req.query_params.get("stream") in ("true", "1"):
        raise BadRequest("Replaying a stored response as a stream is not supported here; retrieve it whole.",
                         param="stream")
    return ok(await _api(scope).retrieve(scope.context, value, _query(req)))


async def _input_items(scope: Scope, req: Request) -> Response:
    return ok(await _api(scope).input_items(scope.context, str(req.path_params["response_id"]), _query(req)))


def _query(req: Request) -> str:
    """The listing parameters the provider takes, passed on; nothing else (api-version is ours)."""
    kept = [(k, v) for k, v in req.query_params.multi_items() if k in _QUERY]
    return f"?{urlencode(kept)}" if kept else ""


def _headers(exchange: Mapping[str, str], request_id: str | None) -> dict[str, str]:
    return {**exchange, **({UPSTREAM_REQUEST_ID: request_id} if request_id is not None else {})}


async def _sse(held: list[Delta], rest: AsyncGenerator[Delta, None], cid: str) -> AsyncIterator[str]:
    """The provider's events as they come, each with its own sequence_number. A stream that breaks
    after it began ends with an `error` event (the next sequence_number), never silently."""
    sequence = -1

    def frame(event: Mapping[str, Any]) -> str:
        nonlocal sequence
        number = event.get("sequence_number")
        sequence = number if isinstance(number, int) else sequence + 1
        return f"event: {event.get('type')}\ndata: {json.dumps(event, separators=(',', ':'))}\n\n"

    try:
        for delta in held:
            if delta.raw is not None:
                yield frame(delta.raw)
        async for delta in rest:
            if delta.raw is not None:
                yield frame(delta.raw)
    except Exception as exc:  # noqa: BLE001  logged here; the client gets the error event
        err = exc if isinstance(exc, AppError) else AppError("The answer failed. Retry the request.")
        if isinstance(exc, AppError):
            log.warning("responses stream ended with an error (correlation_id=%s): %s", cid, err.type_slug)
        else:
            log_unexpected("responses stream failed", cid, exc)
        body = openai_error(err)["error"]
        event = {"type": "error", "code": body["code"], "message": body["message"], "param": body["param"],
                 "sequence_number": sequence + 1}
        yield f"event: error\ndata: {json.dumps(event, separators=(',', ':'))}\n\n"
    finally:
        await rest.aclose()  # a client gone: the drain goes on reading the model to its end and settles
