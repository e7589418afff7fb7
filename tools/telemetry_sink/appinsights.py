"""Application Insights' ingestion API as the exporter sees it: POST /v2.1/track (or /v2/track).

The body is a JSON array of envelopes (or one envelope per line), optionally gzip-encoded; the
answer is `{itemsReceived, itemsAccepted, errors: []}`. Anything else (live metrics pings) gets 200
and an empty object, so the exporter's side channels neither fail nor fill the log.
"""

from __future__ import annotations

import json
from typing import Any

TRACK_PATHS = ("/v2.1/track", "/v2/track")


def handle(path: str, media: str, body: bytes) -> tuple[int, str, bytes, list[dict[str, Any]]]:
    if path.split("?", maxsplit=1)[0].rstrip("/") not in TRACK_PATHS:
        return 200, "application/json", b"{}", []
    text = body.decode("utf-8")
    try:
        parsed = json.loads(text)
        envelopes = parsed if isinstance(parsed, list) else [parsed]
    except json.JSONDecodeError:
        envelopes = [json.loads(line) for line in text.splitlines() if line.strip()]
    answer = {"itemsReceived": len(envelopes), "itemsAccepted": len(envelopes), "errors": []}
    return 200, "application/json", json.dumps(answer).encode(), envelopes


def connection_string(url: str) -> str:
    """A connection string that points the exporter (ingestion and live metrics) at `url`."""
    return (f"InstrumentationKey=00000000-0000-0000-0000-000000000000;IngestionEndpoint={url}/;"
            f"LiveEndpoint={url}/")


def app_settings(url: str) -> dict[str, str]:
    """The app's settings for exporting to this receiver with the real exporter's defaults; only
    what needs Azure is off (statsbeat, live metrics, the settings download, offline storage)."""
    return {
        "APPLICATIONINSIGHTS_CONNECTION_STRING": connection_string(url),
        "APPLICATIONINSIGHTS_STATSBEAT_DISABLED_ALL": "true",
        "APPLICATIONINSIGHTS_CONTROLPLANE_DISABLED": "true",  # no call to settings.sdk.monitor.azure.com
        "TELEMETRY_OFFLINE_STORAGE": "false",
        "TELEMETRY_LIVE_METRICS": "false",
    }


def describe(envelope: dict[str, Any]) -> str:
    """One line per envelope for the console: its type and name, never its whole body."""
    data = envelope.get("data", {}).get("baseData", {})
    kind = envelope.get("data", {}).get("baseType", "?")
    name = data.get("name") or data.get("message") or ",".join(m.get("name", "") for m in data.get("metrics", []))
    return f"{kind:<20} {str(name)[:100]}"
