"""The local telemetry receivers answer as the real services do; `make run` says where telemetry goes."""

from __future__ import annotations

import gzip
import json

import httpx

from tools.localenv.__main__ import telemetry_lines
from tools.telemetry_sink import Sink, appinsights, otlp


def test_the_ingestion_api_takes_gzipped_json_envelopes_and_counts_them() -> None:
    envelopes = [{"name": "Microsoft.ApplicationInsights.Request", "data": {"baseType": "RequestData"}},
                 {"name": "Microsoft.ApplicationInsights.Message", "data": {"baseType": "MessageData"}}]
    with Sink(appinsights.handle) as sink:
        answer = httpx.post(f"{sink.url}/v2.1/track", content=gzip.compress(json.dumps(envelopes).encode()),
                            headers={"content-encoding": "gzip", "content-type": "application/json"})
        lines = httpx.post(f"{sink.url}/v2/track", content="\n".join(json.dumps(e) for e in envelopes))
        ping = httpx.post(f"{sink.url}/QuickPulseService.svc/ping", content=b"{}")
        kept = sink.snapshot()
    assert answer.json() == {"itemsReceived": 2, "itemsAccepted": 2, "errors": []}
    assert lines.json()["itemsAccepted"] == 2 and ping.status_code == 200
    assert kept == envelopes * 2


def test_the_otlp_receiver_decodes_protobuf_spans() -> None:
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with provider.get_tracer("t").start_as_current_span("POST /api/v1/chat", attributes={"aigw.tenant": "dev"}):
        pass
    body = encode_spans(exporter.get_finished_spans()).SerializeToString()
    with Sink(otlp.handle) as sink:
        answer = httpx.post(f"{sink.url}/v1/traces", content=body, headers={"content-type": "application/x-protobuf"})
        (span,) = sink.snapshot()
    assert answer.status_code == 200
    assert span["name"] == "POST /api/v1/chat" and span["attributes"] == {"aigw.tenant": "dev"}


def test_make_run_says_where_telemetry_goes() -> None:
    assert "OTLP/HTTP to http://127.0.0.1:4318" in telemetry_lines({"OTEL_EXPORTER_OTLP_ENDPOINT":
                                                                    "http://127.0.0.1:4318"})[0]
    assert "Application Insights" in telemetry_lines({"APPLICATIONINSIGHTS_CONNECTION_STRING": "x"})[0]
    assert "off" in telemetry_lines({})[0]
