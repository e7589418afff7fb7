"""The simulated model endpoints: chat completions and embeddings, with faults applied."""

from __future__ import annotations

import asyncio
import functools
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from tools.simulator import azure
from tools.simulator.config import SimulatorConfig
from tools.simulator.embeddings import embed, encode
from tools.simulator.faults import Fault, FaultInjector
from tools.simulator.logprobs import content_logprobs
from tools.simulator.prefix_cache import PrefixCache
from tools.simulator.prompt import prompt_tokens
from tools.simulator.replies import Reply, plan_replies
from tools.simulator.responses import (
    SSE_DONE,
    Completion,
    DroppedConnection,
    DroppedResponse,
    EventStream,
    FilterResults,
    Step,
    Write,
    first_of,
    steps,
    usage,
    wait_for_disconnect,
)
from tools.simulator.schemas import ChatRequest, EmbeddingRequest, InvalidRequest, parse
from tools.simulator.stats import Stats
from tools.simulator.text import InputTooLong, count_tokens, token_bytes, tokenizer

Sleep = Callable[[float], Awaitable[None]]


class Record(Protocol):
    """Settles a model request's outcome and billed tokens, in the stats and the request log."""

    def __call__(self, outcome: str, prompt_tokens: int = 0, completion_tokens: int = 0) -> None: ...


@dataclass(frozen=True)
class _StreamPlan:
    """Everything one streamed answer needs once the request has been accepted."""

    completion: Completion
    replies: list[Reply]
    streams: list[list[Step]]
    prompt_tokens: int
    cached_tokens: int
    drop_after: int | None
    include_usage: bool
    record: Record


HANG_S = 600.0
AZURE_FILTERS = FilterResults(azure.prompt_filter_results, azure.choice_filter_results, azure.filter_only_chunk)
# What GET /v1/models lists; every route accepts any model or deployment name regardless.
LISTED_MODELS = ("gpt-4o-mini", "gpt-4o", "text-embedding-3-small", "text-embedding-3-large")
_BEARER = re.compile(r"bearer\s+\S", re.IGNORECASE)


