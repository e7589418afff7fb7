"""Correlation ids: the caller's own, else the W3C trace id, else a new one; never an unsafe one."""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping

# What an id may hold to be echoed in a header and written in a log line: no line break, no
# control or non-ASCII character, nothing a log viewer or a header parser could take as structure.
_SAFE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$")


def safe_correlation_id(value: object) -> str | None:
    """A client's correlation id (HTTP header or queue message) if it is safe to log and echo, else
    None: the caller then uses its own fallback. An unsafe id is dropped, never escaped, so the
    value in logs, headers and job records is always exactly what the client sent or one of ours."""
    if isinstance(value, str) and _SAFE_ID.match(value.strip()):
        return value.strip()
    return None


def correlation_id(headers: Mapping[str, str], trace_id: str | None = None) -> str:
    """The id an HTTP call runs under: safe to echo in a header and a log line. The caller's own;
    else the trace id (the request span's `trace_id` when telemetry is on, which is the client's
    traceparent's when it sent a valid one); else a new one."""
    sent = safe_correlation_id(headers.get("x-correlation-id"))
    if sent is not None:
        return sent
    if trace_id is not None:
        return trace_id
    match = _TRACEPARENT.match(headers.get("traceparent", "").strip().lower())
    if match and match.group(1) != "0" * 32:
        return match.group(1)
    return uuid.uuid4().hex
