"""Time as a dependency: one clock object per process (built by the composition root) that the
resilience policy, budget, rate limiter, caches, jobs, readiness and identity read and sleep on, so
a test moves time instead of waiting for it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Monotonic seconds: durations, deadlines, backoff."""

    def wall(self) -> float:
        """Seconds since the epoch: what is stored, and windows that every instance must agree on."""

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def now(self) -> float:
        return time.monotonic()

    def wall(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


def utc(clock: Clock) -> Callable[[], datetime]:
    """The clock's wall time as an aware UTC datetime (calendar windows: days, months, minutes)."""
    return lambda: datetime.fromtimestamp(clock.wall(), UTC)
