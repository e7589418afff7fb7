"""An OpenAI-shaped model endpoint behind httpx2's MockTransport, for the operation matrix.

It answers chat completions (whole or as an event stream) and embeddings the way the provider
does, or fails the way a provider fails: an error status (429, 503), a body cut after it began
(h11's words, which the gateway reads as "the provider may have billed it"), or a slow answer held
until the test lets it go. Both the pass-through's wire and the openai SDK under Semantic Kernel
send through httpx2, so one provider serves every operation.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx2

from shared.core.models import Usage

Mode = Literal["ok", "503", "429", "cut", "slow"]
MODEL = "gpt-4o-mini"
ANSWER = "a short answer"
# What the provider bills: deliberately unlike any estimate, so a charge of it can only come from it.
USAGE = Usage(prompt_tokens=13, completion_tokens=4, total_tokens=17)
EMBEDDING_TOKENS = 6
# What a connection cut mid-body raises (h11 through httpx2): the gateway's sign the call was billed.
CUT = "peer closed connection without sending complete message body (incomplete chunked read)"


@dataclass
class Provider:
    """`modes` by path ("/chat/completions", "/embeddings"); `calls` records each request's path and body."""

    modes: dict[str, Mode] = field(default_factory=dict)
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    gate: asyncio.Event = field(default_factory=asyncio.Event)  # a slow answer waits for it
    reached: asyncio.Event = field(default_factory=asyncio.Event)  # a slow answer has started
    answer: str = ANSWER  # what a whole chat completion says

    def transport(self) -> httpx2.MockTransport:
        return httpx2.MockTransport(self.handle)

    def mode(self, mode: Mode, path: str = "/chat/completions") -> None:
        self.modes[path] = mode

    def seen(self, path: str = "/chat/completions") -> int:
        """How many requests reached this path."""
        return sum(1 for p, _ in self.calls if p == path)

    async def handle(self, request: httpx2.Request) -> httpx2.Response:
        path = next((p for p in ("/embeddings", "/responses") if request.url.path.endswith(p)), "/chat/completions")
        body: dict[str, Any] = json.loads(request.content)
        self.calls.append((path, body))
        mode = self.modes.get(path, "ok")
        headers = {"x-request-id": f"req-{len(self.calls)}"}
        if mode in ("503", "429"):
            error = {"error": {"message": "busy", "type": "server_error", "code": mode}}
            return httpx2.Response(int(mode), json=error, headers={**headers, "retry-after": "1"})
        if path == "/embeddings":
            return self._whole(_embeddings(body), mode, headers)
        responses = path == "/responses"
        if body.get("stream"):
            return httpx2.Response(200, headers={**headers, "content-type": "text/event-stream"},
                                   content=self._response_events(mode) if responses else self._events(mode))
        return self._whole(_response("completed") if responses else _completion(self.answer), mode, headers)

    def _whole(self, answer: dict[str, Any], mode: Mode, headers: dict[str, str]) -> httpx2.Response:
        payload = json.dumps(answer).encode()

        async def body() -> AsyncIterator[bytes]:
            if mode == "slow":
                self.reached.set()
                await self.gate.wait()
            if mode == "cut":
                yield payload[: len(payload) // 2]
                raise httpx2.RemoteProtocolError(CUT)
            yield payload

        return httpx2.Response(200, headers={**headers, "content-type": "application/json"}, content=body())

    async def _pieces(self, mode: Mode) -> AsyncIterator[str]:
        """The answer's pieces as a stream sends them: cut before the third, held before the second."""
        for i, word in enumerate(ANSWER.split(" ")):
            if i == 2 and mode == "cut":
                raise httpx2.RemoteProtocolError(CUT)
            if i == 1 and mode == "slow":
                self.reached.set()
                await self.gate.wait()
            yield word if i == 0 else " " + word

    async def _events(self, mode: Mode) -> AsyncIterator[bytes]:
        async for piece in self._pieces(mode):
            yield _event(_chunk({"content": piece}))
        yield _event(_chunk({}, finish="stop"))
        yield _event({**_chunk(None), "usage": _usage(USAGE)})
        yield b"data: [DONE]\n\n"

    async def _response_events(self, mode: Mode) -> AsyncIterator[bytes]:
        """The Responses API's stream: created, a text delta per piece, completed with its usage."""
        yield _event({"type": "response.created", "sequence_number": 0, "response": _response("in_progress")})
        number = 1
        async for piece in self._pieces(mode):
            yield _event({"type": "response.output_text.delta", "sequence_number": number, "item_id": "msg_1",
                          "output_index": 0, "content_index": 0, "delta": piece})
            number += 1
        yield _event({"type": "response.completed", "sequence_number": number, "response": _response("completed")})


def _response(status: str) -> dict[str, Any]:
    done = status == "completed"
    output = [{"id": "msg_1", "type": "message", "role": "assistant", "status": status,
               "content": [{"type": "output_text", "text": ANSWER, "annotations": []}]}] if done else []
    usage = {"input_tokens": USAGE.prompt_tokens, "input_tokens_details": {"cached_tokens": 0},
             "output_tokens": USAGE.completion_tokens, "output_tokens_details": {"reasoning_tokens": 0},
             "total_tokens": USAGE.total_tokens}
    return {"id": "resp_1", "object": "response", "created_at": 1, "status": status, "model": MODEL,
            "output": output, "usage": usage if done else None}


def _event(data: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(data).encode() + b"\n\n"


def _usage(usage: Usage) -> dict[str, int]:
    return usage.model_dump()


def _chunk(delta: dict[str, Any] | None, finish: str | None = None) -> dict[str, Any]:
    choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}]
    return {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": MODEL, "choices": choices}


def _completion(answer: str) -> dict[str, Any]:
    return {"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": MODEL,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": answer}, "finish_reason": "stop",
                         "logprobs": None}],
            "usage": _usage(USAGE)}


def _embeddings(body: dict[str, Any]) -> dict[str, Any]:
    texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
    return {"object": "list", "model": body.get("model"),
            "data": [{"object": "embedding", "index": i, "embedding": [1.0, 0.5, float(i)]} for i in range(len(texts))],
            "usage": {"prompt_tokens": EMBEDDING_TOKENS, "total_tokens": EMBEDDING_TOKENS}}
