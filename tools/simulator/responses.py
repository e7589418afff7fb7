"""OpenAI-shaped bodies, and the ASGI responses that stream, drop or outwait a connection."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from starlette.background import BackgroundTask
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from tools.simulator.replies import Reply

Write = Callable[[bytes], Awaitable[None]]
Produce = Callable[[Write], Awaitable[None]]

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    404: "not_found_error",
    405: "invalid_request_error",
    429: "rate_limit_error",
    503: "service_unavailable_error",
    504: "timeout_error",
}


class DroppedConnection(Exception):
    """Raised on purpose once a response has started: the ASGI server then cuts the connection."""


def openai_error(status: int, message: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    # "code" as a string is the Azure OpenAI shape; "type" and "param" are the OpenAI one.
    body = {"code": str(status), "message": message, "type": _ERROR_TYPES.get(status, "server_error"), "param": None}
    return JSONResponse({"error": body}, status_code=status, headers=headers)


@dataclass(frozen=True)
class Step:
    """One streamed delta of one choice, and the generated tokens it carries."""

    delta: dict[str, Any]
    tokens: int
    logprobs: list[dict[str, Any]] | None = None


class Completion:
    """Builds the chat payloads of one answer, sharing one id and timestamp like the real API."""

    def __init__(self, model: str, region: str, *, filters: FilterResults | None = None) -> None:
        self.id = f"chatcmpl-sim-{uuid.uuid4().hex[:24]}"
        self.created = int(time.time())
        self.model = model
        self.fingerprint = f"sim-{region}"
        # Azure's content-filter annotations (tools/simulator/azure.py); None on the OpenAI routes.
        self.filters = filters

    def _envelope(self, kind: str) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": kind,
            "created": self.created,
            "model": self.model,
            "system_fingerprint": self.fingerprint,
        }

    def full(
        self, replies: Sequence[Reply], logprobs: Sequence[Logprobs | None], usage: dict[str, Any]
    ) -> dict[str, Any]:
        choices = [
            {
                "index": index,
                "message": message(reply),
                "finish_reason": reply.finish_reason,
                "logprobs": None if groups is None else {"content": [e for g in groups for e in g], "refusal": None},
                **({"content_filter_results": self.filters.choice()} if self.filters else {}),
            }
            for index, (reply, groups) in enumerate(zip(replies, logprobs, strict=True))
        ]
        prompt = {"prompt_filter_results": self.filters.prompt()} if self.filters else {}
        return {**self._envelope("chat.completion"), "choices": choices, "usage": usage, **prompt}

    def chunk(
        self,
        delta: dict[str, Any],
        finish_reason: str | None = None,
        *,
        index: int = 0,
        logprobs: list[dict[str, Any]] | None = None,
    ) -> bytes:
        lp = None if logprobs is None else {"content": logprobs, "refusal": None}
        choice = {"index": index, "delta": delta, "finish_reason": finish_reason, "logprobs": lp}
        if self.filters:
            # Azure rates what a chunk generated; the role and the finish chunks carry empty results.
            generated = delta.get("content") or delta.get("tool_calls")
            choice["content_filter_results"] = self.filters.choice() if generated else {}
        return sse({**self._envelope("chat.completion.chunk"), "choices": [choice]})

    def opening(self) -> bytes:
        """What a stream sends before its first choice: Azure's filter-only chunk, else nothing."""
        return sse(self.filters.first_chunk()) if self.filters else b""

    def usage_chunk(self, usage: dict[str, Any]) -> bytes:
        return sse({**self._envelope("chat.completion.chunk"), "choices": [], "usage": usage})


Logprobs = list[list[dict[str, Any]]]


@dataclass(frozen=True)
class FilterResults:
    """Azure's content-filter annotations, as functions so each answer gets fresh dicts."""

    prompt: Callable[[], list[dict[str, Any]]]
    choice: Callable[[], dict[str, Any]]
    first_chunk: Callable[[], dict[str, Any]]


