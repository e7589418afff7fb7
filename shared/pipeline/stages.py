"""The stages every model-bound operation passes through: `build_stages` is the one list.

Each stage is a small callable in the shape of azure-core's pipeline policies: it takes the
exchange and the next stage, may refuse (raise), answer without going on (a cache hit), wrap the
model's stream (`ex.source`) or register end-of-call work (`ex.after`), and returns the reply. A
stage owns its concern whole: the budget stage reserves and settles, the store stage collects and
stores. Adding a policy (content safety, routing) is adding a stage to the list.

The last stage, `invoke`, starts the model call in a task of its own and drains it to its end
whatever the client does (a client gone cancels the request, never the call it caused), then runs
the end-of-call work once: so every ending (an answer, a stream, a cut, an error, a client gone, a
cancel) is settled the same way. A non-streamed call is a stream of one delta (`Delta.whole`).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from typing import TYPE_CHECKING, Any

from shared.core.background import spawn
from shared.core.errors import AppError, ServiceUnavailable, TooManyRequests
from shared.core.metering import metering
from shared.core.models import Usage
from shared.core.values import Completion, Delta
from shared.observability import tracing
from shared.pipeline.activity import ActivityCounter, Counted
from shared.pipeline.exchange import ClientQueue, Exchange, Next, Reply, Stage
from shared.pipeline.long_calls import LongCalls
from shared.upstream.protocol import CACHEABLE_FINISH, assemble, billed_text, completion_of, tool_calls_begun

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from shared.pipeline.admission import Admission
    from shared.pipeline.guard import Guard
    from shared.state.budget import Reservation

log = logging.getLogger(__name__)
# Deltas waiting for a slow client: past this the model's stream waits for the client to read.
STREAM_QUEUE = 256
# How often a long call checks whether its budget lease is due for renewal (a no-op until it is).
RENEW_CHECK_S = 5.0


class StreamInterrupted(AppError):
    """The model's stream broke after content was sent: the client must see an error, not an end."""

    status, title, type_slug = 502, "Bad Gateway", "stream-interrupted"


def build_stages(admission: Admission, long_calls: LongCalls, routing: Stage, guard: Guard,
                 activity: ActivityCounter | None = None) -> list[Stage]:
    """The pipeline, in order."""
    return [
        *([Counted(activity).stage] if activity is not None else []),  # requests, hits, refusals per tenant
        routing,  # a routed request says where it went (x-aigw-route, the record), and what that saved
        long_calls.stage,  # a tenant's long non-streamed calls at once are bounded (429)
        # Content safety screens (and may mask) the request before anything is reserved or looked up,
        # and redacts the answer inside the store stage (the cache keeps what the client received).
        guard.stage,
        Budget(admission).stage,  # rate limit, cache lookup and reservation; the settlement at the end
        Degraded(admission).stage,  # no endpoint could answer: an expired cache entry, flagged, beats a 503
        Store(admission).stage,  # a whole answer that may be cached is stored at the end
        invoke,  # the model call, detached and drained to its end; runs the end-of-call work
    ]


async def run(stages: list[Stage], ex: Exchange) -> Reply:
    """The exchange through `stages`. Ended before the model was called (a refusal, a hit, a
    cancel), its end-of-call work runs here; else the drain runs it when the call ends."""

    try:
        return await _at(stages, 0, ex)
    finally:
        if not ex.invoked:
            ex.finish()


async def _at(stages: list[Stage], index: int, ex: Exchange) -> Reply:
    """Stage `index`, handed the rest as its next (a partial, not a closure over itself: no
    reference cycle for the collector to find per request)."""
    return await stages[index](ex, functools.partial(_at, stages, index + 1))


class Budget:
    """Admission (rate limit, cache lookup, reservation: one stage since they share Cosmos round
    trips) and the settlement of what the meter recorded, together. Before an attempt that follows
    a charged one, room for one more worst case is reserved (Meter.before_retry), given back at
    settlement. A long call renews its lease while it runs."""

    def __init__(self, admission: Admission) -> None:
        self.admission = admission

    async def stage(self, ex: Exchange, nxt: Next) -> Reply:
        extra: list[Reservation] = []

        async def settle() -> None:
            assert ex.reservation is not None  # noqa: S101  registered once there is one
            if extra:
                await asyncio.gather(ex.reservation.settle(ex.meter.total()), *(r.settle(Usage()) for r in extra))
            else:
                await ex.reservation.settle(ex.meter.total())

        try:
            hit = await self.admission.admit(ex)
        finally:
            if ex.reservation is not None:  # held, whatever came next: settled at the end
                ex.after(settle)
        if hit is not None:
            return replay(hit)

        async def hold_more() -> bool:
            try:
                extra.append(await self.admission.budget.reserve(ex.principal, ex.model, ex.estimate))
            except TooManyRequests:
                return False
            return True

        ex.meter.hold_more = hold_more
        if ex.long_after_s is not None and ex.reservation is not None:
            renewing = spawn(_renew_while_running(ex.reservation))

            def stop() -> None:
                renewing.cancel()

            ex.when_ended(stop)
        return await nxt(ex)


