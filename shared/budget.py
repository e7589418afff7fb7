"""Token and USD budgets behind one port; the Cosmos-backed ledger is issue #4's.

The request path reserves the worst case before the model call, then settles to the real usage
or releases on any error or cancellation. `NoBudget` keeps that protocol without counting.
"""

from __future__ import annotations

from typing import Protocol

from shared.auth import Principal
from shared.models import Usage


class Reservation(Protocol):
    async def settle(self, usage: Usage) -> None:
        """Replace the reservation with what the model really used."""

    async def release(self) -> None:
        """Give the reservation back (error, timeout, client gone, cache hit)."""


class BudgetLedger(Protocol):
    async def reserve(self, principal: Principal, model: str, worst_case_tokens: int) -> Reservation:
        """Raise TooManyRequests (Retry-After until the window resets) when it does not fit."""


class _NothingReserved:
    async def settle(self, usage: Usage) -> None:
        return None

    async def release(self) -> None:
        return None


class NoBudget:
    async def reserve(self, principal: Principal, model: str, worst_case_tokens: int) -> Reservation:
        return _NothingReserved()
