"""Admission: rate limit, cache lookup and budget reservation in as few Cosmos round trips as the
accounting allows (docs/accounting.md, "Round trips"): a hit, or the reservation for a miss."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from shared.core.background import spawn
from shared.core.metering import Meter, metering
from shared.core.models import Usage
from shared.core.values import Completion
from shared.identity.auth import Principal
from shared.observability import tracing
from shared.state.budget import BudgetLedger, Estimate, Reservation
from shared.state.cache import CacheKey, ResponseCache
from shared.state.ratelimit import RateLimiter

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CallContext:
    """Who asks, under which correlation id, and what the client allows the cache to do."""

    principal: Principal
    correlation_id: str
    cache_lookup: bool = True  # false on `Cache-Control: no-cache`
    cache_store: bool = True  # false on `Cache-Control: no-store`
    # Filled by the stages for the adapter to send (rate-limit headers).
    response_headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Plan:
    """One request to admit: its model group, cache key and worst-case estimate."""

    ctx: CallContext
    model: str
    key: CacheKey
    estimate: Estimate
    # A non-streamed call whose time limit is longer than the request deadline: the deadline, past
    # which it counts as a long call (bounded per tenant, its lease renewed); None for others.
    long_after_s: float | None = None


class Admission:
    def __init__(self, rate_limiter: RateLimiter, budget: BudgetLedger, cache: ResponseCache) -> None:
        self.rate_limiter = rate_limiter
        self.budget = budget
        self.cache = cache

    async def admit(self, plan: Plan) -> tuple[Meter, Completion | None, Reservation | None]:
        """Rate limit, cache lookup, budget reservation: a hit, or the reservation for a miss."""
        meter, hit, reservation = await self._admit(plan)
        tracing.admitted(plan.model, plan.key.request, looked_up=plan.ctx.cache_lookup and self.cache.reads(
            plan.ctx.principal), hit=hit is not None)
        return meter, hit, reservation

    async def _admit(self, plan: Plan) -> tuple[Meter, Completion | None, Reservation | None]:
        """First step, concurrently: the rate limit and the exact lookup (one Cosmos round trip). A
        hit is decided there, before anything is reserved. A miss reserves in a second step. Where
        nothing can be decided for free first, the reservation joins the first step: a tenant
        without a cache, or a lookup that may embed (the semantic cache's embedding is a billed
        model call, so its room is reserved before it is made). Room reserved for a request that
        is then refused or answered from the cache is given back at once, off the critical path.
        """
        ctx, estimate, principal = plan.ctx, plan.estimate, plan.ctx.principal
        meter = Meter(plan.model, estimate.prompt_tokens, estimate.max_completion_tokens)
        reads = ctx.cache_lookup and self.cache.reads(principal)
        embeds = reads and self.cache.may_embed(principal, plan.key)
        embedding = estimate.prompt_tokens if embeds else 0
        allowance, hit, early = await asyncio.gather(
            self.rate_limiter.admit(principal, estimate.tokens + embedding),
            self.exact(plan) if reads else nothing(),
            self._reserve(plan, embedding) if embeds or not reads else nothing(),
            return_exceptions=True)
        reservation = None if isinstance(early, BaseException) else early
        if isinstance(allowance, BaseException) or isinstance(hit, BaseException) or hit is not None:
            if reservation is not None:
                spawn(reservation.settle(Usage()))  # nothing was called
            if isinstance(allowance, BaseException):
                raise allowance
            if isinstance(hit, BaseException):
                raise hit
            return meter, hit, None
        ctx.response_headers.update(allowance.headers())
        if isinstance(early, BaseException):
            raise early
        if reservation is None:
            reservation = await self._reserve(plan, 0)
        if embeds:
            try:
                with metering(meter):
                    hit = await self.similar(plan)
            except BaseException:
                spawn(reservation.settle(meter.total()))
                raise
            if hit is not None:
                spawn(reservation.settle(meter.total()))  # the embedding alone
                return meter, hit, None
        return meter, None, reservation

    async def _reserve(self, plan: Plan, embedding: int) -> Reservation:
        """The worst case (plus the lookup's embedding) on both windows. A request cancelled while
        its reservation is in flight gives the room back when the write lands."""
        e = plan.estimate
        task = spawn(self.budget.reserve(plan.ctx.principal, plan.model,
                                         Estimate(e.prompt_tokens + embedding, e.max_completion_tokens)))
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            task.add_done_callback(_give_back)
            raise

    async def exact(self, plan: Plan, *, stale_ok: bool = False) -> Completion | None:
        """A cache that fails is a miss: it must never fail the request."""
        try:
            return await self.cache.exact(plan.ctx.principal, plan.key, stale_ok=stale_ok)
        except Exception as exc:  # noqa: BLE001  logged by type; the request goes on
            log.warning("cache lookup failed: %s", type(exc).__name__)
            return None

    async def similar(self, plan: Plan) -> Completion | None:
        try:
            return await self.cache.similar(plan.ctx.principal, plan.model, plan.key)
        except Exception as exc:  # noqa: BLE001  as exact
            log.warning("cache lookup failed: %s", type(exc).__name__)
            return None


async def nothing() -> None:
    """An awaitable of None, for a step that has nothing to do in an asyncio.gather."""


def _give_back(task: asyncio.Task[Reservation]) -> None:
    if not task.cancelled() and task.exception() is None:
        spawn(task.result().settle(Usage()))
