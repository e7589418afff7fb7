"""Model routing (docs/routing.md): a route asked for as the model becomes one of its two tiers'
models by the request's complexity score, before the exchange is built, so admission, the cache
key and the settlement all see the model that runs. Its stage says where the request went.

A tier whose endpoints are all down is skipped up front (no usable endpoint); one whose call then
fails with nothing sent is tried once on the other tier, as a new exchange (so each tier is
reserved, cached and charged at its own price) unless the route sets `fallback_across_tiers: false`.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, TypeVar

from shared.core.errors import Forbidden, ServiceUnavailable
from shared.core.routes import ROUTE_HEADER, Route, RouteDecision, Tier
from shared.observability import tracing
from shared.routing.scorer import score_chat
from shared.state.windows import cost_micros

if TYPE_CHECKING:
    from shared.core.settings import ModelPrice
    from shared.core.values import Delta
    from shared.identity.auth import Principal
    from shared.pipeline.exchange import Exchange, Next, Reply
    from shared.upstream.groups import ModelGroups

T = TypeVar("T")
Messages = Sequence[Mapping[str, Any]]  # OpenAI-shaped: a role and str (or part-list) content


class Router:
    """The app's routes (`ROUTES`) and each tenant's own, over the model groups' health."""

    def __init__(self, routes: Mapping[str, Route], groups: ModelGroups | None,
                 prices: Mapping[str, ModelPrice]) -> None:
        self._routes = dict(routes)
        self.groups = groups
        self.prices = prices

    def routes(self, principal: Principal) -> dict[str, Route]:
        """The routes this tenant may ask for: the app's and its own (its own win by name), each
        only when its allow-list (`allowed_models`) admits both of the route's models."""
        allowed = principal.limits.allowed_models
        merged = {**self._routes, **principal.routes}
        return {name: r for name, r in merged.items() if allowed is None or {r.simple, r.complex} <= set(allowed)}

    def decide(self, principal: Principal, requested: str | None, messages: Messages, *, tools: int = 0,
               response_format: bool = False) -> RouteDecision | None:
        """Where a request for `requested` goes; None when it names no route (a model, or nothing)."""
        if not requested:
            return None
        route = self.routes(principal).get(requested)
        if route is None:
            if requested in self._routes or requested in principal.routes:
                raise Forbidden(f"The route {requested!r} is not enabled for this tenant: its models are not "
                                "both in the tenant's allowed_models.")
            return None
        score = score_chat(messages, tools=tools, response_format=response_format).value
        return self._placed(route, RouteDecision(requested, "simple", score, route.simple, route.complex),
                            "complex" if score >= route.threshold else "simple")

    def second_opinion(self, principal: Principal, decision: RouteDecision | None) -> str | None:
        """The model to ask for a second opinion on this decision: its route's, when its score is
        inside the route's band and the tenant may use that model; else None."""
        route = self.routes(principal).get(decision.route) if decision is not None else None
        judge = route.second_opinion if route is not None else None
        if judge is None or decision is None or not judge.covers(decision.score):
            return None
        allowed = principal.limits.allowed_models
        return judge.model if allowed is None or judge.model in allowed else None

    def judged(self, principal: Principal, decision: RouteDecision, verdict: Tier) -> RouteDecision:
        """The decision with the tier the second opinion chose (its tier down: the other, as up front)."""
        route = self.routes(principal)[decision.route]
        return self._placed(route, replace(decision, second_opinion=verdict), verdict)

    def _placed(self, route: Route, decision: RouteDecision, tier: Tier) -> RouteDecision:
        """The decision on `tier`'s model, or on the other tier's when `tier` has no endpoint up."""
        placed = replace(decision, tier=tier, model=route.model(tier), fallback=False)
        if route.fallback_across_tiers and not self._up(placed.model) and self._up(route.model(_other(tier))):
            return replace(placed, model=route.model(_other(tier)), fallback=True)
        return placed

    def fallback(self, principal: Principal, decision: RouteDecision | None) -> RouteDecision | None:
        """The other tier for a request whose tier could not answer: once, and only where allowed."""
        route = self.routes(principal).get(decision.route) if decision is not None else None
        if decision is None or decision.fallback or route is None or not route.fallback_across_tiers:
            return None
        return replace(decision, model=route.model(_other(decision.tier)), fallback=True)

    def _up(self, model: str) -> bool:
        """Some endpoint of the model's group could take a call now (no open breaker, not parked). A
        model that is not configured is not down: resolving it says so (404), never a silent fallback."""
        if self.groups is None or model not in self.groups.models():
            return True
        return any(self.groups.policy.pool.usable(e) for e in self.groups.group(model))

    async def stage(self, ex: Exchange, nxt: Next) -> Reply:
        """A routed exchange says where it went (the header, the record and its span) and, at its
        end, what routing saved against the route's complex model for the same usage."""
        decision = ex.route
        if decision is None:
            return await nxt(ex)
        ex.headers[ROUTE_HEADER] = decision.header()
        tracing.routed(decision.route, decision.served_tier, decision.score, fallback=decision.fallback,
                       second_opinion=decision.second_opinion)

        async def savings() -> None:
            usage = ex.meter.total()
            charged = cost_micros(self.prices.get(ex.model), usage.prompt_tokens, usage.completion_tokens)
            complex_ = cost_micros(self.prices.get(decision.complex_model), usage.prompt_tokens,
                                   usage.completion_tokens)
            tracing.routing_savings(ex.principal.tenant, decision.route, ex.model, (complex_ - charged) / 1_000_000)

        ex.after(savings)
        return await nxt(ex)


def _other(tier: Tier) -> Tier:
    return "complex" if tier == "simple" else "simple"


async def whole_or_fallback(run: Callable[[RouteDecision | None], Awaitable[T]], decision: RouteDecision | None,
                            fallback: Callable[[RouteDecision | None], RouteDecision | None]) -> T:
    """`run` on the decided tier; when it could not answer (503: nothing was sent), once more on
    the other tier, as its own exchange."""
    try:
        return await run(decision)
    except ServiceUnavailable:
        other = fallback(decision)
        if other is None:
            raise
    return await run(other)


async def stream_or_fallback(first: AsyncGenerator[Delta, None],
                             again: Callable[[], AsyncGenerator[Delta, None] | None]) -> AsyncGenerator[Delta, None]:
    """`first`'s deltas; when it fails with 503 before any of the answer, those of `again()` instead
    (None: no fallback). A failure after content is a cut, which the pipeline already reported."""
    sent = False
    try:
        async for delta in first:
            sent = sent or delta.answers
            yield delta
        return
    except ServiceUnavailable:
        rest = None if sent else again()
        if rest is None:
            raise
    finally:
        await first.aclose()
    async for delta in rest:
        yield delta
