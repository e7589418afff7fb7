"""The operations of docs/api.md, shared by the HTTP and queue triggers: each builds an exchange
(shared/pipeline/exchange.py) and runs it through the stages (shared/pipeline/stages.py).

Authentication happens before (the adapter hands in a Principal); a whole answer is collected
from the pipeline's reply, a streamed one is handed on delta by delta.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Generic, TypeVar

from shared.core.clock import Clock, SystemClock
from shared.core.errors import (
    AppError,
    ContentFiltered,
    DependencyFailed,
    Forbidden,
    ModelNotFound,
    ServiceUnavailable,
    UpstreamRefused,
)
from shared.core.models import ChatMessage, ChatRequest, ChatResponse, SummarizeRequest, SummarizeResponse
from shared.core.routes import RouteDecision, Tier
from shared.core.tokens import prompt_tokens
from shared.core.values import Completion, Delta, SamplingParams
from shared.identity.auth import Principal
from shared.moderation.screening import Screening
from shared.observability import tracing
from shared.pipeline.activity import ActivityCounter
from shared.pipeline.admission import Admission
from shared.pipeline.exchange import CallContext, DeltaSource, Exchange, Reply
from shared.pipeline.guard import Guard
from shared.pipeline.long_calls import LongCalls
from shared.pipeline.prompt import MessagesPrompt, TextPrompt
from shared.pipeline.routes import Messages, Router, stream_or_fallback, whole_or_fallback
from shared.pipeline.stages import STREAM_QUEUE, StreamInterrupted, build_stages, run
from shared.routing.second_opinion import MAX_TOKENS as JUDGE_MAX_TOKENS
from shared.routing.second_opinion import SEED as JUDGE_SEED
from shared.routing.second_opinion import judge_prompt, verdict
from shared.state.budget import BudgetLedger, Estimate
from shared.state.cache import CacheKey, ResponseCache, chat_view
from shared.state.ratelimit import RateLimiter
from shared.upstream.engine import LazyEngine
from shared.upstream.prompts import render_summarize, summary_token_cap

log = logging.getLogger(__name__)
T = TypeVar("T")
__all__ = ["STREAM_QUEUE", "Answer", "CallContext", "ChatCall", "Exchange", "Gateway", "LongCalls",
           "StreamInterrupted"]
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
    headers: Mapping[str, str] = field(default_factory=dict)  # for the response: the exchange's


@dataclass(frozen=True)
class Served(Generic[T]):
    """A native operation's response body and the headers the exchange set for it."""

    body: T
    headers: Mapping[str, str]


