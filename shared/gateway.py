"""The one request path of docs/api.md and docs/accounting.md, shared by the HTTP and queue triggers.

rate limit -> budget reserve -> cache lookup -> kernel -> budget settle -> cache store.
Authentication happens before (the adapter hands in a Principal); telemetry wraps it.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from shared.auth import Principal
from shared.budget import BudgetLedger, Estimate, Reservation
from shared.cache import ResponseCache
from shared.errors import AppError, Forbidden, NotFound, ServiceUnavailable
from shared.kernel import SUMMARIZE_PROMPT, Completion, Delta, KernelEngine, SamplingParams
from shared.models import ChatMessage, ChatRequest, ChatResponse, SummarizeRequest, SummarizeResponse
from shared.ratelimit import RateLimiter
from shared.tokens import prompt_tokens

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CallContext:
    """Who asks, under which correlation id, and what the client allows the cache to do."""

    principal: Principal
    correlation_id: str
    cache_lookup: bool = True  # false on `Cache-Control: no-cache`
    cache_store: bool = True  # false on `Cache-Control: no-store`
    # Filled by the stages for the adapter to send (rate-limit headers).
    response_headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ChatCall:
    """A chat completion request, normalized from whichever API it came through."""

    model: str | None
    messages: tuple[ChatMessage, ...]
    params: SamplingParams


@dataclass(frozen=True)
class Answer:
    completion: Completion
    cached: bool = False
    stale: bool = False  # served from an expired cache entry because no endpoint could answer


class StreamInterrupted(AppError):
    """The model's stream broke after content was sent: the client must see an error, not an end."""

    status, title, type_slug = 502, "Bad Gateway", "stream-interrupted"


def summary_token_cap(max_words: int) -> int:
    """Room for `max_words` words: about 1.3 tokens a word, plus slack for punctuation."""
    return min(4096, math.ceil(max_words * 1.5) + 32)


def render_summarize(text: str, style: str, max_words: int) -> str:
    """The summarize prompt as the kernel renders it, for counting its tokens."""
    return (SUMMARIZE_PROMPT.replace("{{$text}}", text).replace("{{$style}}", style)
            .replace("{{$max_words}}", str(max_words)))