def message(reply: Reply) -> dict[str, Any]:
    if reply.text is not None:
        return {"role": "assistant", "content": reply.text.content, "refusal": None, "annotations": []}
    calls = [
        {"id": call.id, "type": "function", "function": {"name": call.name, "arguments": call.arguments.content}}
        for call in reply.tool_calls
    ]
    return {"role": "assistant", "content": None, "refusal": None, "annotations": [], "tool_calls": calls}


def steps(reply: Reply, logprobs: Logprobs | None) -> list[Step]:
    """The deltas that stream a reply as the service does: a role delta, then one per token.

    Tool calls: each call's first delta has its index, id, type and name with empty arguments
    (the first also the role and content null); then argument fragments under the same index.
    """
    if reply.text is not None:
        groups: Sequence[list[dict[str, Any]] | None] = logprobs or [None] * len(reply.text.pieces)
        return [
            Step({"role": "assistant", "content": "", "refusal": None}, 0),
            *(Step({"content": p.text}, p.tokens, g) for p, g in zip(reply.text.pieces, groups, strict=True)),
        ]
    out = [] if reply.tool_calls else [Step({"role": "assistant", "content": None}, 0)]
    for index, call in enumerate(reply.tool_calls):
        head = {"index": index, "id": call.id, "type": "function", "function": {"name": call.name, "arguments": ""}}
        first = {"role": "assistant", "content": None} if index == 0 else {}
        out.append(Step({**first, "tool_calls": [head]}, call.header_tokens))
        out += [
            Step({"tool_calls": [{"index": index, "function": {"arguments": piece.text}}]}, piece.tokens)
            for piece in call.arguments.pieces
        ]
    return out


def usage(prompt_tokens: int, completion_tokens: int, cached_tokens: int = 0) -> dict[str, Any]:
    """The usage block with the details the service reports; the simulator never reasons or hears."""
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "prompt_tokens_details": {"cached_tokens": cached_tokens, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def sse(payload: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(payload, separators=(",", ":")).encode("utf-8") + b"\n\n"


SSE_DONE = b"data: [DONE]\n\n"


class DroppedResponse(JSONResponse):
    """Sends the status line and headers of a body it never sends, then cuts the connection.

    ASGI has no message for "close without answering": a server answers 500 for an exception
    raised before the response starts, and closes the connection for one raised after it.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        raise DroppedConnection("simulated connection drop")


class EventStream(Response):
    """A text/event-stream response fed by a producer that writes events as it makes them.

    The producer is a coroutine rather than an iterator so that a client leaving cancels it at
    the exact await where it is, letting it account the tokens already sent.
    """

    media_type = "text/event-stream"

    def __init__(self, produce: Produce, headers: Mapping[str, str] | None = None) -> None:
        # Response.__init__ would add "content-length: 0"; a stream must not declare a length.
        self._produce = produce
        self.status_code = 200
        self.background: BackgroundTask | None = None
        self.init_headers({"cache-control": "no-cache", **(headers or {})})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})

        async def write(data: bytes) -> None:
            await send({"type": "http.response.body", "body": data, "more_body": True})

        producer = asyncio.ensure_future(self._produce(write))
        client_gone = asyncio.ensure_future(wait_for_disconnect(receive))
        try:
            await asyncio.wait({producer, client_gone}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            client_gone.cancel()
            if not producer.done():
                producer.cancel()
                # Waiting (not awaiting) lets it account its tokens without swallowing our own cancel.
                await asyncio.wait({producer})
        if producer.cancelled():
            return  # the client left; nobody is listening for the end of the body
        producer.result()  # re-raises DroppedConnection, which cuts the connection
        await send({"type": "http.response.body", "body": b"", "more_body": False})


async def wait_for_disconnect(receive: Receive) -> None:
    """Return once the client has gone; the request body must already have been read."""
    while (await receive())["type"] != "http.disconnect":
        pass


async def first_of(*waits: Awaitable[Any]) -> None:
    """Run the waits together and return when any of them ends, cancelling the rest."""
    tasks = [asyncio.ensure_future(wait) for wait in waits]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
