"""The simulated model endpoints: chat completions and embeddings, with faults applied."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from typing import Protocol

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from tools.simulator.config import SimulatorConfig
from tools.simulator.embeddings import embed, encode
from tools.simulator.faults import Fault, FaultInjector
from tools.simulator.responses import (
    SSE_DONE,
    Completion,
    DroppedConnection,
    DroppedResponse,
    EventStream,
    Write,
    first_of,
    openai_error,
    wait_for_disconnect,
)
from tools.simulator.schemas import ChatRequest, EmbeddingRequest, InvalidRequest, parse
from tools.simulator.stats import Stats
from tools.simulator.text import InputTooLong, count_prompt_tokens, count_tokens, generate_answer, tokenizer

Sleep = Callable[[float], Awaitable[None]]


class Record(Protocol):
    """Settles a model request's outcome and billed tokens, in the stats and the request log."""

    def __call__(self, outcome: str, prompt_tokens: int = 0, completion_tokens: int = 0) -> None: ...


HANG_S = 600.0
_BEARER = re.compile(r"bearer\s+\S", re.IGNORECASE)


class Simulator:
    """State of one simulated region: its fault, its counters, and the handlers that use them."""

    def __init__(self, config: SimulatorConfig, *, sleep: Sleep = asyncio.sleep) -> None:
        self.config = config
        self.faults = FaultInjector(config.seed)
        self.stats = Stats()
        # Injected so in-process tests can answer instantly yet still exercise every latency path.
        self._sleep = sleep
        self._closing = asyncio.Event()
        # Load the vocabulary now (about a second) rather than in the first request's latency.
        tokenizer()

    def close(self) -> None:
        """Release requests hanging on a "timeout" fault, so the server can stop promptly."""
        self._closing.set()

    async def chat(self, request: Request) -> Response:
        record = self._begin(request)
        if (rejected := _check_key(request, record)) is not None:
            return rejected
        try:
            body = parse(ChatRequest, await request.body())
            model = _model_name(request, body.model)
            messages = [(message.role, message.text) for message in body.messages]
            prompt_tokens = count_prompt_tokens(messages)
        except (InvalidRequest, InputTooLong) as exc:
            record("400")
            return openai_error(400, str(exc))

        answer = generate_answer(messages, seed=self.config.seed, max_tokens=body.token_cap)
        completion = Completion(model, self.config.region)

        fault = self.faults.draw()
        if (failed := await self._fail(fault, request, record)) is not None:
            return failed
        drop_after = fault.drop_after if fault is not None and fault.status == "drop_stream" else None

        await self._sleep(self.config.base_latency_ms / 1000)
        if not body.stream:
            if drop_after is not None:
                record("dropped")
                return DroppedResponse(completion.full(answer, prompt_tokens))
            await self._sleep(self.config.ms_per_token * answer.completion_tokens / 1000)
            record("200", prompt_tokens, answer.completion_tokens)
            return JSONResponse(completion.full(answer, prompt_tokens))

        async def produce(write: Write) -> None:
            sent = 0
            try:
                await write(completion.chunk({"role": "assistant", "content": ""}))
                # One chunk per token (a few for a character split between tokens); after_tokens counts chunks.
                for piece in answer.pieces[:drop_after]:
                    # The per-token cost is paid between chunks, as a model decodes.
                    await self._sleep(self.config.ms_per_token * piece.tokens / 1000)
                    await write(completion.chunk({"content": piece.text}))
                    sent += piece.tokens
                if drop_after is not None:
                    record("dropped", prompt_tokens, sent)
                    raise DroppedConnection(f"dropped after {sent} tokens")
                await write(completion.chunk({}, answer.finish_reason))
                if body.include_usage:
                    await write(completion.usage_chunk(prompt_tokens, sent))
                # Recorded before [DONE], so a client that has read it also sees it in the stats.
                record("200", prompt_tokens, sent)
                await write(SSE_DONE)
            except asyncio.CancelledError:
                # A provider bills what it generated before the client hung up.
                record("client_disconnected", prompt_tokens, sent)
                raise

        return EventStream(produce)

    async def embeddings(self, request: Request) -> Response:
        record = self._begin(request)
        if (rejected := _check_key(request, record)) is not None:
            return rejected
        try:
            body = parse(EmbeddingRequest, await request.body())
            model = _model_name(request, body.model)
            # Counted with the chat model's tokenizer, like every count the simulator reports.
            prompt_tokens = sum(count_tokens(text) for text in body.texts)
        except (InvalidRequest, InputTooLong) as exc:
            record("400")
            return openai_error(400, str(exc))

        fault = self.faults.draw()
        if (failed := await self._fail(fault, request, record)) is not None:
            return failed
        await self._sleep(self.config.base_latency_ms / 1000)

        dims = body.dimensions or self.config.embedding_dims
        encoding_format = body.encoding_format or "float"
        data = [
            {"object": "embedding", "index": index, "embedding": encode(embed(text, dims), encoding_format)}
            for index, text in enumerate(body.texts)
        ]
        result = {
            "object": "list",
            "data": data,
            "model": model,
            "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens},
        }
        if fault is not None and fault.status == "drop_stream":
            record("dropped")
            return DroppedResponse(result)
        record("200", prompt_tokens)
        return JSONResponse(result)

    def _begin(self, request: Request) -> Record:
        """Count a model request; the returned recorder settles its outcome exactly once."""
        self.stats.begin()
        settled = False

        def record(outcome: str, prompt_tokens: int = 0, completion_tokens: int = 0) -> None:
            nonlocal settled
            if settled:
                return
            settled = True
            self.stats.finish(outcome, prompt_tokens, completion_tokens)
            request.state.sim_outcome = f"{outcome} prompt={prompt_tokens} completion={completion_tokens}"

        return record

    async def _fail(self, fault: Fault | None, request: Request, record: Record) -> Response | None:
        """Apply the delay and status of a fault; None when the request should still be answered."""
        if fault is None:
            return None
        if fault.latency_ms:
            await self._sleep(fault.latency_ms / 1000)
        if fault.status == "timeout":
            record("timeout")
            # Hang until the client gives up, the server stops, or a real gateway would have.
            await first_of(self._sleep(HANG_S), wait_for_disconnect(request.receive), self._closing.wait())
            return openai_error(504, "simulated timeout: the model never answered")
        if isinstance(fault.status, int):
            record(str(fault.status))
            return openai_error(fault.status, _FAULT_MESSAGES[fault.status], fault.retry_headers())
        return None


_FAULT_MESSAGES = {
    429: "Simulated rate limit: requests to this deployment have exceeded the token rate limit.",
    500: "Simulated internal server error.",
    503: "Simulated service unavailable: the model is overloaded.",
}


def _check_key(request: Request, record: Record) -> Response | None:
    # Any key is valid; only its absence is refused, as a client misconfiguration check.
    if request.headers.get("api-key", "").strip() or _BEARER.match(request.headers.get("authorization", "")):
        return None
    record("401")
    return openai_error(401, "Access denied due to missing subscription key. Send an api-key header or a bearer token.")


def _model_name(request: Request, requested: str | None) -> str:
    # Azure names the deployment in the path; OpenAI names the model in the body.
    deployment = request.path_params.get("deployment")
    if deployment:
        return f"simulator-{deployment}"
    if not requested:
        raise InvalidRequest("model: Field required")
    return f"simulator-{requested}"
