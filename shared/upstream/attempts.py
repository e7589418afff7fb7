"""One model call's attempts through the resilience policy, told to the request's meter: plain
and streamed, shared by the pass-through and the kernel's routed service (no SDK imported here)."""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

from shared.core.errors import ServiceUnavailable
from shared.core.metering import current_meter
from shared.core.streams import hold
from shared.upstream.endpoints import Endpoint
from shared.upstream.failures import billable_failure, classify
from shared.upstream.resilience.policy import BeforeRetry, ResiliencePolicy
from shared.upstream.spans import Attempt
from shared.upstream.spans import current as current_attempt

log = logging.getLogger(__name__)
T = TypeVar("T")
R = TypeVar("R")


async def held_stream(policy: ResiliencePolicy, endpoints: list[Endpoint],
                      open_stream: Callable[[Endpoint], AsyncGenerator[T, Any]], *,
                      started: Callable[[T], bool], text: Callable[[T], str]) -> AsyncIterator[tuple[Endpoint, T]]:
    """A streamed model call through the policy. An attempt lasts until the first item that
    `started` the answer: a failure before it fails over unseen; after it, the stream is cut and
    ServiceUnavailable is raised (a clean end would pass a partial answer off as whole)."""

    async def attempt(endpoint: Endpoint) -> tuple[Endpoint, list[T], AsyncGenerator[T, Any], Attempt | None]:
        # Held open past the policy: the attempt's span ends with the stream, with its final usage.
        span = current_attempt()
        if span is not None:
            span.hold()
        parts = open_stream(endpoint)
        held: list[T] = []

        def begun(item: T) -> bool:
            if span is not None:
                span.observe(item)
            return started(item)

        try:
            await hold(parts, begun, held)
        except BaseException as exc:
            # A 200 that broke before content was billed by the provider: the meter charges it.
            meter_failed_attempt(exc, "".join(text(item) for item in held), answer_started=bool(held))
            await parts.aclose()
            raise
        return endpoint, held, parts, span

    endpoint, held, parts, span = await policy.call(endpoints, attempt, before_retry=retry_gate())
    failure: BaseException | None = None
    try:
        for item in held:
            yield endpoint, item
        async for item in parts:
            if span is not None:
                span.observe(item)
            yield endpoint, item
    except Exception as exc:
        failure = exc
        policy.pool.record_failure(endpoint, classify(exc))
        log.warning("stream cut after content: endpoint=%s error=%s", endpoint.name, type(exc).__name__)
        raise ServiceUnavailable("The model's answer was cut off.") from exc
    finally:
        await parts.aclose()
        if span is not None:
            span.end(failure)


async def metered(call: Awaitable[R]) -> R:
    """One whole (non-streamed) attempt's call, its failure told to the request's meter: nothing
    of a whole answer is seen before it ends, so a cut one is charged its worst case (a streamed
    attempt tells the meter itself, with what it had received: see held_stream)."""
    meter = current_meter()
    if meter is not None:
        meter.began()
    try:
        return await call
    except BaseException as exc:
        meter_failed_attempt(exc, whole=True)
        raise


def meter_failed_attempt(exc: BaseException, partial: str = "", *, answer_started: bool = False,
                         whole: bool = False) -> None:
    """Tell the request's meter about an attempt that failed, charged when the provider may have
    billed it (shared/upstream/failures.billable_failure); never for an error status or a connection that
    did not reach it."""
    meter = current_meter()
    if meter is None:
        return
    meter.attempt_failed(partial, billable=billable_failure(exc, answer_started=answer_started), whole=whole)


def retry_gate() -> BeforeRetry | None:
    """The running request's say on another attempt after a charged one (Meter.before_retry)."""
    meter = current_meter()
    return meter.before_retry if meter is not None else None
