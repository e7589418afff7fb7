"""A tenant's long non-streamed calls at once, bounded per process (docs/api-limits.md)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from shared.core.errors import RateLimited

if TYPE_CHECKING:
    from shared.core.metering import Meter
    from shared.pipeline.exchange import Exchange, Next, Reply


class LongCalls:
    """Per tenant, the non-streamed calls in flight in this process that may outlast the request
    deadline. One whose current attempt has run past the deadline is long: while a tenant has
    max_long_calls of those, another call that may be long is a 429, so one tenant's minutes-long
    generations cannot crowd out the rest. Calls that end in time (nearly all) and time spent
    waiting between attempts never count."""

    def __init__(self, now: Callable[[], float] = time.monotonic) -> None:
        self._now = now
        self._running: dict[str, set[Meter]] = {}

    async def stage(self, ex: Exchange, nxt: Next) -> Reply:
        after = ex.long_after_s
        if after is None:
            return await nxt(ex)
        tenant, most = ex.principal.tenant, ex.principal.limits.max_long_calls
        now = self._now()
        long = sum(1 for m in self._running.get(tenant, ()) if m.attempt_began is not None
                   and now - m.attempt_began > after)
        if long >= most:
            raise RateLimited(f"This tenant already has {most} long non-streamed requests in flight. Wait for "
                              "one to finish, or stream the answer (stream: true).", retry_after_s=5.0)
        self._running.setdefault(tenant, set()).add(ex.meter)

        def end() -> None:
            running = self._running.get(tenant)
            if running is not None:
                running.discard(ex.meter)
                if not running:
                    del self._running[tenant]  # no entry per tenant ever seen

        ex.when_ended(end)
        return await nxt(ex)
