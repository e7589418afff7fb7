"""Spans, metrics and audit lines of the request path, read back from the OpenTelemetry SDK's in-memory exporters."""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Iterator
from typing import Any

import pytest
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from shared.core.models import JobRequest
from shared.identity.auth import Principal
from shared.jobs.service import JobReference, parse_job_message
from shared.observability import metrics as telemetry_metrics
from shared.observability import names as n
from shared.observability import tracing
from shared.observability.record import Record
from shared.upstream.attempts import held_stream
from tests.unit.resilience.helpers import FakeClock, api_error, endpoint, policy, scripted
from tests.unit.shared.fakes import FakeEngine
from tests.unit.shared.test_jobs import service

EXPORTER = InMemorySpanExporter()
READER = InMemoryMetricReader()
_PROVIDERS: dict[str, bool] = {}
ANSWER: dict[str, Any] = {"id": "chatcmpl-1", "model": "gpt-4o-2024", "choices": [{"finish_reason": "stop", "message":
          {"content": "hi"}}], "usage": {"prompt_tokens": 12, "completion_tokens": 3,
                                         "prompt_tokens_details": {"cached_tokens": 8},
                                         "completion_tokens_details": {"reasoning_tokens": 2}}}


@pytest.fixture
def telemetry_on() -> Iterator[InMemorySpanExporter]:
    """The SDK providers (set once per process: OpenTelemetry allows one) and the app's instruments."""
    if not _PROVIDERS:
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(EXPORTER))
        trace.set_tracer_provider(provider)
        metrics.set_meter_provider(MeterProvider(metric_readers=[READER]))
        _PROVIDERS["set"] = True
    EXPORTER.clear()
    READER.get_metrics_data()  # drop what earlier tests recorded (cumulative sums still accumulate)
    tracing.enable(telemetry_metrics.create())
    yield EXPORTER
    tracing.disable()


def _points() -> dict[str, list[Any]]:
    data = READER.get_metrics_data()
    out: dict[str, list[Any]] = {}
    for resource in data.resource_metrics if data else []:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                out.setdefault(metric.name, []).extend(metric.data.data_points)
    return out


def _client_spans(exporter: InMemorySpanExporter) -> list[ReadableSpan]:
    return [s for s in exporter.get_finished_spans() if s.kind is SpanKind.CLIENT]


async def test_each_attempt_is_a_client_span_with_genai_attributes_and_retries_are_counted(
        telemetry_on: InMemorySpanExporter) -> None:
    clock, calls = FakeClock(), list[str]()
    primary, secondary = endpoint("primary", priority=0), endpoint("secondary", priority=1)
    outcomes: list[BaseException | Any] = [api_error(503), (secondary, ANSWER)]
    await policy(clock, ["primary", "secondary"]).call([primary, secondary], scripted(outcomes, calls))
    failed, answered = _client_spans(telemetry_on)
    assert failed.attributes is not None and answered.attributes is not None
    assert failed.attributes[n.ENDPOINT] == "primary" and failed.attributes[n.ATTEMPT] == 1
    assert failed.attributes[n.ERROR_TYPE] == "EndpointFailed"
    assert failed.status.description is None  # never an exception's text
    a = answered.attributes
    assert answered.name == "chat m" and a[n.ATTEMPT] == 2 and a[n.ENDPOINT] == "secondary"
    assert a[n.GEN_AI_PROVIDER_NAME] == n.PROVIDER_OPENAI and a[n.GEN_AI_REQUEST_MODEL] == "m"
    assert a[n.GEN_AI_RESPONSE_MODEL] == "gpt-4o-2024" and a[n.GEN_AI_RESPONSE_ID] == "chatcmpl-1"
    assert tuple(a[n.GEN_AI_RESPONSE_FINISH_REASONS]) == ("stop",)  # type: ignore[arg-type]
    assert (a[n.GEN_AI_USAGE_INPUT_TOKENS], a[n.GEN_AI_USAGE_OUTPUT_TOKENS]) == (12, 3)
    assert (a[n.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS], a[n.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS]) == (8, 2)
    assert a[n.BREAKER_STATE] == "closed" and a[n.RETRY_WAIT_S] == 0.0 and a[n.GEN_AI_REQUEST_STREAM] is False
    points = _points()
    assert [p.attributes[n.ENDPOINT] for p in points[n.METRIC_RETRIES]] == ["secondary"]
    assert [p.attributes[n.ENDPOINT] for p in points[n.METRIC_FAILOVERS]] == ["primary"]
    kinds = {p.attributes[n.GEN_AI_TOKEN_TYPE]: p.sum for p in points[n.METRIC_TOKEN_USAGE]}
    assert kinds == {"input": 12, "output": 3}
    assert len(points[n.METRIC_OPERATION_DURATION]) == 2  # one series per outcome (error.type)


