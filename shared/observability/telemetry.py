"""Telemetry setup: Application Insights (azure-monitor-opentelemetry) and/or any OTLP collector.

Off unless APPLICATIONINSIGHTS_CONNECTION_STRING or OTEL_EXPORTER_OTLP_ENDPOINT is set; then the
SDK providers are set, the Azure SDK's own spans (Cosmos, Storage, Key Vault) are switched on, the
httpx calls to model endpoints carry `traceparent`, and shared/observability/tracing.py starts making spans and
metrics. The SDK and exporters are imported only here and only when configured (cold start).
"""

from __future__ import annotations

import logging
import os
from typing import Any

from shared.observability import tracing

log = logging.getLogger(__name__)
SERVICE_NAME = "aigw"
# Our own SERVER span is the request span: a framework's would nest a second one around it.
# "azure_sdk" is switched on by hand (_azure_sdk_spans): the distro's switch also imports the Azure
# AI Projects, Agents and Inference instrumentors, which load the openai SDK (0.75 s of CPU at
# every cold start) to trace SDKs this app never calls.
_NOT_INSTRUMENTED = ("fastapi", "flask", "django", "psycopg2", "azure_sdk")
# Loggers that write an INFO record per HTTP call: httpx/httpx2 (every model call, and the
# readiness probes) and azure-core's HTTP logging policy (Storage, Key Vault, identity; Cosmos has
# its own quiet logger, shared/state/cosmos.py). The Functions worker sets the root logger to INFO and
# ships every record to the host and Application Insights: a record per call, that our spans
# already carry, paid on every request.
_PER_CALL_LOGGERS = ("httpx", "httpx2", "azure.core.pipeline.policies.http_logging_policy")


def _flag(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    return default if value is None else value.strip().lower() in ("1", "true", "yes", "on")


def setup_telemetry() -> bool:
    """Export traces, metrics and logs where configured; True when telemetry is on.

    Never raises: an app that cannot export telemetry must still serve requests.
    """
    for name in _PER_CALL_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    connection = os.environ.get("APPLICATIONINSIGHTS_CONNECTION_STRING")
    otlp = bool(os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"))
    if not connection and not otlp:
        return False
    try:
        if connection:
            _azure_monitor(connection, otlp)
        else:
            _otlp_only()
        _no_framework_spans()
        from shared.observability import metrics as telemetry_metrics  # noqa: PLC0415

        tracing.enable(telemetry_metrics.create())
    except Exception:  # telemetry must never stop the app; the failure is logged
        log.exception("telemetry setup failed; continuing without export")
        return False
    return True


def _no_framework_spans() -> None:
    """FastAPI (0.165+) traces every app it serves once providers exist: the Functions host's proxy
    app (and devhost's) would add a second SERVER span, a second `requests` row, around ours, and
    log exception messages. It has no global switch, only a per-app one we do not construct."""
    try:
        from fastapi.telemetry._asgi import NativeTelemetry  # noqa: PLC0415
    except ImportError:  # an older FastAPI has no native telemetry
        return
    NativeTelemetry.enabled = lambda self: False  # type: ignore[method-assign]


def _resource() -> Any:
    from opentelemetry.sdk.resources import Resource  # noqa: PLC0415

    # OTEL_SERVICE_NAME / OTEL_RESOURCE_ATTRIBUTES win (Resource.create reads them).
    defaults = {} if os.environ.get("OTEL_SERVICE_NAME") else {"service.name": SERVICE_NAME}
    return Resource.create(defaults)


def _otlp_pipeline() -> dict[str, list[Any]]:
    """Processors and readers sending the same telemetry to OTEL_EXPORTER_OTLP_ENDPOINT (OTLP/HTTP)."""
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter  # noqa: PLC0415
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter  # noqa: PLC0415
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter  # noqa: PLC0415
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor  # noqa: PLC0415
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader  # noqa: PLC0415
    from opentelemetry.sdk.trace.export import BatchSpanProcessor  # noqa: PLC0415

    return {"span_processors": [BatchSpanProcessor(OTLPSpanExporter())],
            "metric_readers": [PeriodicExportingMetricReader(OTLPMetricExporter())],
            "log_record_processors": [BatchLogRecordProcessor(OTLPLogExporter())]}


def _azure_monitor(connection: str, otlp: bool) -> None:
    from azure.monitor.opentelemetry import configure_azure_monitor  # noqa: PLC0415

    client_id = os.environ.get("AZURE_CLIENT_ID")
    credential = None
    if client_id:
        # Local auth is off on our Application Insights: ingestion authenticates with the identity.
        from azure.identity import ManagedIdentityCredential  # noqa: PLC0415  only with an identity

        credential = ManagedIdentityCredential(client_id=client_id)
    configure_azure_monitor(
        connection_string=connection, credential=credential, resource=_resource(),
        instrumentation_options={name: {"enabled": False} for name in _NOT_INSTRUMENTED},
        enable_live_metrics=_flag("TELEMETRY_LIVE_METRICS", True),
        disable_offline_storage=not _flag("TELEMETRY_OFFLINE_STORAGE", True),
        **(_otlp_pipeline() if otlp else {}),
    )  # it also instruments httpx and httpx2 (the model calls carry traceparent)
    _azure_sdk_spans()


def _azure_sdk_spans() -> None:
    """Cosmos, Storage and Key Vault calls as spans: what the distro's `azure_sdk` switch sets."""
    from azure.core.settings import settings  # noqa: PLC0415
    from azure.core.tracing.ext.opentelemetry_span import OpenTelemetrySpan  # noqa: PLC0415

    settings.tracing_implementation = OpenTelemetrySpan


def _otlp_only() -> None:
    from opentelemetry import metrics, trace  # noqa: PLC0415
    from opentelemetry._logs import set_logger_provider  # noqa: PLC0415
    from opentelemetry.instrumentation.httpx import HTTPX2ClientInstrumentor, HTTPXClientInstrumentor  # noqa: PLC0415
    from opentelemetry.instrumentation.logging.handler import LoggingHandler  # noqa: PLC0415
    from opentelemetry.sdk._logs import LoggerProvider  # noqa: PLC0415
    from opentelemetry.sdk.metrics import MeterProvider  # noqa: PLC0415
    from opentelemetry.sdk.trace import TracerProvider  # noqa: PLC0415

    resource, pipeline = _resource(), _otlp_pipeline()
    tracer_provider = TracerProvider(resource=resource)
    for processor in pipeline["span_processors"]:
        tracer_provider.add_span_processor(processor)
    trace.set_tracer_provider(tracer_provider)
    metrics.set_meter_provider(MeterProvider(metric_readers=pipeline["metric_readers"], resource=resource))
    logger_provider = LoggerProvider(resource=resource)
    for log_processor in pipeline["log_record_processors"]:
        logger_provider.add_log_record_processor(log_processor)
    set_logger_provider(logger_provider)
    logging.getLogger().addHandler(LoggingHandler(logger_provider=logger_provider))
    _azure_sdk_spans()
    # Model calls carry traceparent, as with Azure Monitor: httpx2 sends them (shared/upstream/wire.py, the
    # openai SDK) and the readiness probes, httpx the Entra key fetches.
    HTTPXClientInstrumentor().instrument()
    HTTPX2ClientInstrumentor().instrument()
