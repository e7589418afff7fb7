"""Runs one invocation as the worker does: async on the loop, sync in a thread pool, within functionTimeout."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from tools.devhost.bindings import Context, trace_context_for
from tools.devhost.loader import FunctionSpec

log = logging.getLogger("devhost")


class FunctionTimeoutError(Exception):
    """The invocation ran past host.json functionTimeout."""


class Invoker:
    """Calls user functions and logs each invocation like the host (Executing/Executed lines)."""

    def __init__(self, timeout_s: float | None, max_workers: int | None = None) -> None:
        self.timeout_s = timeout_s
        # The worker's default pool for sync functions (PYTHON_THREADPOOL_THREAD_COUNT, else Python's default).
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="devhost-sync")

    def new_context(self, spec: FunctionSpec, traceparent: str | None = None,
                    tracestate: str | None = None) -> Context:
        return Context(spec.name, spec.directory, str(uuid.uuid4()), trace_context_for(traceparent, tracestate))

    async def run(self, spec: FunctionSpec, args: Mapping[str, Any], context: Context, *, reason: str) -> Any:
        """Call the function; an exception (logged here with its traceback) means the invocation failed."""
        log.info("Executing 'Functions.%s' (Reason='%s', Id=%s)", spec.name, reason, context.invocation_id)
        started = time.monotonic()
        try:
            result = await self._call(spec, args, context)
        except BaseException as exc:
            elapsed = (time.monotonic() - started) * 1000
            log.error("Executed 'Functions.%s' (Failed, Id=%s, Duration=%.0fms)", spec.name, context.invocation_id,
                      elapsed, exc_info=not isinstance(exc, asyncio.CancelledError))
            raise
        log.info("Executed 'Functions.%s' (Succeeded, Id=%s, Duration=%.0fms)", spec.name, context.invocation_id,
                 (time.monotonic() - started) * 1000)
        return result

    async def _call(self, spec: FunctionSpec, args: Mapping[str, Any], context: Context) -> Any:
        kwargs = dict(args)
        if spec.signature.requires_context:
            kwargs["context"] = context
        context.thread_local_storage.invocation_id = context.invocation_id
        if spec.signature.is_async:
            call = spec.fn(**kwargs)
        else:
            call = asyncio.get_running_loop().run_in_executor(self._pool, _run_sync, spec, kwargs, context)
        try:
            result = await asyncio.wait_for(call, self.timeout_s)
        except TimeoutError:
            # The host gives up on the invocation; a sync function's thread cannot be stopped and runs on.
            raise FunctionTimeoutError(f"Timeout value of {self.timeout_s:g} s exceeded by function "
                                       f"'Functions.{spec.name}' (Id: '{context.invocation_id}').") from None
        if result is not None and not spec.signature.has_return:
            raise RuntimeError(f"function {spec.name!r} without a $return binding returned a non-None value")
        return result

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def _run_sync(spec: FunctionSpec, kwargs: dict[str, Any], context: Context) -> Any:
    local = context.thread_local_storage
    local.invocation_id = context.invocation_id
    try:
        return spec.fn(**kwargs)
    finally:
        local.invocation_id = None
