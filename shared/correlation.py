"""Correlation ids: the caller's own, else the W3C trace id, else a new one."""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping

_SAFE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$")


def correlation_id(headers: Mapping[str, str]) -> str:
    """An id that is safe to echo in a header and a log line (anything else is replaced)."""
    sent = headers.get("x-correlation-id", "").strip()
    if _SAFE_ID.match(sent):
        return sent
    match = _TRACEPARENT.match(headers.get("traceparent", "").strip().lower())
    if match and match.group(1) != "0" * 32:
        return match.group(1)
    return uuid.uuid4().hex
