"""OpenAI-shaped bodies, and the ASGI responses that stream, drop or outwait a connection."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from starlette.background import BackgroundTask
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from tools.simulator.text import Answer

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


class Completion:
    """Builds the chat payloads of one answer, sharing one id and timestamp like the real API."""

    def __init__(self, model: str, region: str) -> None:
        self.id = f"chatcmpl-sim-{uuid.uuid4().hex[:24]}"
        self.created = int(time.time())
        self.model = model
        self.fingerprint = f"sim-{region}"

    def _envelope(self, kind: str) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": kind,
            "created": self.created,
            "model": self.model,
            "system_fingerprint": self.fingerprint,
        }

    def full(self, answer: Answer, prompt_tokens: int) -> dict[str, Any]:
        message = {"role": "assistant", "content": answer.content, "refusal": None}
        choice = {"index": 0, "message": message, "finish_reason": answer.finish_reason, "logprobs": None}
        return {
            **self._envelope("chat.completion"),
            "choices": [choice],
            "usage": usage(prompt_tokens, answer.completion_tokens),
        }

    def chunk(self, delta: dict[str, str], finish_reason: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}
        return sse({**self._envelope("chat.completion.chunk"), "choices": [choice]})

    def usage_chunk(self, prompt_tokens: int, completion_tokens: int) -> bytes:
        return sse(
            {**self._envelope("chat.completion.chunk"), "choices": [], "usage": usage(prompt_tokens, completion_tokens)}
        )


def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
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
