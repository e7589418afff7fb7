"""A clock whose sleep advances time and records each wait; endpoints and the failures the wire raises."""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from shared.core.settings import EndpointConfig
from shared.upstream.endpoints import Endpoint
from shared.upstream.errors import ErrorStatus, status_error
from shared.upstream.resilience.breaker import BreakerSettings
from shared.upstream.resilience.policy import ResiliencePolicy, RetrySettings
from shared.upstream.resilience.pool import EndpointPool
from shared.upstream.resilience.retry_budget import RetryBudget
from shared.upstream.spans import ATTEMPT_SPANS


@dataclass
class FakeClock:
    t: float = 1000.0
    waits: list[float] = field(default_factory=list)

    def now(self) -> float:
        return self.t

    def wall(self) -> float:
        return 1_760_000_000.0 + self.t

    async def sleep(self, seconds: float) -> None:
        self.waits.append(round(seconds, 6))
        self.t += seconds


def endpoint(name: str, priority: int = 0, weight: float = 1.0) -> Endpoint:
    config = EndpointConfig(name=name, kind="openai", endpoint=f"http://{name}", model="m", priority=priority,
                            weight=weight)
    return Endpoint(config=config, wire=None)  # type: ignore[arg-type]  # attempts never touch it


def api_error(status: int, headers: dict[str, str] | None = None) -> ErrorStatus:
    """What the wire (or the kernel adapter, for the SDK's) raises for an error status."""
    return status_error(status, headers or {}, None)


def policy(clock: FakeClock, names: list[str], *, attempts: int = 3, deadline: float = 30.0,
           breaker: BreakerSettings | None = None, budget: RetryBudget | None = None,
           seed: int = 7) -> ResiliencePolicy:
    pool = EndpointPool(names, breaker or BreakerSettings(), clock, random.Random(seed), events=ATTEMPT_SPANS)
    return ResiliencePolicy(pool, budget or RetryBudget(clock), RetrySettings(max_attempts=attempts,
                            deadline_s=deadline, backoff_base_s=0.5, backoff_cap_s=8.0), clock,
                            rng=random.Random(seed), events=ATTEMPT_SPANS)


def scripted(outcomes: list[BaseException | str], calls: list[str]) -> Callable[[Endpoint], Awaitable[str]]:
    """An attempt that records the endpoint it was called on, then raises or returns the next outcome."""

    async def attempt(ep: Endpoint) -> str:
        calls.append(ep.name)
        outcome = outcomes.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    return attempt
