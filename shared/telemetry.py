"""Telemetry setup: Application Insights through azure-monitor-opentelemetry, when configured.

Spans per request and per model call, token and cost metrics are the telemetry issue's; this is
the one place they will be configured.
"""

from __future__ import annotations

import logging
import os

log = logging.getLogger(__name__)


def setup_telemetry() -> bool:
    """Send traces, metrics and logs to Application Insights if its connection string is set.

    Never raises: an app that cannot export telemetry must still serve requests.
    """
    connection = os.environ.get("APPLICATIONINSIGHTS_CONNECTION_STRING")
    if not connection:
        return False
    try:
        # Imported only when exporting: the exporter stack costs a second of cold start.
        from azure.identity import ManagedIdentityCredential  # noqa: PLC0415
        from azure.monitor.opentelemetry import configure_azure_monitor  # noqa: PLC0415

        client_id = os.environ.get("AZURE_CLIENT_ID")
        # Local auth is off on our Application Insights: ingestion authenticates with the identity.
        credential = ManagedIdentityCredential(client_id=client_id) if client_id else None
        configure_azure_monitor(connection_string=connection, credential=credential)
    except Exception:  # telemetry must never stop the app; the failure is logged
        log.exception("telemetry setup failed; continuing without export")
        return False
    return True
