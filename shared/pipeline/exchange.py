"""The exchange: one model-bound operation as it passes through the stages (shared/pipeline/stages.py).

It carries who asks (the call context), what is asked (operation, model group, cache key,
worst-case estimate, the model call as a source of deltas), what it cost (the meter) and what the
response must say (allowance and provider headers). A stage may wrap `source` (to watch or replace
what the model sends) and register work for the end of the call with `after` (settlement, cache
store): that work runs once, in order of need, however the call ends.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from shared.core.background import spawn
from shared.core.metering import Meter, metering
from shared.core.values import Delta
from shared.observability import tracing

if TYPE_CHECKING:
    from shared.core.routes import RouteDecision
    from shared.identity.auth import Principal
    from shared.pipeline.prompt import Prompt
    from shared.state.budget import Estimate, Reservation
    from shared.state.cache import CacheKey

DeltaSource = Callable[[], AsyncIterator[Delta]]
Reply = AsyncGenerator[Delta, None]  # the answer as the adapter reads it: a whole answer is one delta
Next = Callable[["Exchange"], Awaitable[Reply]]
Stage = Callable[["Exchange", Next], Awaitable[Reply]]


@dataclass(frozen=True)
class CallContext:
    """Who asks, under which correlation id, and what the client allows the cache to do."""

    principal: Principal
    correlation_id: str
    cache_lookup: bool = True  # false on `Cache-Control: no-cache`
    cache_store: bool = True  # false on `Cache-Control: no-store`


@dataclass(eq=False)
class Exchange:
    """One operation through the pipeline (compared by identity: kept in sets while it runs)."""

    ctx: CallContext
    operation: str  # chat, summarize, openai.chat, openai.embeddings: for the reader and the record
    model: str
    key: CacheKey | None  # None: never cached (embeddings)
    estimate: Estimate
    source: DeltaSource  # the model call; a whole (non-streamed) answer is one delta with `whole` set
    # A non-streamed call whose time limit is longer than the request deadline: the deadline, past
    # which it counts as a long call (bounded per tenant, its lease renewed); None for others.
    long_after_s: float | None = None
    route: RouteDecision | None = None  # the model route that chose `model` (shared/pipeline/routes.py)
    prompt: Prompt | None = None  # the request's texts, for the guard stage to screen and mask; None: not screened
    headers: dict[str, str] = field(default_factory=dict)  # for the response (allowance, provider id)
    reservation: Reservation | None = None
    invoked: bool = False  # the model call started: its drain runs the end-of-call work when it ends
    meter: Meter = field(init=False)
    _after: list[tuple[Callable[[], Awaitable[None]], bool]] = field(default_factory=list)
    _ended: list[Callable[[], None]] = field(default_factory=list)
    _finished: bool = False

    def __post_init__(self) -> None:
        self.meter = Meter(self.model, self.estimate.prompt_tokens, self.estimate.max_completion_tokens)

    @property
    def principal(self) -> Principal:
        return self.ctx.principal

    def after(self, work: Callable[[], Awaitable[None]], *, beside_next: bool = False) -> None:
        """Run `work` once the call has ended, whatever the ending: last registered, first run (as
        nested `finally` blocks unwind), so the cache store runs before the settlement it charges
        to. `beside_next`: it need not finish first, and runs together with the work registered
        before it (a store that makes no billed call, beside the settlement)."""
        self._after.append((work, beside_next))

    def when_ended(self, callback: Callable[[], None]) -> None:
        """Call `callback` the moment the call ends, before the end-of-call work (stop a timer, stop
        counting the call as running)."""
        self._ended.append(callback)

    def finish(self) -> None:
        """The call has ended: the `when_ended` callbacks now, then the end-of-call work, started once
        in a task of its own (a client gone never cancels a settlement), which the request's
        telemetry record waits for (its audit line says what was charged). Nothing is started when
        there is no work (a hit that reserved nothing)."""
        if not self._finished:
            self._finished = True
            ended, self._ended = self._ended, []
            for callback in ended:
                callback()
            # The stages' closures (the wrapped source, the meter's hook) refer to this exchange:
            # dropped now, the exchange is freed by reference counting, never left to the cyclic
            # collector (which, under load, found each request's objects promoted and walked them).
            self.source = _spent
            self.meter.hold_more = None
            if self._after:
                tracing.settling(spawn(self._run_after()))

    async def _run_after(self) -> None:
        with metering(self.meter):  # the store's embedding, if any, is charged to this call
            while self._after:
                work, beside_next = self._after.pop()
                if beside_next and self._after:
                    await asyncio.gather(work(), self._after.pop()[0]())
                else:
                    await work()


async def _spent() -> AsyncIterator[Delta]:
    """The source of an exchange that has ended: nothing more comes."""
    return
    yield


class ClientQueue:
    """Deltas on their way to the client: bounded, so a slow reader holds the model's stream back
    instead of filling memory; once the client has left, nothing more is kept for it."""

    def __init__(self, size: int) -> None:
        self._queue: asyncio.Queue[Delta | BaseException | None] = asyncio.Queue(size)
        self.gone = False

    async def put(self, item: Delta | BaseException | None) -> None:
        if not self.gone:
            await self._queue.put(item)

    async def read(self) -> AsyncGenerator[Delta, None]:
        """The deltas until the end; an error put in the queue is raised here."""
        try:
            while (item := await self._queue.get()) is not None:
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            self.leave()  # nothing more is kept for a client that left

    def leave(self) -> None:
        """The reader is gone: what waits is dropped, which also frees a pump blocked on a full queue."""
        self.gone = True
        while not self._queue.empty():
            self._queue.get_nowait()
