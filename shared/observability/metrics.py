"""The app's OpenTelemetry instruments, created once when telemetry is configured (never when it is off)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shared.observability import names as n

# Bucket bounds the GenAI conventions recommend (seconds; tokens), so P50/P95/P99 are meaningful.
_DURATION_BOUNDS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
_TOKEN_BOUNDS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304)


@dataclass(frozen=True)
class Instruments:
    token_usage: Any
    operation_duration: Any
    time_to_first_chunk: Any
    cost: Any
    tokens_charged: Any
    cache_lookups: Any
    refusals: Any
    breaker_transitions: Any
    retries: Any
    failovers: Any
    jobs: Any
    job_age: Any
    budget_used_ratio: Any
    routing_savings: Any
    safety_blocks: Any
    safety_redactions: Any
    safety_unchecked: Any


def create() -> Instruments:
    """Instruments on the global meter provider (set by shared/observability/telemetry.py just before)."""
    from opentelemetry import metrics  # noqa: PLC0415  only when telemetry is on

    meter = metrics.get_meter("aigw")
    return Instruments(
        token_usage=meter.create_histogram(n.METRIC_TOKEN_USAGE, unit="{token}",
                                           description="Tokens per model attempt, by gen_ai.token.type",
                                           explicit_bucket_boundaries_advisory=_TOKEN_BOUNDS),
        operation_duration=meter.create_histogram(n.METRIC_OPERATION_DURATION, unit="s",
                                                  description="Duration of each model attempt",
                                                  explicit_bucket_boundaries_advisory=_DURATION_BOUNDS),
        time_to_first_chunk=meter.create_histogram(n.METRIC_TIME_TO_FIRST_CHUNK, unit="s",
                                                   description="Time to the first chunk of a streamed attempt",
                                                   explicit_bucket_boundaries_advisory=_DURATION_BOUNDS),
        cost=meter.create_counter(n.METRIC_COST, unit="USD", description="What the tenant was charged"),
        tokens_charged=meter.create_counter(n.METRIC_TOKENS_CHARGED, unit="{token}",
                                            description="Tokens charged to the tenant's budget"),
        cache_lookups=meter.create_counter(n.METRIC_CACHE_LOOKUPS, description="Cache lookups by result"),
        refusals=meter.create_counter(n.METRIC_REFUSALS, description="Budget and rate-limit refusals by type"),
        breaker_transitions=meter.create_counter(n.METRIC_BREAKER_TRANSITIONS,
                                                 description="Circuit breaker changes, by endpoint and new state"),
        retries=meter.create_counter(n.METRIC_RETRIES, description="Model attempts after the first, by endpoint"),
        failovers=meter.create_counter(n.METRIC_FAILOVERS,
                                       description="Attempts moved to another endpoint, by the one failed away from"),
        jobs=meter.create_counter(n.METRIC_JOBS, description="Queue job deliveries by outcome"),
        job_age=meter.create_histogram(n.METRIC_JOB_AGE, unit="s",
                                       description="From a job's submission to the end of its processing"),
        budget_used_ratio=meter.create_gauge(n.METRIC_BUDGET_USED_RATIO,
                                             description="A tenant's budget window: used / limit"),
        routing_savings=meter.create_counter(n.METRIC_ROUTING_SAVINGS, unit="USD",
                                             description="The route's complex model's cost minus what was charged"),
        safety_blocks=meter.create_counter(n.METRIC_SAFETY_BLOCKS, description="Requests blocked by content safety"),
        safety_redactions=meter.create_counter(n.METRIC_SAFETY_REDACTIONS, description="Texts redacted, by kind"),
        safety_unchecked=meter.create_counter(n.METRIC_SAFETY_UNCHECKED,
                                              description="Requests served unchecked: a safety service failed"),
    )
