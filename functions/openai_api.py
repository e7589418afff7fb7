"""OpenAI and Azure OpenAI compatible routes, so their SDKs work unchanged: chat completions (passed
through as written), embeddings and the tenant's model list."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any

import azure.functions as func
from azurefunctions.extensions.http.fastapi import Request, Response, StreamingResponse

from functions.http_common import (
    Scope,
    http_function,
    log_unexpected,
    ok,
    openai_problem,
    read_json,
    respond,
    validate,
)
from shared.api.openai_errors import openai_error
from shared.core.errors import AppError
from shared.core.models import OpenAIChatRequest, OpenAIEmbeddingsRequest, Usage
from shared.core.streams import hold
from shared.core.values import UPSTREAM_REQUEST_ID, Delta
from shared.upstream.protocol import replay, text_response

if TYPE_CHECKING:
    from shared.pipeline.openai_path import OpenAIPath

log = logging.getLogger(__name__)
bp = func.Blueprint(http_auth_level=func.AuthLevel.ANONYMOUS)


@http_function(bp, "openai_chat_completions", "v1/chat/completions", ["POST"], errors=openai_problem)
async def openai_chat_completions(req: Request) -> Response:
    return await respond(req, lambda scope: _completions(scope, deployment=None))


@http_function(bp, "azure_chat_completions", "openai/deployments/{deployment}/chat/completions", ["POST"],
               errors=openai_problem)
async def azure_chat_completions(req: Request) -> Response:
    """Azure OpenAI's route: the deployment in the path picks the model, `api-version` is accepted."""
    return await respond(req, lambda scope: _completions(scope, deployment=str(req.path_params["deployment"])))


@http_function(bp, "openai_embeddings", "v1/embeddings", ["POST"], errors=openai_problem)
async def openai_embeddings(req: Request) -> Response:
    return await respond(req, lambda scope: _embeddings(scope, deployment=None))


@http_function(bp, "azure_embeddings", "openai/deployments/{deployment}/embeddings", ["POST"],
               errors=openai_problem)
async def azure_embeddings(req: Request) -> Response:
    return await respond(req, lambda scope: _embeddings(scope, deployment=str(req.path_params["deployment"])))


@http_function(bp, "openai_models", "v1/models", ["GET"], errors=openai_problem)
async def openai_models(req: Request) -> Response:
    return await respond(req, _models)


@http_function(bp, "azure_models", "openai/models", ["GET"], errors=openai_problem)
async def azure_models(req: Request) -> Response:
    return await respond(req, _models)


def _path(scope: Scope) -> OpenAIPath:
    """The OpenAI path over the container's gateway; its module (the openai SDK) is loaded with the container."""
    from shared.pipeline.openai_path import OpenAIPath  # noqa: PLC0415  imported by then: no import on the request path

    return OpenAIPath(scope.container.gateway)


async def _models(scope: Scope) -> Response:
    models = _path(scope).models(scope.principal)
    return ok({"object": "list",
               "data": [{"id": m, "object": "model", "created": 0, "owned_by": "aigw"} for m in models]})


async def _embeddings(scope: Scope, deployment: str | None) -> Response:
    data = await read_json(scope.request, scope.container.settings.max_request_bytes)
    request = validate(OpenAIEmbeddingsRequest, data)
    answer = await _path(scope).embeddings(scope.context, deployment or request.model, data)
    return ok(answer.completion.raw or {}, headers=_headers(answer.headers, answer.completion.request_id))


