"""Timer triggers as the timers extension runs them: one invocation at a time, runOnStartup, TimerRequest."""

from __future__ import annotations

import asyncio
import datetime
import json
import logging
from collections.abc import Callable
from typing import Any

from azure.functions import meta
from azure.functions.timer import TimerRequestConverter

from tools.devhost.invoke import Invoker
from tools.devhost.loader import FunctionSpec, TimerTrigger
from tools.devhost.schedules import ConstantSchedule, CronSchedule, Schedule

log = logging.getLogger("devhost")


def timer_request(schedule: Schedule, last: datetime.datetime | None, upcoming: datetime.datetime,
                  past_due: bool) -> Any:
    """func.TimerRequest as the worker decodes the host's TimerInfo JSON."""
    info: dict[str, Any] = {"Schedule": {"AdjustForDST": isinstance(schedule, CronSchedule)}, "IsPastDue": past_due}
    if last is not None:
        info["ScheduleStatus"] = {"Last": last.isoformat(), "Next": upcoming.isoformat(),
                                  "LastUpdated": last.isoformat()}
    return TimerRequestConverter.decode(meta.Datum(json.dumps(info), "json"), trigger_metadata={})


class TimerListener:
    """Runs one timer function at each occurrence; never two invocations of it at once (the host's rule)."""

    def __init__(self, spec: FunctionSpec, invoker: Invoker,
                 now: Callable[[], datetime.datetime] = lambda: datetime.datetime.now(datetime.UTC)) -> None:
        assert isinstance(spec.trigger, TimerTrigger)  # noqa: S101  built for timer triggers only
        self.spec, self.trigger, self.invoker, self._now = spec, spec.trigger, invoker, now
        self.schedule = spec.trigger.schedule
        self._stopping = asyncio.Event()
        self._running: asyncio.Task[None] | None = None
        self._last: datetime.datetime | None = None

    async def run(self) -> None:
        if self.trigger.run_on_startup:
            await self._invoke(self.schedule.next_after(self._now()), reason="Timer fired at startup")
        while not self._stopping.is_set():
            due = self.schedule.next_after(self._last or self._now()) if isinstance(self.schedule, ConstantSchedule) \
                else self.schedule.next_after(self._now())
            delay = max(0.0, (due - self._now()).total_seconds())
            try:
                await asyncio.wait_for(self._stopping.wait(), delay)
                return
            except TimeoutError:
                pass
            await self._invoke(self.schedule.next_after(due), reason=f"Timer fired at {due.isoformat()}")

    def stop(self) -> None:
        self._stopping.set()

    async def drain(self, grace_s: float) -> None:
        if self._running is not None and not self._running.done():
            await asyncio.wait({self._running}, timeout=grace_s)
            self._running.cancel()

    async def _invoke(self, upcoming: datetime.datetime, *, reason: str) -> None:
        arg = timer_request(self.schedule, self._last, upcoming, past_due=False)
        self._last = self._now()
        context = self.invoker.new_context(self.spec)
        self._running = asyncio.create_task(self.invoker.run(self.spec, {self.spec.trigger_param: arg}, context,
                                                             reason=reason))
        try:
            await asyncio.shield(self._running)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001  the invoker logged it; the host just waits for the next occurrence
            log.info("Function '%s' runs again at its next occurrence (%s)", self.spec.name, upcoming.isoformat())
