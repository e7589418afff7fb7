"""OTLP/HTTP as collectors speak it: POST /v1/traces, /v1/metrics, /v1/logs, protobuf (or JSON) bodies.

Each span, metric data point and log record is kept as a flat dict (its name, trace and span ids,
attributes), so a developer sees what the app sends without running Jaeger.
"""

from __future__ import annotations

import json
from typing import Any

from google.protobuf.json_format import MessageToDict, Parse  # type: ignore[import-untyped]
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

_SERVICES: dict[str, tuple[Any, Any]] = {
    "/v1/traces": (trace_service_pb2.ExportTraceServiceRequest, trace_service_pb2.ExportTraceServiceResponse),
    "/v1/metrics": (metrics_service_pb2.ExportMetricsServiceRequest, metrics_service_pb2.ExportMetricsServiceResponse),
    "/v1/logs": (logs_service_pb2.ExportLogsServiceRequest, logs_service_pb2.ExportLogsServiceResponse),
}


def handle(path: str, media: str, body: bytes) -> tuple[int, str, bytes, list[dict[str, Any]]]:
    kinds = _SERVICES.get(path.split("?", maxsplit=1)[0])
    if kinds is None:
        return 404, "text/plain", b"not an OTLP path", []
    request_type, response_type = kinds
    request = request_type()
    if media.startswith("application/json"):
        Parse(body.decode("utf-8"), request)
    else:
        request.ParseFromString(body)
    items = _flatten(path, MessageToDict(request))
    return 200, "application/x-protobuf", response_type().SerializeToString(), items


def _attributes(raw: list[dict[str, Any]] | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for attribute in raw or []:
        value = attribute.get("value", {})
        out[attribute["key"]] = next(iter(value.values()), None) if value else None
    return out


def _flatten(path: str, request: dict[str, Any]) -> list[dict[str, Any]]:
    if path == "/v1/traces":
        return [_span(span) for resource in request.get("resourceSpans", [])
                for scope in resource.get("scopeSpans", []) for span in scope.get("spans", [])]
    if path == "/v1/metrics":
        return [{"signal": "metric", "name": metric.get("name"), "attributes": _attributes(point.get("attributes"))}
                for resource in request.get("resourceMetrics", []) for scope in resource.get("scopeMetrics", [])
                for metric in scope.get("metrics", []) for point in _points(metric)]
    return [{"signal": "log", "body": json.dumps(record.get("body", {}))[:200], "traceId": record.get("traceId", ""),
             "attributes": _attributes(record.get("attributes"))}
            for resource in request.get("resourceLogs", []) for scope in resource.get("scopeLogs", [])
            for record in scope.get("logRecords", [])]


def _span(span: dict[str, Any]) -> dict[str, Any]:
    return {"signal": "span", "name": span.get("name"), "kind": span.get("kind"), "traceId": span.get("traceId"),
            "spanId": span.get("spanId"), "parentSpanId": span.get("parentSpanId", ""),
            "attributes": _attributes(span.get("attributes"))}


def _points(metric: dict[str, Any]) -> list[dict[str, Any]]:
    """The data points of whichever kind the metric is (sum, gauge, histogram)."""
    data = next((v for v in metric.values() if isinstance(v, dict) and "dataPoints" in v), {})
    points: list[dict[str, Any]] = data.get("dataPoints", [])
    return points


def describe(item: dict[str, Any]) -> str:
    if item["signal"] == "span":
        return f"span   {item['traceId'][:8]}… {item['name']}  {item['kind']}"
    if item["signal"] == "metric":
        return f"metric {item['name']}"
    return f"log    {item['body'][:100]}"
