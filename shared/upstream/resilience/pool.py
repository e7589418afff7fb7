"""Which endpoint takes the next attempt: lowest priority first, weighted within a priority,
never one whose breaker is open or that asked us (Retry-After) to stay away."""

from __future__ import annotations

import random
from collections.abc import Sequence

from shared.core.clock import Clock
from shared.upstream.endpoints import Endpoint
from shared.upstream.failures import UpstreamFailure
from shared.upstream.resilience.breaker import BreakerSettings, CircuitBreaker, State
from shared.upstream.resilience.events import UNOBSERVED, ResilienceEvents


class EndpointPool:
    """Health of every endpoint in the process; shared by all requests and model groups."""

    def __init__(self, names: Sequence[str], breaker: BreakerSettings, clock: Clock,
                 rng: random.Random | None = None, events: ResilienceEvents = UNOBSERVED) -> None:
        self.clock = clock
        self.rng = rng or random.Random()  # noqa: S311  load spreading, not security
        self.breakers = {name: CircuitBreaker(name, breaker, clock, events) for name in names}
        self._parked_until: dict[str, float] = {}

    def usable(self, endpoint: Endpoint) -> bool:
        """Could take a call now (does not consume a half-open probe)."""
        if self._parked_until.get(endpoint.name, 0.0) > self.clock.now():
            return False
        return self.breakers[endpoint.name].state is not State.OPEN

    def choose(self, endpoints: Sequence[Endpoint], avoid: set[str]) -> Endpoint | None:
        """The endpoint for the next attempt; those in `avoid` (already failed for this request)
        only when nothing else is usable."""
        for pool in ([e for e in endpoints if e.name not in avoid], list(endpoints)):
            usable = [e for e in pool if self.usable(e)]
            while usable:
                best = min(e.config.priority for e in usable)
                tier = [e for e in usable if e.config.priority == best]
                pick = self.rng.choices(tier, weights=[e.config.weight for e in tier])[0]
                if self.breakers[pick.name].allow():
                    return pick
                usable.remove(pick)  # a half-open breaker whose probes are all out
        return None

    def available_in(self, endpoints: Sequence[Endpoint]) -> float | None:
        """Seconds until some endpoint can take a call (0: now; None: no endpoint at all)."""
        if not endpoints:
            return None
        now = self.clock.now()
        return min(
            max(self._parked_until.get(e.name, 0.0) - now, self.breakers[e.name].reopens_in(), 0.0)
            for e in endpoints
        )

    def record_success(self, endpoint: Endpoint) -> None:
        self.breakers[endpoint.name].record_success()

    def record_failure(self, endpoint: Endpoint, failure: UpstreamFailure) -> None:
        if failure.retry_after_s:
            self._parked_until[endpoint.name] = self.clock.now() + failure.retry_after_s
        if failure.status == 429 or failure.kind == "refused":
            # Throttling is handled by parking; a refused request says nothing of health.
            self.release(endpoint)
            return
        self.breakers[endpoint.name].record_failure(failure.retry_after_s)

    def release(self, endpoint: Endpoint) -> None:
        """An attempt that ended without a verdict on the endpoint (throttled, refused, cut by the
        caller): a half-open probe it held is given back, or the breaker would wait for it forever."""
        self.breakers[endpoint.name].release()

    def reset(self) -> None:
        """Every breaker closed and no endpoint parked, as in a new process."""
        for breaker in self.breakers.values():
            breaker.reset()
        self._parked_until.clear()

    def states(self) -> dict[str, str]:
        return {name: breaker.state.value for name, breaker in self.breakers.items()}