class Simulator:
    """State of one simulated region: its fault, its counters, and the handlers that use them."""

    def __init__(self, config: SimulatorConfig, *, sleep: Sleep = asyncio.sleep) -> None:
        self.config = config
        self.started = config  # what /_sim/pace returns to on DELETE
        self.faults = FaultInjector(config.seed)
        self.stats = Stats()
        self.prefix_cache = PrefixCache()
        self.quota = azure.Quota(config.requests_per_minute, config.tokens_per_minute)
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
        if (rejected := self._admit(request, record)) is not None:
            return rejected
        try:
            body = parse(ChatRequest, await request.body())
            model = _model_name(request, body.model)
            prompt = prompt_tokens(body)
            if body.top_logprobs is not None and not body.logprobs:
                raise InvalidRequest("top_logprobs: requires logprobs to be true")
            # A request's own seed alone picks the words, so every region answers it alike.
            seed: int | str = self.config.seed if body.seed is None else f"request-{body.seed}"
            replies = plan_replies(body, seed=seed)
        except (InvalidRequest, InputTooLong) as exc:
            record("400")
            return azure.bad_request(exc)

        logprobs = [
            content_logprobs(reply.text, top=body.top_logprobs or 0, seed=seed)
            if body.logprobs and reply.text is not None
            else None
            for reply in replies
        ]
        streams = [steps(reply, groups) for reply, groups in zip(replies, logprobs, strict=True)]
        completion = Completion(model, self.config.region, filters=AZURE_FILTERS if azure.is_azure(request) else None)

        fault = self.faults.draw(request.path_params.get("deployment"))
        if (failed := await self._fail(fault, request, record)) is not None:
            return failed
        drop_after = fault.drop_after if fault is not None and fault.status == "drop_stream" else None
        billed = len(prompt)
        headers = self.quota.spend(billed + (body.token_cap or 0))
        # Only a request the model really reads (not one refused above) warms the prompt cache.
        cached = self.prefix_cache.cached_tokens(model, prompt)
        completion_tokens = sum(reply.completion_tokens for reply in replies)

        await self._sleep(self.config.base_latency_ms / 1000)
        if not body.stream:
            result = completion.full(replies, logprobs, usage(billed, completion_tokens, cached))
            if drop_after is not None:
                record("dropped")
                return DroppedResponse(result)
            # The n choices decode side by side: the answer takes as long as its slowest rounds.
            await self._sleep(self.config.ms_per_token * sum(_round_tokens(streams)) / 1000)
            record("200", billed, completion_tokens)
            return JSONResponse(result, headers=headers)

        plan = _StreamPlan(completion, replies, streams, billed, cached, drop_after, body.include_usage, record)
        return EventStream(functools.partial(self._stream, plan), headers=headers)

    async def _stream(self, plan: _StreamPlan, write: Write) -> None:
        """Stream the replies round by round: the n choices advance together, a chunk each."""
        completion, replies, streams, drop_after, record = (
            plan.completion, plan.replies, plan.streams, plan.drop_after, plan.record
        )
        sent = 0
        try:
            if opening := completion.opening():
                await write(opening)
            decoded = 0
            for round_index, tokens in enumerate(_round_tokens(streams)):
                if tokens:
                    # after_tokens counts chunks that carry tokens; the role chunk is free.
                    if drop_after is not None and decoded >= drop_after:
                        break
                    # The per-token cost is paid between chunks, as a model decodes.
                    await self._sleep(self.config.ms_per_token * tokens / 1000)
                    decoded += 1
                for index, stream in enumerate(streams):
                    if round_index < len(stream):
                        step = stream[round_index]
                        await write(completion.chunk(step.delta, index=index, logprobs=step.logprobs))
                        sent += step.tokens
            if drop_after is not None:
                record("dropped", plan.prompt_tokens, sent)
                raise DroppedConnection(f"dropped after {sent} tokens")
            for index, reply in enumerate(replies):
                await write(completion.chunk({}, reply.finish_reason, index=index))
            if plan.include_usage:
                await write(completion.usage_chunk(usage(plan.prompt_tokens, sent, plan.cached_tokens)))
            # Recorded before [DONE], so a client that has read it also sees it in the stats.
            record("200", plan.prompt_tokens, sent)
            await write(SSE_DONE)
        except asyncio.CancelledError:
            # A provider bills what it generated before the client hung up.
            record("client_disconnected", plan.prompt_tokens, sent)
            raise

    async def embeddings(self, request: Request) -> Response:
        record = self._begin(request)
        if (rejected := self._admit(request, record)) is not None:
            return rejected
        try:
            body = parse(EmbeddingRequest, await request.body())
            model = _model_name(request, body.model)
            # Counted with the chat model's tokenizer, like every count the simulator reports.
            texts = [_embedding_text(item) for item in body.inputs]
            prompt_tokens = sum(count_tokens(item) if isinstance(item, str) else len(item) for item in body.inputs)
        except (InvalidRequest, InputTooLong) as exc:
            record("400")
            return azure.bad_request(exc)

        fault = self.faults.draw(request.path_params.get("deployment"))
        if (failed := await self._fail(fault, request, record)) is not None:
            return failed
        await self._sleep(self.config.base_latency_ms / 1000)

        dims = body.dimensions or self.config.embedding_dims
        encoding_format = body.encoding_format or "float"
        data = [
            {"object": "embedding", "index": index, "embedding": encode(embed(text, dims), encoding_format)}
            for index, text in enumerate(texts)
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
        return JSONResponse(result, headers=self.quota.spend(prompt_tokens))

    async def models(self, request: Request) -> Response:
        """The model names a client can ask for (any other name works too), in the list shape."""
        if (rejected := _check_key(request, lambda outcome, *_: None)) is not None:
            return rejected
        data = [{"id": name, "object": "model", "created": 0, "owned_by": "simulator"} for name in LISTED_MODELS]
        return JSONResponse({"object": "list", "data": data})

    def _admit(self, request: Request, record: Record) -> Response | None:
        """A missing key's 401, or Azure's 404 for a deployment this region does not serve."""
        if (rejected := _check_key(request, record)) is not None:
            return rejected
        deployment = request.path_params.get("deployment")
        if deployment and self.config.deployments and deployment not in self.config.deployments:
            record("404")
            return azure.error(404, azure.DEPLOYMENT_NOT_FOUND, code="DeploymentNotFound")
        return None

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
            return azure.refusal(request, 504, "simulated timeout: the model never answered")
        if isinstance(fault.status, int):
            record(str(fault.status))
            return azure.refusal(request, fault.status, _FAULT_MESSAGES[fault.status], fault.retry_headers())
        return None


def _round_tokens(streams: list[list[Step]]) -> list[int]:
    """Tokens decoded per round of a stream: the n choices advance together, a chunk each."""
    rounds = max(len(stream) for stream in streams)
    return [max((s[r].tokens for s in streams if r < len(s)), default=0) for r in range(rounds)]


def _embedding_text(item: str | list[int]) -> str:
    """The text embedded for an input; token ids are decoded, so they embed like their text."""
    if isinstance(item, str):
        return item
    try:
        return token_bytes(item).decode("utf-8", errors="replace")
    except (KeyError, ValueError, OverflowError):
        raise InvalidRequest("input: contains a token id outside the model's vocabulary") from None


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
    return azure.refusal(request, 401, "Access denied due to missing subscription key. Send an api-key header "
                                       "or a bearer token.")


def _model_name(request: Request, requested: str | None) -> str:
    # Azure names the deployment in the path; OpenAI names the model in the body.
    deployment = request.path_params.get("deployment")
    if deployment:
        return f"simulator-{deployment}"
    if not requested:
        raise InvalidRequest("model: Field required")
    return f"simulator-{requested}"