class Degraded:
    """Degraded mode: when no endpoint could answer and nothing was sent yet, an expired cache
    entry, flagged stale, is the answer instead of a 503 (docs/breakers.md)."""

    def __init__(self, admission: Admission) -> None:
        self.admission = admission

    async def stage(self, ex: Exchange, nxt: Next) -> Reply:
        if ex.key is None:
            return await nxt(ex)
        live = ex.source

        async def source() -> AsyncIterator[Delta]:
            sent = False
            try:
                async for delta in live():
                    sent = sent or delta.answers
                    yield delta
            except ServiceUnavailable:
                stale = None if sent else await self.admission.exact(ex, stale_ok=True)
                if stale is None:
                    raise
                tracing.note_cache("stale")
                yield Delta(content=stale.content, finish_reason=stale.finish_reason, usage=stale.usage,
                            model=stale.model, cached=True, stale=True, raw=stale.raw, whole=stale)

        ex.source = source
        return await nxt(ex)


class Store:
    """A whole answer (finished by the model, not cut) is stored in the cache at the end of the
    call, before the settlement (a store that embeds is charged too). The stream's pieces are kept
    only when the answer may be stored."""

    def __init__(self, admission: Admission) -> None:
        self.admission = admission
        self.cache = admission.cache

    async def stage(self, ex: Exchange, nxt: Next) -> Reply:
        key = ex.key
        if key is None or not ex.ctx.cache_store or not self.cache.reads(ex.principal):
            return await nxt(ex)
        live = ex.source
        answer: list[Completion] = []

        async def source() -> AsyncIterator[Delta]:
            chunks: list[dict[str, Any]] = []
            parts: list[str] = []
            finish, usage, model = "stop", None, ex.model
            async for delta in live():
                yield delta
                if delta.cached:
                    return  # a stale answer is never stored again
                if delta.whole is not None:
                    answer.append(delta.whole)
                    return
                if delta.raw is not None:
                    chunks.append(delta.raw)
                parts.append(delta.content)
                finish, usage, model = delta.finish_reason or finish, delta.usage or usage, delta.model or model
            if usage is not None:  # the stream ended whole
                answer.append(completion_of(assemble(chunks), "") if chunks
                              else Completion("".join(parts), finish, model, usage, ""))

        async def store() -> None:
            if not answer or answer[0].finish_reason not in CACHEABLE_FINISH:
                return  # a cut answer ("length", a filter) must not be served to the next caller
            try:
                await self.cache.store(ex.principal, ex.model, key, answer[0])
            except Exception as exc:  # noqa: BLE001  a cache that fails never fails the request
                log.warning("cache store failed: %s", type(exc).__name__)

        ex.source = source
        # A store that may embed is billed: it finishes before the settlement charges it; else both at once.
        ex.after(store, beside_next=not self.cache.may_embed(ex.principal, key))
        return await nxt(ex)


async def invoke(ex: Exchange, _: Next) -> Reply:
    """The model call in a task of its own, read to its end whatever the client does; its deltas
    reach the client through a bounded queue. Errors before the first content reach the adapter as
    they are (it can still answer with a status); after it, they become StreamInterrupted."""
    queue = ClientQueue(STREAM_QUEUE)
    ex.invoked = True
    spawn(_drain(ex, queue))
    return queue.read()


async def _drain(ex: Exchange, queue: ClientQueue) -> None:
    meter, sent, usage = ex.meter, False, None
    try:
        with metering(meter):
            try:
                async for delta in ex.source():
                    if not delta.cached:
                        raw = delta.raw
                        if delta.whole is not None:
                            meter.received(billed_text(raw) if raw is not None else delta.content)
                        else:
                            meter.received(delta.content, tool_calls_begun(raw) if raw is not None else 0)
                        usage = delta.usage or usage
                        sent = sent or delta.answers
                    await queue.put(delta)
                    if ex.reservation is not None and ex.long_after_s is None:
                        await ex.reservation.renew()
            except AppError as exc:
                await queue.put(_interrupted(exc) if sent else exc)
                return
            if usage is not None and usage.total_tokens:
                meter.reported(usage)
    except Exception as exc:  # noqa: BLE001  handed to the adapter, which logs it and ends the reply
        await queue.put(exc)
    finally:
        ex.finish()
        await queue.put(None)


def _interrupted(exc: AppError) -> StreamInterrupted:
    interrupted = StreamInterrupted("The model's answer was cut off. Retry the request.")
    interrupted.__cause__ = exc
    return interrupted


async def replay(hit: Completion) -> Reply:
    """A cached answer as the deltas of a reply: the whole answer, then its end."""
    yield Delta(content=hit.content, model=hit.model, cached=True, raw=hit.raw, whole=hit)
    yield Delta(finish_reason=hit.finish_reason, usage=hit.usage, model=hit.model, cached=True)


async def _renew_while_running(reservation: Reservation) -> None:
    """A long call's budget lease, renewed while it runs (renew is a no-op until it is due)."""
    while True:
        await asyncio.sleep(RENEW_CHECK_S)
        await reservation.renew()
