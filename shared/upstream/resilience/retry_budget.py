"""A process-wide retry budget: retries may add at most a fraction on top of first attempts.

Over a sliding window, retries are allowed while retries <= ratio * first attempts + a small
floor (so a quiet process can still retry). An outage therefore cannot multiply the load.
"""

from __future__ import annotations

from collections import deque

from shared.core.clock import Clock


class RetryBudget:
    def __init__(self, clock: Clock, ratio: float = 0.2, window_s: float = 60.0, floor: int = 10) -> None:
        self.clock = clock
        self.ratio = ratio
        self.window_s = window_s
        self.floor = floor
        self._firsts: deque[float] = deque()
        self._retries: deque[float] = deque()

    def record_first_attempt(self) -> None:
        # Expired here too: a healthy process never spends a retry, and its first attempts would
        # otherwise pile up one timestamp per request for ever (the soak bench's finding).
        self._expire()
        self._firsts.append(self.clock.now())

    def try_spend(self) -> bool:
        """Take one retry from the budget, or say no."""
        self._expire()
        if len(self._retries) + 1 > self.ratio * len(self._firsts) + self.floor:
            return False
        self._retries.append(self.clock.now())
        return True

    def reset(self) -> None:
        """Nothing spent and nothing earned, as in a new process."""
        self._firsts.clear()
        self._retries.clear()

    def _expire(self) -> None:
        edge = self.clock.now() - self.window_s
        for events in (self._firsts, self._retries):
            while events and events[0] < edge:
                events.popleft()
