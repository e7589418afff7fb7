"""The record of one request or job delivery, filled as it runs (shared/observability/tracing.py
makes and closes it; shared/observability/audit.py writes its line)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from shared.observability.names import JobOutcome


@dataclass(slots=True)
class Record:
    """What one request (or job delivery) was: filled as it runs, closed once by `finish`."""

    route: str
    job: bool = False
    correlation_id: str = ""
    tenant: str = ""
    key_id: str = ""
    log_content: bool = False
    model: str = ""
    endpoint: str = ""
    input_tokens: int = 0
    output_tokens: int = 0
    cost_micros: int = 0
    cache_result: str = ""
    status: int = 0
    refusal: str = ""
    outcome: JobOutcome | Literal[""] = ""  # a job's (empty for a request)
    job_age_s: float | None = None
    routing: dict[str, Any] = field(default_factory=dict)  # a routed request's AUDIT_ROUTING_FIELDS
    # Content safety: kinds that blocked or were flagged, redactions by kind, services unchecked.
    safety_blocked: list[str] = field(default_factory=list)
    safety_flagged: list[str] = field(default_factory=list)
    safety_redacted: dict[str, int] = field(default_factory=dict)
    safety_unchecked: list[str] = field(default_factory=list)
    prompt: str = ""
    answer: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.perf_counter)
    ended: float | None = None  # when the response was complete
    ended_ns: int | None = None
    span: Any = None
    finished: bool = False
    # Settlements that run after the response: the audit record waits for them, so it says what
    # the tenant was charged, while the span and the duration end with the response.
    settling: list[asyncio.Future[Any]] = field(default_factory=list)

    @property
    def duration_ms(self) -> float:
        return round(((self.ended or time.perf_counter()) - self.started) * 1000, 1)
