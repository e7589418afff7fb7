"""Content safety's telemetry: a span per call to a safety service, the block, flag, redaction and
unchecked counters, and what the request's audit record says of them (kinds and counts, never text)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping

from shared.observability import names as n
from shared.observability import tracing


@contextlib.contextmanager
def span(operation: str, service: str) -> Iterator[None]:
    """A CLIENT span around one call to a safety service (none when telemetry is off); a failure marks it."""
    if not tracing.enabled():
        yield
        return
    from opentelemetry.trace import SpanKind, Status, StatusCode  # noqa: PLC0415  only when telemetry is on

    with tracing.tracer().start_as_current_span(f"{n.SAFETY_SPAN_PREFIX} {operation}", kind=SpanKind.CLIENT,
                                                attributes={n.SAFETY_SERVICE: service},
                                                record_exception=False, set_status_on_exception=False) as current:
        try:
            yield
        except BaseException as exc:
            current.set_status(Status(StatusCode.ERROR))
            current.set_attribute(n.ERROR_TYPE, type(exc).__name__)
            raise


def blocked(tenant: str, kinds: list[str]) -> None:
    record = tracing.current()
    if record is not None:
        record.safety_blocked = kinds
    inst = tracing.instruments()
    if inst is not None:
        for kind in kinds:
            inst.safety_blocks.add(1, {n.TENANT: tenant, n.SAFETY_KIND: kind})


def flagged(kinds: list[str]) -> None:
    """Detected and let through (`annotate`): in the audit record only."""
    record = tracing.current()
    if record is not None:
        record.safety_flagged = kinds


def redacted(tenant: str, counts: Mapping[str, int]) -> None:
    """Redactions made in one text (an answer, a prompt under `redact_input`), by kind."""
    counts = {k: v for k, v in counts.items() if v}
    if not counts:
        return
    record = tracing.current()
    if record is not None:
        for kind, count in counts.items():
            record.safety_redacted[kind] = record.safety_redacted.get(kind, 0) + count
    inst = tracing.instruments()
    if inst is not None:
        for kind, count in counts.items():
            inst.safety_redactions.add(count, {n.TENANT: tenant, n.SAFETY_KIND: kind})


def unchecked(tenant: str, service: str) -> None:
    """A safety service failed and the request was served anyway (`on_error: open`)."""
    record = tracing.current()
    if record is not None and service not in record.safety_unchecked:
        record.safety_unchecked.append(service)
    inst = tracing.instruments()
    if inst is not None:
        inst.safety_unchecked.add(1, {n.TENANT: tenant, n.SAFETY_SERVICE: service})
