"""The first stage: every exchange's ending counted per tenant (a request, a cache hit, a refusal)."""

from __future__ import annotations

from typing import Protocol

from shared.core.errors import TooManyRequests, UpstreamThrottled
from shared.pipeline.exchange import Exchange, Next, Reply


class ActivityCounter(Protocol):
    def count(self, tenant: str, *, hit: bool = False, refused: bool = False) -> None: ...


class Counted:
    """A refusal is our own 429 (rate limit, budget, the long-call bound), not a provider's; a hit is
    an exchange answered without calling the model (only the cache does that)."""

    def __init__(self, counter: ActivityCounter) -> None:
        self.counter = counter

    async def stage(self, ex: Exchange, nxt: Next) -> Reply:
        hit = refused = False
        try:
            reply = await nxt(ex)
            hit = not ex.invoked
            return reply
        except TooManyRequests as err:
            refused = not isinstance(err, UpstreamThrottled)
            raise
        finally:
            self.counter.count(ex.principal.tenant, hit=hit, refused=refused)
