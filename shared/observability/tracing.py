"""The record of one request or job: its server span, what the layers below learn of it, its audit line.

A `Record` is made by the trigger adapter (functions/http_common.respond, functions/queue_jobs) and
found by the layers below through a context variable (the gateway's cache result, the budget's
charge, the model attempt's endpoint), as the meter is. Tasks the request spawns copy the context,
so a detached call or a stream's pump still reports to it.

When telemetry is off (`enabled()` false) no span is made and no instrument is touched: a record is
one small object per request, and its audit line (shared/observability/audit.py) is still written.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterator, Mapping
from contextvars import ContextVar
from typing import Any

from shared.observability import names as n
from shared.observability.metrics import Instruments
from shared.observability.record import Record

REFUSALS = ("rate-limited", "budget-busy", "budget-exhausted")
_STATE: dict[str, Any] = {"instruments": None}


def enable(instruments: Instruments) -> None:
    """Called once by shared/observability/telemetry.setup_telemetry after the providers are set."""
    from opentelemetry import trace  # noqa: PLC0415

    _STATE["tracer"] = trace.get_tracer("aigw")  # once: the SDK's get_tracer is costly per call
    _STATE["instruments"] = instruments


def tracer() -> Any:
    """The app's tracer (only once enabled)."""
    return _STATE["tracer"]


def disable() -> None:
    _STATE["instruments"] = None


def instruments() -> Instruments | None:
    """The metric instruments, or None when telemetry is off."""
    inst: Instruments | None = _STATE["instruments"]
    return inst


def enabled() -> bool:
    return _STATE["instruments"] is not None


_CURRENT: ContextVar[Record | None] = ContextVar("aigw_record", default=None)


def current() -> Record | None:
    return _CURRENT.get()


def server_span(record: Record, name: str, traceparent: str | None, attributes: Mapping[str, Any]) -> str | None:
    """Start the record's SERVER span, a child of the caller's W3C `traceparent` when one is valid;
    returns the span's trace id (32 hex digits), or None when telemetry is off."""
    if not enabled():
        return None
    from opentelemetry import trace  # noqa: PLC0415  the API only; cheap once imported
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator  # noqa: PLC0415

    parent = TraceContextTextMapPropagator().extract({"traceparent": traceparent}) if traceparent else None
    span = tracer().start_span(name, context=parent, kind=trace.SpanKind.SERVER,
                                               attributes=dict(attributes))
    record.span = span
    return trace.format_trace_id(span.get_span_context().trace_id)


@contextlib.contextmanager
def active(record: Record) -> Iterator[Record]:
    """Within the block the record is the current one, and its span the current span (so model
    attempts and the Azure SDK's Cosmos spans are its children)."""
    token = _CURRENT.set(record)
    span_cm: contextlib.AbstractContextManager[Any] = contextlib.nullcontext()
    if record.span is not None:
        from opentelemetry import trace  # noqa: PLC0415

        span_cm = trace.use_span(record.span, end_on_exit=False)
    try:
        with span_cm:
            yield record
    finally:
        _CURRENT.reset(token)


def traceparent() -> str | None:
    """The current span as a W3C traceparent (what a queue message carries), or None."""
    if not enabled():
        return None
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator  # noqa: PLC0415

    carrier: dict[str, str] = {}
    TraceContextTextMapPropagator().inject(carrier)
    return carrier.get("traceparent")


def admitted(model: str, request: Callable[[], Mapping[str, Any]], *, looked_up: bool, hit: bool) -> None:
    """The gateway's hook after the cache lookup: the model group and the cache result."""
    record = _CURRENT.get()
    if record is None:
        return
    record.model = model
    if not looked_up:
        record.cache_result = "bypass"
    elif not hit:
        record.cache_result = "miss"
    elif not record.cache_result:
        record.cache_result = "exact_hit"  # the semantic cache notes its own hits (note_cache)
    if record.log_content and not record.prompt:
        record.prompt = _content_of(request())


@contextlib.contextmanager
def aside() -> Iterator[None]:
    """An exchange run for the request rather than as it (a route's second opinion): its charges and
    tokens count in the request's record, while the model, endpoint, cache result and the logged
    prompt and answer stay the request's own."""
    record = _CURRENT.get()
    if record is None:
        yield
        return
    kept = record.model, record.endpoint, record.cache_result, record.prompt, list(record.answer)
    try:
        yield
    finally:
        record.model, record.endpoint, record.cache_result, record.prompt, record.answer = kept


def note_cache(result: str) -> None:
    """A cache result decided below the gateway (a semantic hit, a stale answer in degraded mode)."""
    record = _CURRENT.get()
    if record is not None:
        record.cache_result = result