async def test_a_waited_retry_records_its_wait_on_the_next_attempt(telemetry_on: InMemorySpanExporter) -> None:
    clock, calls = FakeClock(), list[str]()
    outcomes: list[BaseException | Any] = [api_error(429, {"retry-after": "2"}), ANSWER]
    await policy(clock, ["only"]).call([endpoint("only")], scripted(outcomes, calls))
    first, second = _client_spans(telemetry_on)
    assert first.attributes is not None and second.attributes is not None
    assert first.attributes[n.RETRY_WAIT_S] == 0.0 and second.attributes[n.RETRY_WAIT_S] == 2.0


async def test_a_streamed_attempt_span_ends_with_the_stream_and_carries_the_final_usage(
        telemetry_on: InMemorySpanExporter) -> None:
    chunks: list[dict[str, Any]] = [{"id": "c1", "model": "gpt-4o", "choices": [{"delta": {"content": "Hel"}}]},
              {"id": "c1", "choices": [{"delta": {"content": "lo"}, "finish_reason": "stop"}]},
              {"id": "c1", "choices": [], "usage": {"prompt_tokens": 7, "completion_tokens": 2}}]

    async def open_stream(_: Any) -> AsyncGenerator[dict[str, Any], Any]:
        for chunk in chunks:
            yield chunk

    stream = held_stream(policy(FakeClock(), ["only"]), [endpoint("only")], open_stream,
                         started=lambda c: bool(c["choices"]), text=lambda c: "")
    first = await anext(stream)
    assert first[1] is chunks[0] and not _client_spans(telemetry_on), "open while the stream is read"
    assert [c async for _, c in stream] == chunks[1:]
    (span,) = _client_spans(telemetry_on)
    assert span.attributes is not None
    assert span.attributes[n.GEN_AI_REQUEST_STREAM] is True
    assert (span.attributes[n.GEN_AI_USAGE_INPUT_TOKENS], span.attributes[n.GEN_AI_USAGE_OUTPUT_TOKENS]) == (7, 2)
    assert float(span.attributes[n.TIME_TO_FIRST_CHUNK_S]) >= 0  # type: ignore[arg-type]
    assert n.METRIC_TIME_TO_FIRST_CHUNK in _points()


def test_a_server_span_continues_the_callers_trace_and_the_audit_line_has_every_field(
        telemetry_on: InMemorySpanExporter, caplog: pytest.LogCaptureFixture) -> None:
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    record = Record(route="v1/chat", tenant="dev", key_id="k1", correlation_id="x\nforged")
    assert tracing.server_span(record, "POST /api/v1/chat", f"00-{trace_id}-00f067aa0ba902b7-01", {}) == trace_id
    with caplog.at_level(logging.INFO, logger=n.AUDIT_LOGGER), tracing.active(record):
        tracing.admitted("gpt-4o-mini", lambda: {"messages": [{"content": "secret prompt"}]}, looked_up=True, hit=False)
        tracing.charged("dev", "gpt-4o-mini", 10, 5, 1500)
        tracing.refused("rate-limited")
        tracing.finish(record, 429)
    (span,) = telemetry_on.get_finished_spans()
    assert span.kind is SpanKind.SERVER and span.parent is not None and span.parent.span_id == 0x00F067AA0BA902B7
    assert span.attributes is not None and span.attributes[n.CACHE_RESULT] == "miss"
    (line,) = [r for r in caplog.records if r.name == n.AUDIT_LOGGER]
    fields = line.__dict__
    assert all(name in fields for name in n.AUDIT_FIELDS)
    assert fields[n.CORRELATION_ID] == "x forged" and fields[n.COST_USD] == 0.0015 and fields[n.STATUS] == 429
    assert fields[n.REFUSAL_TYPE] == "rate-limited" and n.AUDIT_PROMPT not in fields
    assert "secret prompt" not in line.getMessage() and "\n" not in line.getMessage()
    points = _points()
    assert [p.attributes[n.REFUSAL_TYPE] for p in points[n.METRIC_REFUSALS]] == ["rate-limited"]
    assert sum(p.value for p in points[n.METRIC_COST]) > 0


