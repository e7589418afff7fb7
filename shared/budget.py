"""Per-tenant token and USD budgets in Cosmos `budgets`, exact under concurrency across instances.

Before a model call the worst case (prompt tokens + max_tokens) is reserved on the day and the
month window, each with one conditional `incr` patch whose filter predicate checks the limit on
the server: no read-modify-write, so no two instances can both take the last tokens. A refused
month gives the day back. After the call the reservation is replaced by the real usage; on any
error, timeout or disconnect it is released.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol

from azure.cosmos.exceptions import CosmosAccessConditionFailedError, CosmosResourceExistsError

from shared.auth import Principal
from shared.config import ModelPrice, TenantLimits
from shared.cosmos import CosmosState
from shared.errors import BudgetExhausted
from shared.models import Usage

log = logging.getLogger(__name__)
WindowKind = Literal["day", "month"]


@dataclass(frozen=True)
class Estimate:
    prompt_tokens: int
    max_completion_tokens: int

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.max_completion_tokens


class Reservation(Protocol):
    async def settle(self, usage: Usage) -> None:
        """Replace the reservation with what the model really used."""

    async def release(self) -> None:
        """Give the reservation back (error, timeout, client gone, cache hit)."""


class BudgetLedger(Protocol):
    async def reserve(self, principal: Principal, model: str, estimate: Estimate) -> Reservation:
        """Raise TooManyRequests (Retry-After until the window resets) when it does not fit."""


@dataclass(frozen=True)
class Window:
    kind: WindowKind
    id: str
    period: str
    resets_at: datetime
    token_limit: int | None
    usd_micros_limit: int | None


def windows(tenant: str, now: datetime, limits: TenantLimits) -> list[Window]:
    """The day and month windows containing `now` (UTC), with the tenant's limits."""
    day_start = datetime(now.year, now.month, now.day, tzinfo=UTC)
    next_month = datetime(now.year + now.month // 12, now.month % 12 + 1, 1, tzinfo=UTC)
    return [
        Window("day", f"{tenant}:day:{day_start:%Y-%m-%d}", f"{day_start:%Y-%m-%d}", day_start + timedelta(days=1),
               limits.daily_tokens, _micros(limits.daily_usd)),
        Window("month", f"{tenant}:month:{now:%Y-%m}", f"{now:%Y-%m}", next_month,
               limits.monthly_tokens, _micros(limits.monthly_usd)),
    ]


def _micros(usd: float | None) -> int | None:
    return None if usd is None else math.floor(usd * 1_000_000)


def cost_micros(price: ModelPrice | None, prompt: int, completion: int) -> int:
    """Micro-USD, rounded up: the price per 1M tokens is the price in micro-USD per token."""
    if price is None:
        return 0
    return math.ceil(prompt * price.input_per_1m + completion * price.output_per_1m)


def _incr(fields: dict[str, int]) -> list[dict[str, Any]]:
    return [{"op": "incr", "path": f"/{name}", "value": value} for name, value in fields.items()]


class CosmosReservation:
    def __init__(self, ledger: CosmosBudgetLedger, tenant: str, model: str, held: list[Window], *, tokens: int,
                 micros: int) -> None:
        self._ledger = ledger
        self._tenant = tenant
        self._model = model
        self._held = held
        self._tokens = tokens
        self._micros = micros
        self._done = False

    async def settle(self, usage: Usage) -> None:
        if self._done:
            return
        self._done = True
        used = cost_micros(self._ledger.prices.get(self._model), usage.prompt_tokens, usage.completion_tokens)
        await self._ledger.apply(self._tenant, self._held, {
            "tokens_reserved": -self._tokens, "tokens_used": usage.total_tokens,
            "usd_reserved_micros": -self._micros, "usd_used_micros": used,
        })

    async def release(self) -> None:
        if self._done:
            return
        self._done = True
        await self._ledger.apply(self._tenant, self._held,
                                 {"tokens_reserved": -self._tokens, "usd_reserved_micros": -self._micros})


class CosmosBudgetLedger:
    def __init__(self, state: CosmosState, prices: dict[str, ModelPrice],
                 now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.state = state
        self.prices = prices
        self.now = now
        self._known: set[str] = set()  # window documents this process knows exist

    async def reserve(self, principal: Principal, model: str, estimate: Estimate) -> CosmosReservation:
        tokens = estimate.tokens
        micros = cost_micros(self.prices.get(model), estimate.prompt_tokens, estimate.max_completion_tokens)
        held: list[Window] = []
        for window in windows(principal.tenant, self.now(), principal.limits):
            await self._ensure(principal.tenant, window)
            checks = []
            if window.token_limit is not None:
                checks.append(f"c.tokens_used + c.tokens_reserved <= {window.token_limit - tokens}")
            if window.usd_micros_limit is not None:
                checks.append(f"c.usd_used_micros + c.usd_reserved_micros <= {window.usd_micros_limit - micros}")
            container = await self.state.container("budgets")
            try:
                await container.patch_item(
                    window.id, partition_key=principal.tenant,
                    patch_operations=_incr({"tokens_reserved": tokens, "usd_reserved_micros": micros}),
                    filter_predicate=("FROM c WHERE " + " AND ".join(checks)) if checks else None,
                )
            except CosmosAccessConditionFailedError:
                await self.apply(principal.tenant, held, {"tokens_reserved": -tokens, "usd_reserved_micros": -micros})
                wait = (window.resets_at - self.now()).total_seconds()
                raise BudgetExhausted(
                    f"The {'daily' if window.kind == 'day' else 'monthly'} budget of tenant {principal.tenant!r} "
                    f"has no room for this request until {window.resets_at:%Y-%m-%dT%H:%M:%SZ}.",
                    retry_after_s=max(1.0, wait),
                ) from None
            held.append(window)
        return CosmosReservation(self, principal.tenant, model, held, tokens=tokens, micros=micros)

    async def apply(self, tenant: str, held: list[Window], fields: dict[str, int]) -> None:
        """Unconditional increments (settle, release, give back): they must never be refused."""
        container = await self.state.container("budgets")
        for window in held:
            try:
                await container.patch_item(window.id, partition_key=tenant, patch_operations=_incr(fields))
            except Exception:
                # The reservation now overstates use until the window resets: conservative, never
                # an overspend. Logged with ids only so an operator can correct it.
                log.exception("budget update failed: window=%s fields=%s", window.id, sorted(fields))

    async def usage(self, principal: Principal) -> dict[str, Any]:
        """`GET /api/v1/usage`: settled use of both windows and their limits."""
        report: dict[str, Any] = {"tenant": principal.tenant}
        for window in windows(principal.tenant, self.now(), principal.limits):
            doc = await self.state.find("budgets", principal.tenant, window.id) or {}
            report["daily" if window.kind == "day" else "monthly"] = {
                "tokens_used": int(doc.get("tokens_used", 0)),
                "tokens_reserved": int(doc.get("tokens_reserved", 0)),
                "token_limit": window.token_limit,
                "usd_spent": round(int(doc.get("usd_used_micros", 0)) / 1_000_000, 6),
                "usd_limit": None if window.usd_micros_limit is None else window.usd_micros_limit / 1_000_000,
                "resets_at": f"{window.resets_at:%Y-%m-%dT%H:%M:%SZ}",
            }
        return report

    async def _ensure(self, tenant: str, window: Window) -> None:
        if window.id in self._known:
            return
        container = await self.state.container("budgets")
        # Kept past the window's end for reporting; Cosmos removes it later (in Azure).
        ttl = 40 * 86400 if window.kind == "day" else 400 * 86400
        doc = {"id": window.id, "tenant": tenant, "window": window.kind, "period": window.period,
               "tokens_used": 0, "tokens_reserved": 0, "usd_used_micros": 0, "usd_reserved_micros": 0, "ttl": ttl}
        with contextlib.suppress(CosmosResourceExistsError):
            await container.create_item(doc)
        self._known.add(window.id)