class Gateway:
    def __init__(self, engine: KernelEngine, rate_limiter: RateLimiter, budget: BudgetLedger,
                 cache: ResponseCache) -> None:
        self.engine = engine
        self.rate_limiter = rate_limiter
        self.budget = budget
        self.cache = cache

    def model_for(self, principal: Principal, requested: str | None) -> str:
        model = self.engine.resolve_model(requested)
        if model is None:
            raise NotFound(f"The model or deployment {requested!r} is not available here.")
        allowed = principal.limits.allowed_models
        if allowed is not None and model not in allowed:
            raise Forbidden(f"The model {model!r} is not enabled for this tenant.")
        return model

    async def summarize(self, ctx: CallContext, req: SummarizeRequest) -> SummarizeResponse:
        model = self.model_for(ctx.principal, None)
        params = SamplingParams(max_tokens=summary_token_cap(req.max_words), temperature=0.3)
        key = {"op": "summarize", **req.model_dump(), "params": asdict(params)}
        prompt = render_summarize(req.text, req.style, req.max_words)
        answer = await self._run(
            ctx, model, key, Estimate(prompt_tokens(model, [("user", prompt)]), params.max_tokens),
            lambda: self.engine.summarize(model, req.text, req.style, req.max_words, params),
        )
        c = answer.completion
        return SummarizeResponse(result=c.content, model=c.model, usage=c.usage, cached=answer.cached,
                                 stale=answer.stale, correlation_id=ctx.correlation_id)

    async def chat(self, ctx: CallContext, req: ChatRequest) -> ChatResponse:
        call = ChatCall(None, tuple(req.messages),
                        SamplingParams(max_tokens=req.max_tokens, temperature=req.temperature))
        answer = await self.complete(ctx, call)
        c = answer.completion
        return ChatResponse(content=c.content, finish_reason=c.finish_reason, model=c.model, usage=c.usage,
                            cached=answer.cached, stale=answer.stale, correlation_id=ctx.correlation_id)

    async def complete(self, ctx: CallContext, call: ChatCall) -> Answer:
        model = self.model_for(ctx.principal, call.model)
        return await self._run(ctx, model, _chat_key(call), _estimate(model, call),
                               lambda: self.engine.chat(model, list(call.messages), call.params))

    async def stream(self, ctx: CallContext, call: ChatCall) -> AsyncGenerator[Delta, None]:
        """The answer as deltas. Errors before the first content delta propagate as they are
        (the adapter can still answer with a status); after it, they become StreamInterrupted."""
        model = self.model_for(ctx.principal, call.model)
        key = _chat_key(call)
        reservation = await self._admit(ctx, model, _estimate(model, call))
        settled = False
        try:
            hit = await self._lookup(ctx, model, key)
            if hit is not None:
                async for delta in _replay(hit):
                    yield delta
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
                # Nothing sent yet: in degraded mode an expired answer, flagged, beats a 503.
                stale = await self._lookup(ctx, model, key, stale_ok=True) \
                    if isinstance(exc, ServiceUnavailable) else None
                if stale is None:
                    raise
                async for delta in _replay(stale):
                    yield delta
                return
            if usage is not None:
                await reservation.settle(usage)
                settled = True
                await self._store(ctx, model, key, Completion("".join(parts), finish, answered_by, usage, ""))
        finally:
            if not settled:
                await asyncio.shield(reservation.release())

    async def _run(self, ctx: CallContext, model: str, key: dict[str, Any], estimate: Estimate,
                   invoke: Callable[[], Awaitable[Completion]]) -> Answer:
        reservation = await self._admit(ctx, model, estimate)
        try:
            hit = await self._lookup(ctx, model, key)
            if hit is not None:
                await reservation.release()
                return Answer(hit, cached=True)
            try:
                completion = await invoke()
            except ServiceUnavailable:
                # Degraded mode: every endpoint failed; an expired answer, flagged, beats a 503.
                stale = await self._lookup(ctx, model, key, stale_ok=True)
                if stale is None:
                    raise
                await reservation.release()
                return Answer(stale, cached=True, stale=True)
        except BaseException:
            # Shielded: a client that disconnects cancels this task, and the release must still run.
            await asyncio.shield(reservation.release())
            raise
        await reservation.settle(completion.usage)
        await self._store(ctx, model, key, completion)
        return Answer(completion)

    async def _admit(self, ctx: CallContext, model: str, estimate: Estimate) -> Reservation:
        allowance = await self.rate_limiter.admit(ctx.principal, estimate.tokens)
        ctx.response_headers.update(allowance.headers())
        return await self.budget.reserve(ctx.principal, model, estimate)

    async def _lookup(self, ctx: CallContext, model: str, key: dict[str, Any], *,
                      stale_ok: bool = False) -> Completion | None:
        """A cache that fails is a miss: it must never fail the request."""
        if not ctx.cache_lookup and not stale_ok:
            return None
        try:
            return await self.cache.lookup(ctx.principal, model, key, stale_ok=stale_ok)
        except Exception as exc:  # noqa: BLE001  logged by type; the request goes on
            log.warning("cache lookup failed: %s", type(exc).__name__)
            return None

    async def _store(self, ctx: CallContext, model: str, key: dict[str, Any], completion: Completion) -> None:
        # Only whole answers: a cut one ("length", a filter) must not be served to the next caller.
        if not ctx.cache_store or completion.finish_reason != "stop":
            return
        try:
            await self.cache.store(ctx.principal, model, key, completion)
        except Exception as exc:  # noqa: BLE001
            log.warning("cache store failed: %s", type(exc).__name__)


async def _replay(hit: Completion) -> AsyncGenerator[Delta, None]:
    yield Delta(content=hit.content, model=hit.model)
    yield Delta(finish_reason=hit.finish_reason, usage=hit.usage, model=hit.model)


def _chat_key(call: ChatCall) -> dict[str, Any]:
    messages = [{"role": m.role, "content": m.content.strip()} for m in call.messages]
    return {"op": "chat", "messages": messages, "params": asdict(call.params)}


def _estimate(model: str, call: ChatCall) -> Estimate:
    return Estimate(prompt_tokens(model, [(m.role, m.content) for m in call.messages]), call.params.max_tokens)
