"""Admission: rate limit, cache lookup and budget reservation in as few Cosmos round trips as the
accounting allows (docs/accounting.md, "Round trips"): a hit, or the reservation for a miss.

One stage rather than three because they share round trips: the rate limit and the exact lookup
go together, and the reservation joins them where nothing can be decided for free first."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import cast

from shared.core.background import spawn
from shared.core.metering import metering
from shared.core.models import Usage
from shared.core.values import Completion
from shared.observability import tracing
from shared.pipeline.exchange import Exchange
from shared.state.budget import BudgetLedger, Estimate, Reservation
from shared.state.cache import ResponseCache
from shared.state.ratelimit import Allowance, RateLimiter

log = logging.getLogger(__name__)


class Admission:
    def __init__(self, rate_limiter: RateLimiter, budget: BudgetLedger, cache: ResponseCache) -> None:
        self.rate_limiter = rate_limiter
        self.budget = budget
        self.cache = cache

    def reads(self, ex: Exchange) -> bool:
        """Whether this exchange looks in the cache (a key, a tenant with a cache, no `no-cache`)."""
        return ex.key is not None and ex.ctx.cache_lookup and self.cache.reads(ex.principal)

    async def admit(self, ex: Exchange) -> Completion | None:
        """Rate limit, cache lookup, budget reservation: a hit, or None with `ex.reservation` held."""
        reads = self.reads(ex)
        hit = await self._admit(ex, reads)
        tracing.admitted(ex.model, ex.key.request if ex.key is not None else dict, looked_up=reads,
                         hit=hit is not None)
        return hit

    async def _admit(self, ex: Exchange, reads: bool) -> Completion | None:
        """First step, concurrently: the rate limit and the exact lookup (one Cosmos round trip). A
        hit is decided there, before anything is reserved. A miss reserves in a second step. Where
        nothing can be decided for free first, the reservation joins the first step: a tenant
        without a cache, or a lookup that may embed (the semantic cache's embedding is a billed
        model call, so its room is reserved before it is made). Room reserved for a request that
        is then refused or answered from the cache is given back by the exchange's one settlement
        (the budget stage's), at once and off the critical path.
        """
        estimate, principal = ex.estimate, ex.principal
        embeds = reads and ex.key is not None and self.cache.may_embed(principal, ex.key)
        embedding = estimate.prompt_tokens if embeds else 0
        early_reserve = embeds or not reads
        steps: list[Awaitable[object]] = [self.rate_limiter.admit(principal, estimate.tokens + embedding)]
        if reads:
            steps.append(self.exact(ex))
        if early_reserve:
            steps.append(self._reserve(ex, embedding))
        # Only the steps there are: each one a task of gather's.
        results = await asyncio.gather(*steps, return_exceptions=True)
        allowance, hit, early = results[0], results[1] if reads else None, results[-1] if early_reserve else None
        if early is not None and not isinstance(early, BaseException):
            ex.reservation = cast(Reservation, early)
        if isinstance(allowance, BaseException):
            raise allowance
        if isinstance(hit, BaseException):
            raise hit
        if hit is not None:
            return cast(Completion, hit)
        ex.headers.update(cast(Allowance, allowance).headers())
        if isinstance(early, BaseException):
            raise early
        if ex.reservation is None:
            ex.reservation = await self._reserve(ex, 0)
        if embeds:
            with metering(ex.meter):  # the lookup's embedding is charged to this call
                return await self.similar(ex)
        return None

    async def _reserve(self, ex: Exchange, embedding: int) -> Reservation:
        """The worst case (plus the lookup's embedding) on both windows. A request cancelled while
        its reservation is in flight gives the room back when the write lands."""
        e = ex.estimate
        task = spawn(self.budget.reserve(ex.principal, ex.model,
                                         Estimate(e.prompt_tokens + embedding, e.max_completion_tokens)))
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            task.add_done_callback(_give_back)
            raise

    async def exact(self, ex: Exchange, *, stale_ok: bool = False) -> Completion | None:
        """A cache that fails is a miss: it must never fail the request."""
        if ex.key is None:
            return None
        try:
            return await self.cache.exact(ex.principal, ex.key, stale_ok=stale_ok)
        except Exception as exc:  # noqa: BLE001  logged by type; the request goes on
            log.warning("cache lookup failed: %s", type(exc).__name__)
            return None

    async def similar(self, ex: Exchange) -> Completion | None:
        if ex.key is None:
            return None
        try:
            return await self.cache.similar(ex.principal, ex.model, ex.key)
        except Exception as exc:  # noqa: BLE001  as exact
            log.warning("cache lookup failed: %s", type(exc).__name__)
            return None


def _give_back(task: asyncio.Task[Reservation]) -> None:
    if not task.cancelled() and task.exception() is None:
        spawn(task.result().settle(Usage()))
