"""The fault a test or benchmark injects, and the seeded dice that decide which requests get it."""

from __future__ import annotations

import math
import random
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

FaultStatus = Literal[429, 500, 503, "timeout", "drop_stream"]

DEFAULT_AFTER_TOKENS = 3
MAX_LATENCY_MS = 600_000.0


class Fault(BaseModel):
    """Body of POST /_sim/faults; unknown keys are refused so a typo cannot silently do nothing."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    status: FaultStatus | None = None
    rate: float = Field(default=1.0, ge=0.0, le=1.0)
    retry_after_s: float | None = Field(default=None, ge=0.0, le=86_400.0)
    latency_ms: float | None = Field(default=None, ge=0.0, le=MAX_LATENCY_MS)
    after_tokens: int | None = Field(default=None, ge=0)
    # The fault hits this many requests, then clears itself (a test's fault can never outlive it).
    count: int | None = Field(default=None, ge=1)
    # Only requests to this Azure deployment (a region serving two model tiers, one of them down).
    deployment: str | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.status is None and self.latency_ms is None:
            raise ValueError("give a status, a latency_ms, or both")
        if self.retry_after_s is not None and self.status not in (429, 503):
            raise ValueError("retry_after_s applies only to status 429 or 503")
        if self.after_tokens is not None and self.status != "drop_stream":
            raise ValueError("after_tokens applies only to status drop_stream")
        return self

    @property
    def drop_after(self) -> int:
        """Content chunks (one token each, bar split characters) a dropped stream still delivers."""
        return DEFAULT_AFTER_TOKENS if self.after_tokens is None else self.after_tokens

    def retry_headers(self) -> dict[str, str]:
        """Both spellings Azure OpenAI sends; clients prefer the precise one when present."""
        if self.retry_after_s is None:
            return {}
        return {
            "retry-after": str(math.ceil(self.retry_after_s)),
            "retry-after-ms": str(round(self.retry_after_s * 1000)),
        }


class FaultInjector:
    """Holds the active fault and rolls, per model request, whether it applies."""

    def __init__(self, seed: int) -> None:
        self._seed = seed
        self._rng = random.Random(seed)
        self.active: Fault | None = None
        self._left: int | None = None

    def set(self, fault: Fault | None) -> None:
        self.active = fault
        self._left = fault.count if fault is not None else None
        # Restarting the dice makes "set fault, send N requests" give the same hits every run.
        self._rng = random.Random(self._seed)

    def draw(self, deployment: str | None = None) -> Fault | None:
        """The fault for this request (to `deployment`, on an Azure route), or None when it is spared."""
        fault = self.active
        if fault is None or (fault.deployment is not None and fault.deployment != deployment):
            return None
        if self._rng.random() >= fault.rate:
            return None
        if self._left is not None:
            self._left -= 1
            if self._left == 0:
                self.active = None
        return fault
