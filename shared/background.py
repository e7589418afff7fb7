"""Work a request starts but must not be able to cancel: settlement, a drained stream."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any, TypeVar

from shared.errors import AppError

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


def _finished(task: asyncio.Task[Any]) -> None:
    _RUNNING.discard(task)
    # Whoever awaited it may be gone (a cancelled request): its failure is logged here, by type only.
    if not task.cancelled() and (exc := task.exception()) is not None and not isinstance(exc, AppError):
        log.warning("detached work failed: %s", type(exc).__name__)


async def drain(timeout_s: float) -> None:
    """Wait (bounded) for detached work to end, for tests and an orderly shutdown."""
    pending = [t for t in _RUNNING if not t.done()]
    if pending:
        await asyncio.wait(pending, timeout=timeout_s)
