"""Budgets on the Cosmos emulator: reservations, settlement, window reset, tenant isolation."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from shared.auth import Principal
from shared.budget import CosmosBudgetLedger, Estimate
from shared.config import ModelPrice, TenantLimits
from shared.container import Container
from shared.errors import TooManyRequests
from shared.models import Usage

PRICES = {"m": ModelPrice(input_per_1m=1.0, output_per_1m=2.0)}


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 3, 31, 23, 59, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def tenant(**limits: float) -> Principal:
    return Principal(f"t-{uuid.uuid4().hex[:10]}", "k", limits=TenantLimits(**limits))  # type: ignore[arg-type]


def usage(prompt: int, completion: int) -> Usage:
    return Usage(prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def ledger(container: Container, clock: Clock) -> CosmosBudgetLedger:
    return CosmosBudgetLedger(container.cosmos, PRICES, now=clock)


async def test_reserve_then_settle_counts_real_usage_and_leaves_nothing_reserved(ledger: CosmosBudgetLedger) -> None:
    who = tenant(daily_tokens=1000)
    reservation = await ledger.reserve(who, "m", Estimate(100, 200))
    mid = await ledger.usage(who)
    assert mid["daily"]["tokens_reserved"] == 300 and mid["daily"]["tokens_used"] == 0
    await reservation.settle(usage(100, 50))
    await reservation.settle(usage(100, 50))  # a second settle changes nothing
    report = await ledger.usage(who)
    assert report["daily"]["tokens_used"] == report["monthly"]["tokens_used"] == 150
    assert report["daily"]["tokens_reserved"] == report["monthly"]["tokens_reserved"] == 0
    assert report["daily"]["usd_spent"] == pytest.approx((100 * 1.0 + 50 * 2.0) / 1e6)


async def test_a_reservation_that_does_not_fit_is_429_until_midnight_utc(ledger: CosmosBudgetLedger,
                                                                         clock: Clock) -> None:
    who = tenant(daily_tokens=500)
    await ledger.reserve(who, "m", Estimate(100, 300))
    with pytest.raises(TooManyRequests) as err:
        await ledger.reserve(who, "m", Estimate(50, 100))
    assert err.value.retry_after_s == pytest.approx(60)  # 23:59 -> 00:00
    assert "daily" in err.value.detail
    clock.now += timedelta(minutes=1)  # a new day (and month): the new windows have room
    await ledger.reserve(who, "m", Estimate(50, 100))


async def test_a_released_reservation_makes_room_again(ledger: CosmosBudgetLedger) -> None:
    who = tenant(daily_tokens=400)
    reservation = await ledger.reserve(who, "m", Estimate(100, 300))
    await reservation.release()
    await ledger.reserve(who, "m", Estimate(100, 300))
    assert (await ledger.usage(who))["daily"]["tokens_used"] == 0


async def test_a_refusing_month_gives_the_day_back(ledger: CosmosBudgetLedger, clock: Clock) -> None:
    clock.now = datetime(2026, 5, 10, 12, 0, tzinfo=UTC)
    who = tenant(daily_tokens=10_000, monthly_tokens=300)
    with pytest.raises(TooManyRequests) as err:
        await ledger.reserve(who, "m", Estimate(100, 250))
    assert "monthly" in err.value.detail
    assert err.value.retry_after_s == pytest.approx((datetime(2026, 6, 1, tzinfo=UTC) - clock.now).total_seconds())
    assert (await ledger.usage(who))["daily"]["tokens_reserved"] == 0, "no reservation left hanging"


async def test_usd_limits_are_enforced_on_the_worst_case_cost(ledger: CosmosBudgetLedger) -> None:
    who = tenant(daily_usd=0.001)  # 1000 micro-USD: 1000 input tokens or 500 output tokens
    await ledger.reserve(who, "m", Estimate(200, 300))  # 200 + 600 = 800 micro-USD
    with pytest.raises(TooManyRequests):
        await ledger.reserve(who, "m", Estimate(100, 100))  # 300 more would pass 1000


async def test_tenants_never_share_counters(ledger: CosmosBudgetLedger) -> None:
    a, b = tenant(daily_tokens=300), tenant(daily_tokens=300)
    await ledger.reserve(a, "m", Estimate(100, 200))
    await ledger.reserve(b, "m", Estimate(100, 200))
    assert (await ledger.usage(b))["daily"]["tokens_reserved"] == 300


async def test_concurrent_reservations_never_exceed_the_limit(ledger: CosmosBudgetLedger) -> None:
    who = tenant(daily_tokens=1000)

    async def one() -> bool:
        try:
            await ledger.reserve(who, "m", Estimate(40, 60))
        except TooManyRequests:
            return False
        return True

    admitted = sum(await asyncio.gather(*(one() for _ in range(50))))
    assert admitted == 10
    assert (await ledger.usage(who))["daily"]["tokens_reserved"] == 1000
