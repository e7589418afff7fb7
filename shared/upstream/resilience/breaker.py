"""A circuit breaker per endpoint: closed -> open -> half-open -> closed."""

from __future__ import annotations

import logging
from collections import Counter, deque
from dataclasses import dataclass
from enum import StrEnum

from shared.core.clock import Clock
from shared.upstream.resilience.events import UNOBSERVED, ResilienceEvents

log = logging.getLogger(__name__)


class State(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True)
class BreakerSettings:
    consecutive_failures: int = 5  # open after this many failures in a row...
    failure_ratio: float = 0.5  # ...or when this share of the calls in the window failed
    window_s: float = 30.0
    min_calls: int = 10  # the ratio only counts once the window holds this many calls
    cooldown_s: float = 15.0
    half_open_probes: int = 1


# How many times each endpoint changed to each state, for readiness and telemetry.
TRANSITIONS: Counter[tuple[str, str]] = Counter()


class CircuitBreaker:
    def __init__(self, name: str, settings: BreakerSettings, clock: Clock,
                 events: ResilienceEvents = UNOBSERVED) -> None:
        self.name = name
        self.events = events
        self.settings = settings
        self.clock = clock
        self._state = State.CLOSED
        self._consecutive = 0
        self._calls: deque[tuple[float, bool]] = deque()  # (time, failed) in the window
        self._open_until = 0.0
        self._probes = 0

    @property
    def state(self) -> State:
        if self._state is State.OPEN and self.clock.now() >= self._open_until:
            self._move(State.HALF_OPEN)
        return self._state

    def reopens_in(self) -> float:
        """Seconds until an open breaker admits a probe (0 when it admits calls now)."""
        return max(0.0, self._open_until - self.clock.now()) if self.state is State.OPEN else 0.0

    def allow(self) -> bool:
        """Whether a call may go to the endpoint now; a half-open breaker admits a few probes."""
        state = self.state
        if state is State.CLOSED:
            return True
        if state is State.HALF_OPEN and self._probes < self.settings.half_open_probes:
            self._probes += 1
            return True
        return False

    def release(self) -> None:
        """A probe's call ended without a verdict: the probe is free for the next call."""
        if self._state is State.HALF_OPEN and self._probes > 0:
            self._probes -= 1

    def record_success(self) -> None:
        self._record(failed=False)
        self._consecutive = 0
        if self._state is not State.CLOSED:
            self._move(State.CLOSED)

    def record_failure(self, retry_after_s: float | None = None) -> None:
        self._record(failed=True)
        self._consecutive += 1
        if self._state is State.HALF_OPEN or self._tripped():
            # The endpoint's own Retry-After, when longer, decides when to probe again.
            self._open_until = self.clock.now() + max(self.settings.cooldown_s, retry_after_s or 0.0)
            self._move(State.OPEN)

    def reset(self) -> None:
        """Closed, with nothing counted: as in a new process (the local-only reset, docs/breakers.md)."""
        self._move(State.CLOSED)
        self._consecutive, self._open_until = 0, 0.0
        self._calls.clear()

    def _tripped(self) -> bool:
        if self._consecutive >= self.settings.consecutive_failures:
            return True
        calls = len(self._calls)
        failures = sum(1 for _, failed in self._calls if failed)
        return calls >= self.settings.min_calls and failures / calls >= self.settings.failure_ratio

    def _record(self, *, failed: bool) -> None:
        now = self.clock.now()
        self._calls.append((now, failed))
        while self._calls and self._calls[0][0] < now - self.settings.window_s:
            self._calls.popleft()

    def _move(self, new: State) -> None:
        if new is self._state:
            return
        log.warning("circuit breaker %s: %s -> %s", self.name, self._state.value, new.value)
        TRANSITIONS[(self.name, new.value)] += 1
        self.events.breaker_moved(self.name, new.value)
        self._state = new
        self._probes = 0
        if new is State.CLOSED:
            self._calls.clear()
