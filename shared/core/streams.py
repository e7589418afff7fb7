"""Holding a stream back until its answer has begun: the one rule behind failing over unseen (the
resilience policy's attempt) and answering a failure with a status (the streaming adapter)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import TypeVar

T = TypeVar("T")


async def hold(items: AsyncIterator[T], begun: Callable[[T], bool], held: list[T]) -> None:
    """Read `items` into `held` up to and including the first that begins the answer (all of them
    when none does). `held` is the caller's, so after a failure it still says what came before."""
    async for item in items:
        held.append(item)
        if begun(item):
            return