def test_a_tenant_that_opted_in_gets_its_content_sanitised(caplog: pytest.LogCaptureFixture) -> None:
    record = Record(route="v1/chat", log_content=True)
    with caplog.at_level(logging.INFO, logger=n.AUDIT_LOGGER), tracing.active(record):
        tracing.admitted("m", lambda: {"messages": [{"role": "user", "content": "line one\nline two\u2028"}]},
                         looked_up=False, hit=False)
        record.answer.append("an\r\nanswer")
        tracing.finish(record, 200)
    fields = next(r for r in caplog.records if r.name == n.AUDIT_LOGGER).__dict__
    assert "line one\\nline two" in fields[n.AUDIT_PROMPT] and "\u2028" not in fields[n.AUDIT_PROMPT]
    assert fields[n.AUDIT_ANSWER] == "an  answer" and fields[n.CACHE_RESULT] == "bypass"


async def test_with_telemetry_off_no_span_is_made_and_the_audit_line_is_still_written(
        caplog: pytest.LogCaptureFixture) -> None:
    EXPORTER.clear()
    record = Record(route="v1/chat")
    assert tracing.server_span(record, "POST /api/v1/chat", None, {}) is None and record.span is None
    with caplog.at_level(logging.INFO, logger=n.AUDIT_LOGGER), tracing.active(record):
        answers: list[Any] = [ANSWER]
        await policy(FakeClock(), ["only"]).call([endpoint("only")], scripted(answers, []))
        tracing.finish(record, 200)
    assert not EXPORTER.get_finished_spans()
    assert record.endpoint == "only"  # the audit still names the endpoint that answered
    assert any(r.name == n.AUDIT_LOGGER for r in caplog.records)


async def test_a_submitted_job_carries_the_submitting_span_to_its_queue_message(
        telemetry_on: InMemorySpanExporter) -> None:
    jobs, store = service(FakeEngine())
    record = Record(route="v1/jobs")
    trace_id = tracing.server_span(record, "POST /api/v1/jobs", None, {})
    with tracing.active(record):
        job_id, message = await jobs.submit(Principal("dev", "k"), JobRequest(kind="chat", input={}), "cid")
    parsed = parse_job_message(message)
    assert isinstance(parsed, JobReference) and parsed.traceparent is not None
    assert parsed.traceparent.split("-")[1] == trace_id
    assert store.docs[("dev", job_id)]["traceparent"] == parsed.traceparent  # for the sweeper's re-enqueue
    producer = parse_job_message('{"tenant": "dev", "kind": "chat", "input": {}, "traceparent": "garbage"}')
    assert producer.traceparent == "garbage"  # kept as sent; the propagator ignores an invalid one


def test_a_path_is_named_by_its_registered_route_template() -> None:
    import function_app  # noqa: F401  registers every route
    from functions.http_common import route_of

    assert route_of("/api/v1/jobs/0123abcd") == "v1/jobs/{job_id}"
    assert route_of("/api/v1/jobs") == "v1/jobs"
    azure = "openai/deployments/{deployment}/chat/completions"
    assert route_of("/api/openai/deployments/chat/chat/completions") == azure


def test_the_correlation_id_is_the_trace_id_unless_the_client_sent_one() -> None:
    from shared.core.correlation import correlation_id

    assert correlation_id({}, "ab" * 16) == "ab" * 16
    assert correlation_id({"x-correlation-id": "mine-1"}, "ab" * 16) == "mine-1"


def test_breaker_transitions_are_counted_by_endpoint_and_new_state(telemetry_on: InMemorySpanExporter) -> None:
    from shared.upstream.resilience.breaker import BreakerSettings, CircuitBreaker
    from shared.upstream.spans import ATTEMPT_SPANS

    clock = FakeClock()
    breaker = CircuitBreaker("east", BreakerSettings(consecutive_failures=2, cooldown_s=5), clock, ATTEMPT_SPANS)
    breaker.record_failure()
    breaker.record_failure()
    clock.t += 5
    assert breaker.allow()
    breaker.record_success()
    moves = {(p.attributes[n.ENDPOINT], p.attributes[n.BREAKER_STATE]): p.value
             for p in _points()[n.METRIC_BREAKER_TRANSITIONS] if p.attributes[n.ENDPOINT] == "east"}
    assert moves == {("east", "open"): 1, ("east", "half_open"): 1, ("east", "closed"): 1}
