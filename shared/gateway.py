"""The one request path of DESIGN.md, shared by the HTTP and queue triggers.

rate limit -> budget reserve -> cache lookup -> kernel -> budget settle -> cache store.
Authentication happens before (the adapter hands in a Principal); telemetry wraps it.
"""

from __future__ import annotations

import math
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Any

from shared.auth import Principal
from shared.budget import BudgetLedger
from shared.cache import ResponseCache
from shared.errors import AppError, NotFound
from shared.kernel import Completion, Delta, KernelEngine, SamplingParams
from shared.models import (
    ChatMessage,
    ChatRequest,
    ChatResponse,
    SummarizeRequest,
    SummarizeResponse,
)
from shared.ratelimit import RateLimiter


@dataclass(frozen=True)
class CallContext:
    """Who asks, under which correlation id, and what the client allows the cache to do."""

    principal: Principal
    correlation_id: str
    cache_lookup: bool = True  # false on `Cache-Control: no-cache`
    cache_store: bool = True  # false on `Cache-Control: no-store`


@dataclass(frozen=True)
class ChatCall:
    """A chat completion request, normalized from whichever API it came through."""

    model: str | None
    messages: tuple[ChatMessage, ...]
    params: SamplingParams


class StreamInterrupted(AppError):
    """The model's stream broke after content was sent: the client must see an error, not an end."""

    status, title, type_slug = 502, "Bad Gateway", "stream-interrupted"


def summary_token_cap(max_words: int) -> int:
    """Room for `max_words` words: about 1.3 tokens a word, plus slack for punctuation."""
    return min(4096, math.ceil(max_words * 1.5) + 32)


def estimate_prompt_tokens(texts: list[str]) -> int:
    """An estimate that does not undercount: one token per 3 characters, plus per-message overhead."""
    return sum(len(t) // 3 + 8 for t in texts) + 8


class Gateway:
    def __init__(self, engine: KernelEngine, rate_limiter: RateLimiter, budget: BudgetLedger,
                 cache: ResponseCache) -> None:
        self.engine = engine
        self.rate_limiter = rate_limiter
        self.budget = budget
        self.cache = cache

    def model_for(self, requested: str | None) -> str:
        model = self.engine.resolve_model(requested)
        if model is None:
            raise NotFound(f"The model or deployment {requested!r} is not available here.")
        return model

    async def summarize(self, ctx: CallContext, req: SummarizeRequest) -> SummarizeResponse:
        model = self.model_for(None)
        params = SamplingParams(max_tokens=summary_token_cap(req.max_words), temperature=0.3)
        key = {"op": "summarize", **req.model_dump(), "params": asdict(params)}
        completion, cached = await self._run(
            ctx, model, key, estimate_prompt_tokens([req.text]) + params.max_tokens,
            lambda: self.engine.summarize(model, req.text, req.style, req.max_words, params),
        )
        return SummarizeResponse(result=completion.content, model=completion.model, usage=completion.usage,
                                 cached=cached, correlation_id=ctx.correlation_id)

    async def chat(self, ctx: CallContext, req: ChatRequest) -> ChatResponse:
        call = ChatCall(None, tuple(req.messages),
                        SamplingParams(max_tokens=req.max_tokens, temperature=req.temperature))
        completion, cached = await self.complete(ctx, call)
        return ChatResponse(content=completion.content, finish_reason=completion.finish_reason,
                            model=completion.model, usage=completion.usage, cached=cached,
                            correlation_id=ctx.correlation_id)

    async def complete(self, ctx: CallContext, call: ChatCall) -> tuple[Completion, bool]:
        """A whole answer, and whether it came from the cache."""
        model = self.model_for(call.model)
        return await self._run(
            ctx, model, _chat_key(call), _worst_case(call),
            lambda: self.engine.chat(model, list(call.messages), call.params),
        )

    async def stream(self, ctx: CallContext, call: ChatCall) -> AsyncGenerator[Delta, None]:
        """The answer as deltas. Errors before the first content delta propagate as they are
        (the adapter can still answer with a status); after it, they become StreamInterrupted."""
        model = self.model_for(call.model)
        key = _chat_key(call)
        await self.rate_limiter.admit(ctx.principal, _worst_case(call))
        reservation = await self.budget.reserve(ctx.principal, model, _worst_case(call))
        settled = False
        try:
            hit = await self.cache.lookup(ctx.principal, model, key) if ctx.cache_lookup else None
            if hit is not None:
                yield Delta(content=hit.content, model=hit.model)
                yield Delta(finish_reason=hit.finish_reason, usage=hit.usage, model=hit.model)
                return
            parts: list[str] = []
            finish, usage, answered_by = "stop", None, model
            try:
                async for delta in self.engine.stream(model, list(call.messages), call.params):
                    parts.append(delta.content)
                    finish = delta.finish_reason or finish
                    usage = delta.usage or usage
                    answered_by = delta.model or answered_by
                    yield delta
            except AppError as exc:
                if any(parts):
                    raise StreamInterrupted("The model's answer was cut off. Retry the request.") from exc
                raise
            if usage is not None:
                await reservation.settle(usage)
                settled = True
                if ctx.cache_store:
                    await self.cache.store(ctx.principal, model, key, Completion(
                        "".join(parts), finish, answered_by, usage, ""))
        finally:
            if not settled:
                await reservation.release()

    async def _run(self, ctx: CallContext, model: str, key: dict[str, Any], worst_case: int,
                   invoke: Callable[[], Awaitable[Completion]]) -> tuple[Completion, bool]:
        await self.rate_limiter.admit(ctx.principal, worst_case)
        reservation = await self.budget.reserve(ctx.principal, model, worst_case)
        try:
            hit = await self.cache.lookup(ctx.principal, model, key) if ctx.cache_lookup else None
            if hit is not None:
                await reservation.release()
                return hit, True
            completion = await invoke()
        except BaseException:
            await reservation.release()
            raise
        await reservation.settle(completion.usage)
        if ctx.cache_store and completion.finish_reason in ("stop", "length"):
            await self.cache.store(ctx.principal, model, key, completion)
        return completion, False


def _chat_key(call: ChatCall) -> dict[str, Any]:
    return {"op": "chat", "messages": [m.model_dump() for m in call.messages], "params": asdict(call.params)}


def _worst_case(call: ChatCall) -> int:
    return estimate_prompt_tokens([m.content for m in call.messages]) + call.params.max_tokens