class Gateway:
    """The model-bound operations of the native API and jobs (and, through OpenAIPath, the
    OpenAI-compatible ones): each builds an exchange and runs it through the one pipeline."""

    def __init__(self, engine: LazyEngine, rate_limiter: RateLimiter, budget: BudgetLedger,
                 cache: ResponseCache, *, clock: Clock | None = None, router: Router | None = None,
                 guard: Guard | None = None, activity: ActivityCounter | None = None) -> None:
        self.engine = engine
        self.router = router or Router({}, None, {})  # no routes
        self.rate_limiter = rate_limiter
        self.budget = budget
        self.cache = cache
        self.admission = Admission(rate_limiter, budget, cache)
        # Without Azure's services the guard still runs its built-in layers (docs/safety.md).
        self.stages = build_stages(self.admission, LongCalls((clock or SystemClock()).now), self.router.stage,
                                   guard or Guard(Screening(None), None), activity)

    def model_for(self, principal: Principal, requested: str | None) -> str:
        model = self.engine.resolve_model(requested)
        if model is None:
            raise ModelNotFound(f"The model or deployment {requested!r} is not available here.")
        allowed = principal.limits.allowed_models
        if allowed is not None and model not in allowed:
            raise Forbidden(f"The model {model!r} is not enabled for this tenant.")
        return model

    async def route(self, ctx: CallContext, requested: str | None, messages: Messages, *, tools: int = 0,
                    response_format: bool = False, with_second_opinion: bool = True) -> RouteDecision | None:
        """The route decision for a request of `requested` (None: no route was asked for). Every
        operation that takes a model calls this before it builds its exchange, which runs on
        `routed_model` of the decision and carries it (`Exchange.route`). A score inside the route's
        second-opinion band first asks the judging model (`second_opinion`), unless the caller
        charges nothing (`with_second_opinion=False`: the score alone decides)."""
        decision = self.router.decide(ctx.principal, requested, messages, tools=tools, response_format=response_format)
        judge = self.router.second_opinion(ctx.principal, decision) if with_second_opinion else None
        if decision is None or judge is None:
            return decision
        said = await self.second_opinion(ctx, judge, messages)
        return decision if said is None else self.router.judged(ctx.principal, decision, said)

    async def second_opinion(self, ctx: CallContext, model: str, messages: Messages) -> Tier | None:
        """The judging model's tier for `messages`: a chat exchange of its own (admitted, cached exactly,
        screened, charged and recorded like any other), or None when it could not say (the model
        unavailable or refusing, or an answer that names no tier): the score's tier then stands. A
        refusal of the tenant's own (rate, budget, content) is the request's."""
        model = self.model_for(ctx.principal, model)
        prompt = MessagesPrompt([ChatMessage(role=role, content=text) for role, text in judge_prompt(messages)])
        # Greedy and seeded: the same conversation is judged alike (and cached as one entry).
        call = ChatCall(model, tuple(prompt.messages),
                        SamplingParams(max_tokens=JUDGE_MAX_TOKENS, temperature=0.0, seed=JUDGE_SEED))
        # Never a semantic entry: its lookup would charge an embedding to save a 3-token answer.
        asked = self._chat(ctx, call, model, whole(lambda: self.engine.chat(model, prompt.messages, call.params)),
                           prompt=prompt, semantic=False)
        try:
            with tracing.aside():  # the record's model, cache result and logged content stay the request's
                answer = await self.answer(asked)
        except (ServiceUnavailable, DependencyFailed, UpstreamRefused, ContentFiltered) as err:
            log.warning("second opinion from %s unavailable (%s): the score's tier stands", model, err.type_slug)
            return None
        return verdict(answer.completion.content)

    def routed_model(self, principal: Principal, decision: RouteDecision | None, requested: str | None) -> str:
        """The model of a decision (a fallback's too), or the one asked for: resolved and allowed for
        the tenant (404 or 403 otherwise)."""
        return self.model_for(principal, decision.model if decision is not None else requested)

    async def summarize(self, ctx: CallContext, req: SummarizeRequest) -> Served[SummarizeResponse]:
        params = SamplingParams(max_tokens=summary_token_cap(req.max_words), temperature=0.3)
        prompt = render_summarize(req.text, req.style, req.max_words)
        first = await self.route(ctx, req.model, ({"role": "user", "content": req.text},))

        async def run(decision: RouteDecision | None) -> Answer:
            model = self.routed_model(ctx.principal, decision, req.model)
            text = TextPrompt(req.text)  # what the model is sent: masked by the guard under redact_input
            key = CacheKey(ctx.principal.tenant, model,
                           lambda: {"op": "summarize", **req.model_dump(exclude={"model"}), "params": asdict(params)})
            return await self.answer(Exchange(
                ctx, "summarize", model, key, Estimate(prompt_tokens(model, (("user", prompt),)), params.max_tokens),
                whole(lambda: self.engine.summarize(model, text.text, req.style, req.max_words, params)),
                long_after_s=self.engine.long_after_s(model, params.max_tokens), route=decision, prompt=text))

        answer = await whole_or_fallback(run, first, functools.partial(self.router.fallback, ctx.principal))
        c = answer.completion
        return Served(SummarizeResponse(result=c.content, model=c.model, usage=c.usage, cached=answer.cached,
                                        stale=answer.stale, correlation_id=ctx.correlation_id), answer.headers)

    async def chat(self, ctx: CallContext, req: ChatRequest) -> Served[ChatResponse]:
        call = ChatCall(req.model, tuple(req.messages),
                        SamplingParams(max_tokens=req.max_tokens, temperature=req.temperature))
        answer = await self.complete(ctx, call)
        c = answer.completion
        return Served(ChatResponse(content=c.content, finish_reason=c.finish_reason, model=c.model, usage=c.usage,
                                   cached=answer.cached, stale=answer.stale, correlation_id=ctx.correlation_id),
                      answer.headers)

    async def complete(self, ctx: CallContext, call: ChatCall) -> Answer:
        first = await self.route(ctx, call.model, _openai_messages(call))

        async def run(decision: RouteDecision | None) -> Answer:
            model = self.routed_model(ctx.principal, decision, call.model)
            prompt = MessagesPrompt(list(call.messages))
            return await self.answer(self._chat(
                ctx, call, model, whole(lambda: self.engine.chat(model, prompt.messages, call.params)),
                long_after_s=self.engine.long_after_s(model, call.params.max_tokens), route=decision, prompt=prompt))

        return await whole_or_fallback(run, first, functools.partial(self.router.fallback, ctx.principal))

    async def stream(self, ctx: CallContext, call: ChatCall) -> AsyncGenerator[Delta, None]:
        first = await self.route(ctx, call.model, _openai_messages(call))

        def open_(decision: RouteDecision | None) -> AsyncGenerator[Delta, None]:
            model = self.routed_model(ctx.principal, decision, call.model)
            prompt = MessagesPrompt(list(call.messages))
            return self.streamed(self._chat(ctx, call, model, lambda: self.engine.stream(model, prompt.messages,
                                                                                         call.params),
                                            route=decision, prompt=prompt))

        def again() -> AsyncGenerator[Delta, None] | None:
            other = self.router.fallback(ctx.principal, first)
            return None if other is None else open_(other)

        # Closed with this generator, at once: the pipeline's reply lets the client queue go then.
        async with contextlib.aclosing(stream_or_fallback(open_(first), again)) as deltas:
            async for delta in deltas:
                yield delta

    async def streamed(self, ex: Exchange) -> AsyncGenerator[Delta, None]:
        """The exchange's answer as deltas. Errors before the first content delta propagate as they
        are (the adapter can still answer with a status); after it, they become StreamInterrupted.
        The client may stop reading at any point: the call goes on and settles."""
        async with self._reply(ex) as reply:
            async for delta in reply:
                yield delta

    async def answer(self, ex: Exchange) -> Answer:
        """The exchange's answer, whole: a cache hit, or the model's (its call runs detached: a
        disconnect never cancels it)."""
        async with self._reply(ex) as reply:
            deltas = [delta async for delta in reply]
        first = next((d for d in deltas if d.whole is not None), None)
        if first is None or first.whole is None:
            raise RuntimeError(f"the {ex.operation} source ended without its whole answer")
        return Answer(first.whole, cached=first.cached, stale=first.stale, headers=ex.headers)

    @contextlib.asynccontextmanager
    async def _reply(self, ex: Exchange) -> AsyncIterator[Reply]:
        """The pipeline's reply to `ex`, closed when the reader is done with it. A refusal or failure
        after admission still tells the client its allowance (the error's own headers win)."""
        try:
            async with contextlib.aclosing(await run(self.stages, ex)) as reply:
                yield reply
        except AppError as err:
            for name, value in ex.headers.items():
                err.headers.setdefault(name, value)
            raise

    def _chat(self, ctx: CallContext, call: ChatCall, model: str, source: DeltaSource, *,
              long_after_s: float | None = None, route: RouteDecision | None = None,
              prompt: MessagesPrompt | None = None, semantic: bool = True) -> Exchange:
        texts = prompt or MessagesPrompt(list(call.messages))
        # Read after the guard stage: under redact_input the key and its embedding see the masked messages.
        request = functools.cache(lambda: _chat_key(ChatCall(call.model, tuple(texts.messages), call.params)))
        key = CacheKey(ctx.principal.tenant, model, request, lambda: chat_view(request()) if semantic else None)
        messages = tuple((m.role, m.content) for m in call.messages)
        return Exchange(ctx, "chat", model, key, Estimate(prompt_tokens(model, messages), call.params.max_tokens),
                        source, long_after_s=long_after_s, route=route, prompt=texts)


def whole(call: Callable[[], Awaitable[Completion]]) -> DeltaSource:
    """A non-streamed model call as the pipeline's source: one delta carrying the whole answer."""

    async def source() -> AsyncIterator[Delta]:
        c = await call()
        yield Delta(content=c.content, finish_reason=c.finish_reason, usage=c.usage, model=c.model, raw=c.raw,
                    request_id=c.request_id, whole=c)

    return source


def _openai_messages(call: ChatCall) -> Messages:
    """The conversation as the scorer reads it."""
    return [{"role": m.role, "content": m.content} for m in call.messages]


def _chat_key(call: ChatCall) -> dict[str, Any]:
    messages = [{"role": m.role, "content": m.content.strip()} for m in call.messages]
    return {"op": "chat", "messages": messages, "params": asdict(call.params)}