def charged(tenant: str, model: str, prompt_tokens: int, completion_tokens: int, micros: int) -> None:
    """The budget's hook at each settlement: what the tenant was charged."""
    record = _CURRENT.get()
    if record is not None:
        record.input_tokens += prompt_tokens
        record.output_tokens += completion_tokens
        record.cost_micros += micros
    inst = instruments()
    if inst is not None:
        dims = {n.TENANT: tenant, n.GEN_AI_REQUEST_MODEL: model}
        inst.cost.add(micros / 1_000_000, dims)
        inst.tokens_charged.add(prompt_tokens, {**dims, n.GEN_AI_TOKEN_TYPE: "input"})
        inst.tokens_charged.add(completion_tokens, {**dims, n.GEN_AI_TOKEN_TYPE: "output"})


def budget_window(tenant: str, window: str, doc: Mapping[str, Any] | None, token_limit: int | None,
                  usd_micros_limit: int | None) -> None:
    """The budget's hook after a window was settled: used / limit for each limit the tenant has."""
    inst = instruments()
    if inst is None or doc is None:
        return
    for unit, used, limit in (("tokens", doc.get("tokens_used"), token_limit),
                              ("usd", doc.get("usd_used_micros"), usd_micros_limit)):
        if isinstance(used, int | float) and limit:
            inst.budget_used_ratio.set(used / limit, {n.TENANT: tenant, n.BUDGET_WINDOW: window, n.BUDGET_UNIT: unit})


def routed(route: str, tier: str, score: float, *, fallback: bool, second_opinion: str | None = None) -> None:
    """The routing stage's hook: which route, the tier that ran, the score and, when a model was
    asked, its verdict (docs/routing.md)."""
    record = _CURRENT.get()
    if record is not None:
        record.routing = {n.ROUTING_ROUTE: route, n.ROUTING_TIER: tier,
                          n.ROUTING_SCORE: round(score, 4), n.ROUTING_FALLBACK: fallback}
        if second_opinion is not None:
            record.routing[n.ROUTING_SECOND_OPINION] = second_opinion


def routing_savings(tenant: str, route: str, model: str, usd: float) -> None:
    """The routing stage's hook at the end of a routed call: the complex model's cost minus the charge."""
    inst = instruments()
    if inst is not None:
        inst.routing_savings.add(usd, {n.TENANT: tenant, n.ROUTING_ROUTE: route, n.GEN_AI_REQUEST_MODEL: model})


def job_done(outcome: n.JobOutcome, age_s: float | None) -> None:
    """The job service's hook: how a delivery ended, and how old the job was then (its own clock's
    reading, for a job that ended)."""
    record = _CURRENT.get()
    if record is None:
        return
    record.outcome = outcome
    record.job_age_s = age_s


def refused(slug: str) -> None:
    record = _CURRENT.get()
    if record is not None and slug in REFUSALS:
        record.refusal = slug


def settling(task: asyncio.Future[Any]) -> None:
    """The gateway's hook when it leaves a settlement running after the response."""
    record = _CURRENT.get()
    if record is not None and not record.finished:
        record.settling.append(task)


def finish(record: Record, status: int) -> None:
    """Close the record once, when its settlements are done: attributes on its span, the span
    ended (at the response's end), metrics, the audit line."""
    if record.finished:
        return
    record.finished = True
    record.status = record.status or status
    record.ended, record.ended_ns = time.perf_counter(), time.time_ns()
    pending = [t for t in record.settling if not t.done()]
    if pending:
        from shared.core.background import spawn  # noqa: PLC0415

        spawn(_close_after(record, pending))
    else:
        _close(record)


async def _close_after(record: Record, pending: list[asyncio.Future[Any]]) -> None:
    await asyncio.gather(*pending, return_exceptions=True)
    _close(record)


def _close(record: Record) -> None:
    from shared.observability import audit  # noqa: PLC0415  a sibling module, split for size

    fields = audit.fields(record)
    inst = instruments()
    if inst is not None:
        _count(inst, record)
    if record.span is not None:
        span = record.span
        span.set_attributes({k: v for k, v in fields.items() if v not in ("", None)})
        if not record.job:
            span.set_attribute(n.HTTP_RESPONSE_STATUS_CODE, record.status)
        if record.status >= 500 or record.outcome in ("failed", "retry"):
            from opentelemetry.trace import Status, StatusCode  # noqa: PLC0415

            span.set_status(Status(StatusCode.ERROR))
        span.end(end_time=record.ended_ns)
    audit.write(record, fields)


def _count(inst: Instruments, record: Record) -> None:
    if record.cache_result:
        inst.cache_lookups.add(1, {n.TENANT: record.tenant, n.GEN_AI_REQUEST_MODEL: record.model,
                                   n.CACHE_RESULT: record.cache_result})
    if record.refusal:
        inst.refusals.add(1, {n.TENANT: record.tenant, n.REFUSAL_TYPE: record.refusal})
    if record.outcome:
        inst.jobs.add(1, {n.TENANT: record.tenant, n.OUTCOME: record.outcome})
        if record.job_age_s is not None:
            inst.job_age.record(record.job_age_s, {n.TENANT: record.tenant, n.OUTCOME: record.outcome})


def _content_of(key: Mapping[str, Any]) -> str:
    import json  # noqa: PLC0415

    value = key.get("messages") or key.get("text") or dict(key)
    return json.dumps(value, ensure_ascii=False)[:32_000]
