"""Counters of what the simulated provider served and would bill, for tests and benchmarks."""

from __future__ import annotations

from collections import Counter
from typing import TypedDict


class StatsSnapshot(TypedDict):
    requests: int
    by_status: dict[str, int]
    prompt_tokens: int
    completion_tokens: int


class Stats:
    """Model-request counters; only the event loop touches them, so no lock is needed."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.requests = 0
        self.by_status: Counter[str] = Counter()
        self.prompt_tokens = 0
        self.completion_tokens = 0

    def begin(self) -> None:
        # Counted on arrival, so a request that is still hanging already shows up.
        self.requests += 1

    def finish(self, outcome: str, prompt_tokens: int = 0, completion_tokens: int = 0) -> None:
        """Record a final outcome ("200", "429", "dropped", ...) and the tokens it would bill."""
        self.by_status[outcome] += 1
        self.prompt_tokens += prompt_tokens
        self.completion_tokens += completion_tokens

    def snapshot(self) -> StatsSnapshot:
        return {
            "requests": self.requests,
            "by_status": dict(self.by_status),
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
        }
