"""The one request path of docs/api.md and docs/accounting.md, shared by the HTTP and queue triggers.

rate limit + exact lookup -> budget reserve -> kernel -> cache store + budget settle, in at most
two Cosmos round trips before the model is called and none after it (docs/accounting.md,
"Round trips"). Authentication happens before (the adapter hands in a Principal); telemetry wraps it.

The model call and its settlement run in a task of their own: a client that disconnects cancels
the request, never the call it caused, so the answer is still read to its end (a stream is
drained) and the tenant is charged what the provider billed.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
import re
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Any

from shared.core.background import spawn
from shared.core.errors import AppError, Forbidden, ModelNotFound, RateLimited, ServiceUnavailable, TooManyRequests
from shared.core.metering import Meter, metering
from shared.core.models import ChatMessage, ChatRequest, ChatResponse, SummarizeRequest, SummarizeResponse, Usage
from shared.core.tokens import prompt_tokens
from shared.core.values import Completion, Delta, SamplingParams
from shared.identity.auth import Principal
from shared.observability import tracing
from shared.pipeline.admission import Admission, CallContext, Plan, nothing
from shared.state.budget import BudgetLedger, Estimate, Reservation
from shared.state.cache import CacheKey, ResponseCache, chat_view
from shared.state.ratelimit import RateLimiter
from shared.upstream.engine import LazyEngine
from shared.upstream.protocol import CACHEABLE_FINISH, assemble, billed_text, completion_of, tool_calls_begun

log = logging.getLogger(__name__)
__all__ = ["Answer", "CallContext", "ChatCall", "Gateway", "Plan", "StreamInterrupted", "charged"]
_PLACEHOLDER = re.compile(r"\{\{\$(\w+)\}\}")
SUMMARIZE_PROMPT = """Summarize the text below. Style: {{$style}}. Use at most {{$max_words}} words.
Reply with the summary only.

