"""Waits between attempts: the provider's Retry-After wins, else exponential backoff, full jitter."""

from __future__ import annotations

import random


def full_jitter(attempt: int, *, base_s: float, cap_s: float, rng: random.Random) -> float:
    """AWS's "full jitter": uniform in [0, min(cap, base * 2^(attempt-1))] for attempt 1, 2, ..."""
    return rng.uniform(0.0, min(cap_s, base_s * 2 ** max(0, attempt - 1)))


def next_wait(attempt: int, retry_after_s: float | None, *, base_s: float, cap_s: float,
              rng: random.Random) -> float:
    """Retry-After is read on every attempt, not only the first: when given, it is the wait."""
    if retry_after_s is not None:
        return retry_after_s
    return full_jitter(attempt, base_s=base_s, cap_s=cap_s, rng=rng)
