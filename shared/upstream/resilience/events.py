"""What the resilience policy tells an observer: each attempt, each retry, each breaker move.

The policy never imports telemetry (the import contract in pyproject.toml): the composition root
hands it shared/upstream/spans.ATTEMPT_SPANS, which turns these into spans and metrics.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Protocol, TypeVar

if TYPE_CHECKING:
    from shared.upstream.endpoints import Endpoint

T = TypeVar("T")


class ResilienceEvents(Protocol):
    async def attempt(self, endpoint: Endpoint, number: int, wait_s: float, breaker: str,
                      call: Callable[[], Awaitable[T]]) -> T:
        """Run `call`, the attempt numbered `number` on `endpoint`, after `wait_s` of backoff."""
        ...

    def retried(self, endpoint: str, previous: str) -> None:
        """An attempt after the first, on `endpoint`; a failover when `previous` differs."""
        ...

    def breaker_moved(self, endpoint: str, state: str) -> None:
        ...


class Unobserved:
    """Events nobody watches: the attempt just runs."""

    async def attempt(self, endpoint: Endpoint, number: int, wait_s: float, breaker: str,
                      call: Callable[[], Awaitable[T]]) -> T:
        return await call()

    def retried(self, endpoint: str, previous: str) -> None:
        pass

    def breaker_moved(self, endpoint: str, state: str) -> None:
        pass


UNOBSERVED = Unobserved()