Text:
{{$text}}"""


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
    """The summarize prompt exactly as it is sent: one pass over the template, so nothing inside
    the inserted text (`{{$style}}`, `{{ }}`) is ever substituted; the model gets it literally."""
    values = {"text": text, "style": style, "max_words": str(max_words)}
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), SUMMARIZE_PROMPT)


DeltaSource = Callable[[], AsyncIterator[Delta]]
# Deltas waiting for a slow client: past this the model's stream waits for the client to read.
STREAM_QUEUE = 256
# How often a long call checks whether its budget lease is due for renewal (a no-op until it is).
RENEW_CHECK_S = 5.0


class Gateway:
    def __init__(self, engine: LazyEngine, rate_limiter: RateLimiter, budget: BudgetLedger,
                 cache: ResponseCache) -> None:
        self.engine = engine
        self.rate_limiter = rate_limiter
        self.budget = budget
        self.cache = cache
        self.admission = Admission(rate_limiter, budget, cache)
        self._long = LongCalls()

    def model_for(self, principal: Principal, requested: str | None) -> str:
        model = self.engine.resolve_model(requested)
        if model is None:
            raise ModelNotFound(f"The model or deployment {requested!r} is not available here.")
        allowed = principal.limits.allowed_models
        if allowed is not None and model not in allowed:
            raise Forbidden(f"The model {model!r} is not enabled for this tenant.")
        return model

    async def summarize(self, ctx: CallContext, req: SummarizeRequest) -> SummarizeResponse:
        model = self.model_for(ctx.principal, None)
        params = SamplingParams(max_tokens=summary_token_cap(req.max_words), temperature=0.3)
        prompt = render_summarize(req.text, req.style, req.max_words)
        key = CacheKey(ctx.principal.tenant, model,
                       lambda: {"op": "summarize", **req.model_dump(), "params": asdict(params)})
        plan = Plan(ctx, model, key, Estimate(prompt_tokens(model, (("user", prompt),)), params.max_tokens),
                    long_after_s=self.engine.long_after_s(model, params.max_tokens))
        answer = await self.answer(plan, lambda: self.engine.prompt(model, prompt, params))
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
        plan = self._chat_plan(ctx, call)
        return await self.answer(plan, lambda: self.engine.chat(plan.model, list(call.messages), call.params))

    async def stream(self, ctx: CallContext, call: ChatCall) -> AsyncGenerator[Delta, None]:
        plan = self._chat_plan(ctx, call, stream=True)
        async for delta in self.streamed(plan, lambda: self.engine.stream(plan.model, list(call.messages),
                                                                          call.params)):
            yield delta

    async def streamed(self, plan: Plan, source: DeltaSource) -> AsyncGenerator[Delta, None]:
        """The answer as deltas. Errors before the first content delta propagate as they are
        (the adapter can still answer with a status); after it, they become StreamInterrupted."""
        meter, hit, reservation = await self.admission.admit(plan)
        if hit is not None or reservation is None:
            for delta in _replay(hit) if hit is not None else []:
                yield delta
            return
        queue: _ClientQueue = _ClientQueue(STREAM_QUEUE)
        spawn(self._pump(plan, source, reservation, meter, queue))
        # The client may stop reading at any point: the pump goes on to the end and settles.
        try:
            while (item := await queue.get()) is not None:
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            queue.leave()  # nothing more is kept for a client that left

    def _chat_plan(self, ctx: CallContext, call: ChatCall, *, stream: bool = False) -> Plan:
        model = self.model_for(ctx.principal, call.model)
        request = functools.cache(lambda: _chat_key(call))
        key = CacheKey(ctx.principal.tenant, model, request, lambda: chat_view(request()))
        messages = tuple((m.role, m.content) for m in call.messages)
        return Plan(ctx, model, key, Estimate(prompt_tokens(model, messages), call.params.max_tokens),
                    long_after_s=None if stream else self.engine.long_after_s(model, call.params.max_tokens))

    async def answer(self, plan: Plan, invoke: Callable[[], Awaitable[Completion]]) -> Answer:
        """A cache hit, or the answer of `invoke` (run detached: a disconnect never cancels it)."""
        self._long.check(plan)
        meter, hit, reservation = await self.admission.admit(plan)
        if hit is not None or reservation is None:
            assert hit is not None  # noqa: S101  _admit returns a hit or a reservation
            return Answer(hit, cached=True)
        self._long.add(plan, meter)
        return await asyncio.shield(spawn(self._call(plan, reservation, meter, invoke)))

    def _room_for_retries(self, plan: Plan, meter: Meter) -> list[Reservation]:
        """Lets the meter ask for one more worst case before an attempt that follows a charged one
        (Meter.before_retry); what it holds is given back at settlement."""
        extra: list[Reservation] = []

        async def hold_more() -> bool:
            try:
                extra.append(await self.budget.reserve(plan.ctx.principal, plan.model, plan.estimate))
            except TooManyRequests:
                return False
            return True

        meter.hold_more = hold_more
        return extra

    async def _call(self, plan: Plan, reservation: Reservation, meter: Meter,
                    invoke: Callable[[], Awaitable[Completion]]) -> Answer:
        completion: Completion | None = None
        extra = self._room_for_retries(plan, meter)
        renewing = spawn(_renew_while_running(reservation)) if plan.long_after_s is not None else None
        try:
            with metering(meter):
                try:
                    completion = await invoke()
                except ServiceUnavailable:
                    # Degraded mode: every endpoint failed; an expired answer, flagged, beats a 503.
                    stale = await self.admission.exact(plan, stale_ok=True)
                    if stale is None:
                        raise
                    tracing.note_cache("stale")
                    return Answer(stale, cached=True, stale=True)
                _meter_answer(meter, billed_text(completion.raw) if completion.raw else completion.content,
                              completion.usage)
            return Answer(completion)
        finally:
            self._long.end(plan, meter)
            if renewing is not None:
                renewing.cancel()
            tracing.settling(spawn(self._settle(plan, reservation, meter, completion, extra)))

    async def _pump(self, plan: Plan, source: DeltaSource, reservation: Reservation, meter: Meter,
                    queue: _ClientQueue) -> None:
        """Reads the model's stream to its end whatever the client does, ends the client's stream,
        then stores and settles. The answer is kept only when it may be stored."""
        keep = plan.ctx.cache_store and self.cache.reads(plan.ctx.principal)
        parts: list[str] = []
        chunks: list[dict[str, Any]] = []  # the provider's own chunks (the pass-through), to cache
        finish, usage, answered_by, sent = "stop", None, plan.model, False
        whole: Completion | None = None
        extra = self._room_for_retries(plan, meter)
        try:
            with metering(meter):
                try:
                    async for delta in source():
                        meter.received(delta.content, tool_calls_begun(delta.raw) if delta.raw else 0)
                        sent = sent or bool(delta.content)
                        if keep:
                            if delta.raw is not None:
                                chunks.append(delta.raw)
                            parts.append(delta.content)
                        finish = delta.finish_reason or finish
                        usage = delta.usage or usage
                        answered_by = delta.model or answered_by
                        await queue.put(delta)
                        await reservation.renew()
                except AppError as exc:
                    await queue.put(await self._after_stream_failure(plan, exc, sent=sent))
                    return
                if usage is not None:
                    meter.reported(usage)
                    if keep:
                        whole = completion_of(assemble(chunks), "") if chunks else \
                            Completion("".join(parts), finish, answered_by, usage, "")
        except Exception as exc:  # noqa: BLE001  handed to the adapter, which logs it and ends the stream
            await queue.put(exc)
        finally:
            tracing.settling(spawn(self._settle(plan, reservation, meter, whole, extra)))
            await queue.put(None)

    async def _settle(self, plan: Plan, reservation: Reservation, meter: Meter, answer: Completion | None,
                      extra: list[Reservation]) -> None:
        """After the answer, off its critical path: the cache store and the settlement, together;
        the store first when it may embed (that embedding is charged too). Room held for retries
        is given back: the settlement charges every attempt."""
        with metering(meter):
            if answer is not None and self.cache.may_embed(plan.ctx.principal, plan.key):
                await self._store(plan, answer)
                answer = None
            await asyncio.gather(reservation.settle(meter.total()), *(r.settle(Usage()) for r in extra),
                                 self._store(plan, answer) if answer is not None else nothing())

    async def _after_stream_failure(self, plan: Plan, exc: AppError, *, sent: bool) -> BaseException | Delta:
        if sent:
            interrupted = StreamInterrupted("The model's answer was cut off. Retry the request.")
            interrupted.__cause__ = exc
            return interrupted
        # Nothing sent yet: in degraded mode an expired answer, flagged, beats a 503.
        stale = await self.admission.exact(plan, stale_ok=True) if isinstance(exc, ServiceUnavailable) else None
        if stale is None:
            return exc
        tracing.note_cache("stale")
        return Delta(content=stale.content, finish_reason=stale.finish_reason, usage=stale.usage, model=stale.model,
                     cached=True, stale=True, raw=stale.raw)

    async def _store(self, plan: Plan, completion: Completion) -> None:
        # Only whole answers: a cut one ("length", a filter) must not be served to the next caller.
        if not plan.ctx.cache_store or completion.finish_reason not in CACHEABLE_FINISH:
            return
        try:
            await self.cache.store(plan.ctx.principal, plan.model, plan.key, completion)
        except Exception as exc:  # noqa: BLE001
            log.warning("cache store failed: %s", type(exc).__name__)


@contextlib.asynccontextmanager
async def charged(reservation: Reservation, meter: Meter) -> AsyncIterator[Meter]:
    """The reservation as a context: inside it the layers below report to `meter`; leaving it in
    any way (an answer, an error) settles exactly what the meter recorded, in a task of its own
    that the response does not wait for."""
    try:
        with metering(meter):
            yield meter
    finally:
        tracing.settling(spawn(reservation.settle(meter.total())))


class LongCalls:
    """Per tenant, the non-streamed calls in flight in this process that may outlast the request
    deadline. One whose current attempt has run past the deadline is long: while a tenant has
    max_long_calls of those, another call that may be long is a 429, so one tenant's minutes-long
    generations cannot crowd out the rest. Calls that end in time (nearly all) and time spent
    waiting between attempts never count."""

    def __init__(self, now: Callable[[], float] = time.monotonic) -> None:
        self._now = now
        self._running: dict[str, set[Meter]] = {}

    def check(self, plan: Plan) -> None:
        after = plan.long_after_s
        if after is None:
            return
        tenant, most = plan.ctx.principal.tenant, plan.ctx.principal.limits.max_long_calls
        now = self._now()
        long = sum(1 for m in self._running.get(tenant, ()) if m.attempt_began is not None
                   and now - m.attempt_began > after)
        if long >= most:
            raise RateLimited(f"This tenant already has {most} long non-streamed requests in flight. Wait for "
                              "one to finish, or stream the answer (stream: true).", retry_after_s=5.0)

    def add(self, plan: Plan, meter: Meter) -> None:
        if plan.long_after_s is not None:
            self._running.setdefault(plan.ctx.principal.tenant, set()).add(meter)

    def end(self, plan: Plan, meter: Meter) -> None:
        running = self._running.get(plan.ctx.principal.tenant)
        if running is None:
            return
        running.discard(meter)
        if not running:
            del self._running[plan.ctx.principal.tenant]  # no entry per tenant ever seen


class _ClientQueue:
    """Deltas on their way to the client: bounded, so a slow reader holds the model's stream back
    instead of filling memory; once the client has left, nothing more is kept for it."""

    def __init__(self, size: int) -> None:
        self._queue: asyncio.Queue[Delta | BaseException | None] = asyncio.Queue(size)
        self.gone = False

    async def put(self, item: Delta | BaseException | None) -> None:
        if not self.gone:
            await self._queue.put(item)

    async def get(self) -> Delta | BaseException | None:
        return await self._queue.get()

    def leave(self) -> None:
        """The reader is gone: what waits is dropped, which also frees a pump blocked on a full queue."""
        self.gone = True
        while not self._queue.empty():
            self._queue.get_nowait()


async def _renew_while_running(reservation: Reservation) -> None:
    """A long call's budget lease, renewed while it runs (renew is a no-op until it is due)."""
    while True:
        await asyncio.sleep(RENEW_CHECK_S)
        await reservation.renew()


def _meter_answer(meter: Meter, content: str, usage: Usage) -> None:
    """The provider's usage when it reported one; else the answer is counted (a server without usage)."""
    if usage.total_tokens:
        meter.reported(usage)
    else:
        meter.received(content)


def _replay(hit: Completion) -> list[Delta]:
    return [Delta(content=hit.content, model=hit.model, cached=True, raw=hit.raw),
            Delta(finish_reason=hit.finish_reason, usage=hit.usage, model=hit.model, cached=True)]


def _chat_key(call: ChatCall) -> dict[str, Any]:
    messages = [{"role": m.role, "content": m.content.strip()} for m in call.messages]
    return {"op": "chat", "messages": messages, "params": asdict(call.params)}
