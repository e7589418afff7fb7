"""Work a request starts but must not be able to cancel: settlement, a drained stream."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")
_RUNNING: set[asyncio.Task[Any]] = set()


def spawn(work: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
    """A task of its own, kept referenced until it ends: a client that disconnects cancels the
    request's task, never this one. The task copies the caller's context (the request's meter)."""
    task = asyncio.ensure_future(work)
    _RUNNING.add(task)
    task.add_done_callback(_RUNNING.discard)
    return task


async def drain(timeout_s: float) -> None:
    """Wait (bounded) for detached work to end, for tests and an orderly shutdown."""
    pending = [t for t in _RUNNING if not t.done()]
    if pending:
        await asyncio.wait(pending, timeout=timeout_s)
