"""The same telemetry over OTLP/HTTP (OTEL_EXPORTER_OTLP_ENDPOINT), received by tools/telemetry_sink's
OTLP receiver: what a developer sees in Jaeger or Grafana without Azure."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from shared.observability import names as n
from tests.conftest import DEV_KEY
from tools.localenv import LocalStack
from tools.telemetry_sink import Sink, otlp


@pytest.fixture(scope="module")
def otlp_sink() -> Iterator[Sink]:
    with Sink(otlp.handle) as running:
        yield running


@pytest.fixture(scope="module")
def otlp_url(stack: LocalStack, otlp_sink: Sink) -> Iterator[str]:
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": otlp_sink.url, "OTEL_BSP_SCHEDULE_DELAY": "200",
           "OTEL_BLRP_SCHEDULE_DELAY": "200", "OTEL_METRIC_EXPORT_INTERVAL": "1000"}
    with stack.app_on_free_port("telemetry-otlp", env) as url:
        yield url


def _wait(sink: Sink, what: str, match: Callable[[dict[str, Any]], bool], deadline_s: float = 180) -> dict[str, Any]:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        found = [item for item in sink.snapshot() if match(item)]
        if found:
            return found[0]
        time.sleep(0.25)
    raise AssertionError(f"no {what} arrived over OTLP")


def test_spans_metrics_and_audit_logs_reach_an_otlp_collector(otlp_url: str, otlp_sink: Sink) -> None:
    trace_id = uuid.uuid4().hex
    response = httpx.post(f"{otlp_url}/api/v1/chat", headers={"x-api-key": DEV_KEY,
                                                              "traceparent": f"00-{trace_id}-{'1' * 16}-01"},
                          json={"messages": [{"role": "user", "content": "hello"}], "max_tokens": 50}, timeout=60)
    assert response.status_code == 200, response.text
    # OTLP JSON carries ids base64-encoded (MessageToDict): compare on the attributes instead.
    server = _wait(otlp_sink, "server span", lambda i: i["signal"] == "span" and i["kind"] == "SPAN_KIND_SERVER"
                   and i["attributes"].get(n.CORRELATION_ID) == trace_id)
    assert server["name"] == "POST /api/v1/chat" and server["attributes"][n.TENANT] == "dev"
    attempt = _wait(otlp_sink, "model attempt span", lambda i: i["signal"] == "span" and i["kind"] == "SPAN_KIND_CLIENT"
                    and i["traceId"] == server["traceId"] and n.GEN_AI_OPERATION_NAME in i["attributes"])
    # The native operation is a kernel function: Semantic Kernel's span sits between request and attempt.
    kernel = _wait(otlp_sink, "kernel function span", lambda i: i["signal"] == "span"
                   and i["traceId"] == server["traceId"] and i["spanId"] == attempt["parentSpanId"])
    assert kernel["name"] == "execute_tool gateway-chat" and kernel["parentSpanId"] == server["spanId"]
    assert int(attempt["attributes"][n.GEN_AI_USAGE_OUTPUT_TOKENS]) == response.json()["usage"]["completion_tokens"]
    # The HTTP call to the model endpoint is the attempt's child: its instrumentation sent `traceparent`.
    _wait(otlp_sink, "model HTTP call", lambda i: i["signal"] == "span" and i["kind"] == "SPAN_KIND_CLIENT"
          and i.get("parentSpanId") == attempt["spanId"])
    _wait(otlp_sink, "token metric", lambda i: i["signal"] == "metric" and i["name"] == n.METRIC_TOKEN_USAGE)
    _wait(otlp_sink, "audit record", lambda i: i["signal"] == "log"
          and i["attributes"].get(n.CORRELATION_ID) == trace_id and n.AUDIT_EVENT in i["body"])
