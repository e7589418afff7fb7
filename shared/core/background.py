"""Work a request starts but must not be able to cancel: settlement, a drained stream."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Hashable
from typing import Any, TypeVar

from shared.core.errors import AppError

T = TypeVar("T")
log = logging.getLogger(__name__)
_RUNNING: set[asyncio.Task[Any]] = set()


def spawn(work: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
    """A task of its own, kept referenced until it ends: a client that disconnects cancels the
    request's task, never this one. The task copies the caller's context (the request's meter)."""
    task = asyncio.ensure_future(work)
    _RUNNING.add(task)
    task.add_done_callback(_finished)
    return task


class Ahead:
    """Work prepared ahead of need (tomorrow's document, the next lease slot): at most one task
    per key at a time, however many requests ask for it while it runs."""

    def __init__(self) -> None:
        self._running: set[Hashable] = set()

    def start(self, key: Hashable, work: Callable[..., Coroutine[Any, Any, Any]], *args: Any) -> None:
        """Spawn `work(*args)` unless the work of `key` is still running."""
        if key in self._running:
            return
        self._running.add(key)
        spawn(work(*args)).add_done_callback(lambda _: self._running.discard(key))


def _finished(task: asyncio.Task[Any]) -> None:
    _RUNNING.discard(task)
    # Whoever awaited it may be gone (a cancelled request): its failure is logged here, by type only.
    if not task.cancelled() and (exc := task.exception()) is not None and not isinstance(exc, AppError):
        log.warning("detached work failed: %s", type(exc).__name__)


def detached() -> int:
    """How many pieces of detached work have not ended yet."""
    return sum(not t.done() for t in _RUNNING)


async def drain(timeout_s: float) -> None:
    """Wait (bounded) for detached work to end, for tests and an orderly shutdown."""
    pending = [t for t in _RUNNING if not t.done()]
    if pending:
        await asyncio.wait(pending, timeout=timeout_s)