async def _completions(scope: Scope, deployment: str | None) -> Response:
    # Validated for what the gateway reads; forwarded as the client wrote it.
    data = await read_json(scope.request, scope.container.settings.max_request_bytes)
    request = validate(OpenAIChatRequest, data)
    path = _path(scope)
    requested = deployment or request.model
    completion_id = f"chatcmpl-{scope.correlation_id}"
    if not request.stream:
        answer = await path.complete(scope.context, requested, data)
        c = answer.completion
        body = c.raw if c.raw is not None else text_response(c.content, c.finish_reason, c.model, c.usage.model_dump(),
                                                             created=int(time.time()))
        headers = {"x-cache": _cache_state(answer.cached, answer.stale),
                   **_headers(answer.headers, None if answer.cached else c.request_id)}
        return ok({**body, "id": completion_id}, headers=headers)

    headers_of, deltas = await path.stream(scope.context, requested, data)
    # Hold the response until the first content (or the end): until then a failure can still be
    # answered with its status, and the resilience layer can still fail over.
    held: list[Delta] = []
    await hold(deltas, lambda d: bool(d.content or d.finish_reason or d.cached), held)
    first = held[0] if held else Delta()
    if first.cached:
        held += [d async for d in deltas]  # a cached answer is whole at once
    events = _sse(held, deltas, completion_id=completion_id, include_usage=request.include_usage,
                  cid=scope.correlation_id)
    headers = {"cache-control": "no-cache", "x-accel-buffering": "no",
               "x-cache": _cache_state(first.cached, first.stale),
               **_headers(headers_of, None if first.cached else first.request_id)}
    return StreamingResponse(events, media_type="text/event-stream", headers=headers)


def _headers(exchange: Mapping[str, str], request_id: str | None) -> dict[str, str]:
    """The exchange's headers (the allowance) and the provider's id of the request that answered."""
    return {**exchange, **({UPSTREAM_REQUEST_ID: request_id} if request_id is not None else {})}


def _cache_state(cached: bool, stale: bool) -> str:
    return "STALE" if stale else "HIT" if cached else "MISS"


def _chunks(held: list[Delta]) -> list[dict[str, Any]] | None:
    """A cached answer as the provider's chunks; None for a live stream (its deltas carry them)."""
    if not held or not held[0].cached:
        return None
    first = held[0]
    if first.raw is not None:
        return replay(first.raw)
    finish = next((d.finish_reason for d in held if d.finish_reason), "stop")
    usage = next((d.usage for d in held if d.usage), Usage())
    content = "".join(d.content for d in held)
    return replay(text_response(content, finish, first.model or "", usage.model_dump(), created=int(time.time())))


async def _sse(held: list[Delta], rest: AsyncGenerator[Delta, None], *, completion_id: str, include_usage: bool,
               cid: str) -> AsyncIterator[str]:
    created = int(time.time())

    def event(chunk: dict[str, Any]) -> str | None:
        chunk = {**chunk, "id": completion_id}
        chunk.setdefault("created", created)
        if not include_usage:  # the gateway asked for usage; the client did not
            if not chunk.get("choices") and "usage" in chunk:
                return None
            chunk.pop("usage", None)
        return f"data: {json.dumps(chunk, separators=(',', ':'))}\n\n"

    try:
        cached = _chunks(held)
        async for chunk in _chain(cached) if cached is not None else _raw(held, rest):
            if (line := event(chunk)) is not None:
                yield line
    except Exception as exc:  # noqa: BLE001  logged by log_unexpected; the client gets an error event
        # Never a clean finish after a cut: the client's SDK raises on an `error` event.
        err = exc if isinstance(exc, AppError) else AppError("The answer failed. Retry the request.")
        if not isinstance(exc, AppError):
            log_unexpected("stream failed", cid, exc)
        else:
            log.warning("stream ended with an error (correlation_id=%s): %s", cid, err.type_slug)
        # OpenAI's error object (`code` a string): the correlation id is in the response's headers.
        yield f"data: {json.dumps(openai_error(err), separators=(',', ':'))}\n\n"
        return
    finally:
        # A client that goes away closes this generator: close the gateway's too, now (its pump goes
        # on reading the model's answer to the end and settles; see shared/pipeline/stages.py).
        await rest.aclose()
    yield "data: [DONE]\n\n"


async def _chain(chunks: list[dict[str, Any]]) -> AsyncIterator[dict[str, Any]]:
    for chunk in chunks:
        yield chunk


async def _raw(held: list[Delta], rest: AsyncIterator[Delta]) -> AsyncIterator[dict[str, Any]]:
    for delta in held:
        if delta.raw is not None:
            yield delta.raw
    async for delta in rest:
        if delta.raw is not None:
            yield delta.raw
