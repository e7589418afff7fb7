"""OpenAI and Azure OpenAI compatible chat completions, so their SDKs work unchanged."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

import azure.functions as func
from azurefunctions.extensions.http.fastapi import Request, Response, StreamingResponse

from functions.http_common import Scope, http_function, log_unexpected, ok, read_model, respond
from shared.errors import AppError
from shared.gateway import ChatCall
from shared.kernel import Delta, SamplingParams
from shared.models import ChatMessage, OpenAIChatRequest, Usage

log = logging.getLogger(__name__)
bp = func.Blueprint(http_auth_level=func.AuthLevel.ANONYMOUS)


@http_function(bp, "openai_chat_completions", "v1/chat/completions", ["POST"])
async def openai_chat_completions(req: Request) -> Response:
    return await respond(req, lambda scope: _completions(scope, deployment=None))


@http_function(bp, "azure_chat_completions", "openai/deployments/{deployment}/chat/completions", ["POST"])
async def azure_chat_completions(req: Request) -> Response:
    """Azure OpenAI's route: the deployment in the path picks the model, `api-version` is accepted."""
    return await respond(req, lambda scope: _completions(scope, deployment=str(req.path_params["deployment"])))


def to_call(body: OpenAIChatRequest, deployment: str | None) -> ChatCall:
    # `developer` is OpenAI's newer name for the system role.
    messages = tuple(
        ChatMessage(role="system" if m.role == "developer" else m.role, content=m.text()) for m in body.messages
    )
    stop = (body.stop,) if isinstance(body.stop, str) else tuple(body.stop) if body.stop else None
    params = SamplingParams(
        max_tokens=body.max_completion_tokens or body.max_tokens or 1000,
        temperature=body.temperature, top_p=body.top_p, stop=stop, presence_penalty=body.presence_penalty,
        frequency_penalty=body.frequency_penalty, seed=body.seed,
    )
    return ChatCall(model=deployment or body.model, messages=messages, params=params)


async def _completions(scope: Scope, deployment: str | None) -> Response:
    body = await read_model(scope, OpenAIChatRequest)
    call = to_call(body, deployment)
    ctx = scope.context
    gateway = scope.container.gateway
    completion_id = f"chatcmpl-{scope.correlation_id}"
    created = int(time.time())
    if not body.stream:
        answer = await gateway.complete(ctx, call)
        completion = answer.completion
        return ok({
            "id": completion_id, "object": "chat.completion", "created": created, "model": completion.model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": completion.content},
                         "finish_reason": completion.finish_reason, "logprobs": None}],
            "usage": completion.usage.model_dump(),
        }, headers={"x-cache": _cache_state(answer.cached, answer.stale)})

    deltas = gateway.stream(ctx, call)
    # Hold the response until the first content (or the end): until then a failure can still be
    # answered with its status, and the resilience layer can still fail over.
    held: list[Delta] = []
    async for delta in deltas:
        held.append(delta)
        if delta.content or delta.finish_reason:
            break
    model = next((d.model for d in held if d.model), call.model or "")
    events = _sse(held, deltas, completion_id=completion_id, created=created, model=model,
                  include_usage=body.include_usage, cid=scope.correlation_id)
    first = held[0] if held else Delta()
    return StreamingResponse(events, media_type="text/event-stream",
                             headers={"cache-control": "no-cache", "x-accel-buffering": "no",
                                      "x-cache": _cache_state(first.cached, first.stale)})


def _cache_state(cached: bool, stale: bool) -> str:
    return "STALE" if stale else "HIT" if cached else "MISS"


async def _sse(held: list[Delta], rest: AsyncGenerator[Delta, None], *, completion_id: str, created: int,
               model: str, include_usage: bool, cid: str) -> AsyncIterator[str]:
    def event(choices: list[dict[str, Any]], usage: Usage | None = None) -> str:
        chunk: dict[str, Any] = {"id": completion_id, "object": "chat.completion.chunk", "created": created,
                                 "model": model, "choices": choices}
        if usage is not None:
            chunk["usage"] = usage.model_dump()
        return f"data: {json.dumps(chunk, separators=(',', ':'))}\n\n"

    yield event([{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}])
    usage: Usage | None = None
    finish: str | None = None
    try:
        async for delta in _chain(held, rest):
            usage, finish = delta.usage or usage, delta.finish_reason or finish
            if delta.content:
                yield event([{"index": 0, "delta": {"content": delta.content}, "finish_reason": None}])
    except Exception as exc:  # noqa: BLE001  logged by log_unexpected; the client gets an error event
        # Never a clean finish after a cut: the client's SDK raises on an `error` event.
        err = exc if isinstance(exc, AppError) else AppError("The answer failed. Retry the request.")
        if not isinstance(exc, AppError):
            log_unexpected("stream failed", cid, exc)
        else:
            log.warning("stream ended with an error (correlation_id=%s): %s", cid, err.type_slug)
        error = {"message": err.detail, "type": err.type_slug, "code": err.status, "correlation_id": cid}
        yield f"data: {json.dumps({'error': error}, separators=(',', ':'))}\n\n"
        return
    finally:
        # A client that goes away closes this generator: close the gateway's too, now, so its
        # reservation is released at once rather than whenever it is collected.
        await rest.aclose()
    yield event([{"index": 0, "delta": {}, "finish_reason": finish or "stop"}])
    if include_usage:
        yield event([], usage or Usage())
    yield "data: [DONE]\n\n"


async def _chain(held: list[Delta], rest: AsyncIterator[Delta]) -> AsyncIterator[Delta]:
    for delta in held:
        yield delta
    async for delta in rest:
        yield delta
