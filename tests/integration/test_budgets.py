"""Budgets on the Cosmos emulator: reservations, settlement, window reset, tenant isolation."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from azure.core.exceptions import ServiceRequestError

from shared.composition import Container
from shared.core.errors import BudgetBusy, BudgetExhausted, TooManyRequests
from shared.core.models import Usage
from shared.core.settings import ModelPrice, TenantLimits
from shared.identity.auth import Principal
from shared.state.budget import SLOTS, CosmosBudgetLedger, Estimate

PRICES = {"m": ModelPrice(input_per_1m=1.0, output_per_1m=2.0)}


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 3, 31, 23, 59, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def tenant(**limits: float) -> Principal:
    return Principal(f"t-{uuid.uuid4().hex[:10]}", "k", limits=TenantLimits(**limits))


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
    # The prompt is charged at admission (a provider bills it once sent); the completion is held.
    assert mid["daily"]["tokens_reserved"] == 200 and mid["daily"]["tokens_used"] == 100
    await reservation.settle(usage(100, 50))
    await reservation.settle(usage(100, 50))  # a second settle changes nothing
    report = await ledger.usage(who)
    assert report["daily"]["tokens_used"] == report["monthly"]["tokens_used"] == 150
    assert report["daily"]["tokens_reserved"] == report["monthly"]["tokens_reserved"] == 0
    assert report["daily"]["usd_spent"] == pytest.approx((100 * 1.0 + 50 * 2.0) / 1e6)


async def test_a_reservation_that_does_not_fit_is_429_until_midnight_utc(ledger: CosmosBudgetLedger,
                                                                         clock: Clock) -> None:
    who = tenant(daily_tokens=500)
    await (await ledger.reserve(who, "m", Estimate(100, 300))).settle(usage(100, 300))
    with pytest.raises(BudgetExhausted) as err:
        await ledger.reserve(who, "m", Estimate(50, 100))
    assert err.value.retry_after_s == pytest.approx(60)  # 23:59 -> 00:00
    assert "daily" in err.value.detail and err.value.headers["x-should-retry"] == "false"
    clock.now += timedelta(minutes=1)  # a new day (and month): the new windows have room
    await ledger.reserve(who, "m", Estimate(50, 100))


async def test_a_released_reservation_makes_room_again(ledger: CosmosBudgetLedger) -> None:
    who = tenant(daily_tokens=400)
    reservation = await ledger.reserve(who, "m", Estimate(100, 300))
    await reservation.settle(usage(0, 0))  # nothing was billed: all of it back
    await ledger.reserve(who, "m", Estimate(100, 300))
    report = (await ledger.usage(who))["daily"]
    assert (report["tokens_used"], report["tokens_reserved"]) == (100, 300), "only the second one counts"


async def test_a_refusing_month_gives_the_day_back(ledger: CosmosBudgetLedger, clock: Clock) -> None:
    clock.now = datetime(2026, 5, 10, 12, 0, tzinfo=UTC)
    who = tenant(daily_tokens=10_000, monthly_tokens=300)
    with pytest.raises(BudgetExhausted) as err:
        await ledger.reserve(who, "m", Estimate(100, 250))
    assert "monthly" in err.value.detail
    assert err.value.retry_after_s == pytest.approx((datetime(2026, 6, 1, tzinfo=UTC) - clock.now).total_seconds())
    report = (await ledger.usage(who))["daily"]
    assert report["tokens_reserved"] == report["tokens_used"] == 0, "the day is given back whole"


async def test_usd_limits_are_enforced_on_the_worst_case_cost(ledger: CosmosBudgetLedger) -> None:
    who = tenant(daily_usd=0.001)  # 1000 micro-USD: 1000 input tokens or 500 output tokens
    await ledger.reserve(who, "m", Estimate(200, 300))  # 200 + 600 = 800 micro-USD
    with pytest.raises(TooManyRequests):
        await ledger.reserve(who, "m", Estimate(100, 100))  # 300 more would pass 1000


async def test_tenants_never_share_counters(ledger: CosmosBudgetLedger) -> None:
    a, b = tenant(daily_tokens=300), tenant(daily_tokens=300)
    await ledger.reserve(a, "m", Estimate(100, 200))
    await ledger.reserve(b, "m", Estimate(100, 200))
    assert (await ledger.usage(b))["daily"]["tokens_reserved"] == 200


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
    report = (await ledger.usage(who))["daily"]
    assert (report["tokens_reserved"], report["tokens_used"]) == (600, 400)


async def test_room_held_by_requests_in_flight_is_busy_with_a_short_retry(ledger: CosmosBudgetLedger) -> None:
    who = tenant(daily_tokens=500)
    await ledger.reserve(who, "m", Estimate(100, 300))
    with pytest.raises(BudgetBusy) as err:
        await ledger.reserve(who, "m", Estimate(50, 100))  # fits once the one in flight settles
    assert err.value.retry_after_s is not None, "a busy refusal says when to retry"
    assert 1 <= err.value.retry_after_s <= 60, "until the earliest lease ends, never until midnight"
    assert "x-should-retry" not in err.value.headers
    assert (await ledger.usage(who))["daily"]["tokens_used"] == 100, "the refused prompt was given back"


async def test_a_dead_processes_room_returns_when_its_lease_ends(ledger: CosmosBudgetLedger, clock: Clock) -> None:
    clock.now = datetime(2026, 6, 2, 12, 0, tzinfo=UTC)
    who = tenant(daily_tokens=500)
    await ledger.reserve(who, "m", Estimate(100, 300))  # never settled: its process "died"
    with pytest.raises(BudgetBusy):
        await ledger.reserve(who, "m", Estimate(100, 300))
    clock.now += timedelta(seconds=ledger.lease_s + ledger.slot_s)
    report = (await ledger.usage(who))["daily"]
    assert (report["tokens_reserved"], report["tokens_used"]) == (0, 100), "held room back; the prompt charged"
    late = await ledger.reserve(who, "m", Estimate(100, 300))
    await late.settle(usage(100, 20))
    assert (await ledger.usage(who))["daily"]["tokens_used"] == 220


async def test_a_settlement_after_the_lease_ended_charges_without_freeing_room_twice(
        ledger: CosmosBudgetLedger, clock: Clock) -> None:
    clock.now = datetime(2026, 6, 3, 12, 0, tzinfo=UTC)
    who = tenant(daily_tokens=10_000)
    slow = await ledger.reserve(who, "m", Estimate(100, 300))
    clock.now += timedelta(seconds=SLOTS * ledger.slot_s)  # the slot's ring comes round again
    other = await ledger.reserve(who, "m", Estimate(10, 30))  # reuses the slow request's slot
    await slow.settle(usage(100, 50))
    report = (await ledger.usage(who))["daily"]
    assert (report["tokens_reserved"], report["tokens_used"]) == (30, 160)
    await other.settle(usage(0, 0))
    assert (await ledger.usage(who))["daily"]["tokens_reserved"] == 0


async def test_a_long_stream_renews_its_lease(ledger: CosmosBudgetLedger, clock: Clock) -> None:
    clock.now = datetime(2026, 6, 4, 12, 0, tzinfo=UTC)
    who = tenant(daily_tokens=10_000)
    stream = await ledger.reserve(who, "m", Estimate(100, 300))
    for _ in range(4):  # four lease halves: twice the lease in all
        clock.now += timedelta(seconds=ledger.lease_s / 2)
        await stream.renew()
    assert (await ledger.usage(who))["daily"]["tokens_reserved"] == 300, "still held while it runs"
    await stream.settle(usage(100, 280))
    report = (await ledger.usage(who))["daily"]
    assert (report["tokens_reserved"], report["tokens_used"]) == (0, 380)


async def test_a_cancelled_settlement_still_completes(ledger: CosmosBudgetLedger) -> None:
    who = tenant(daily_tokens=10_000)
    reservation = await ledger.reserve(who, "m", Estimate(100, 300))
    task = asyncio.ensure_future(reservation.settle(usage(100, 40)))
    await asyncio.sleep(0)
    task.cancel()  # a client disconnect cancels the request's task mid-settlement
    with pytest.raises(asyncio.CancelledError):
        await task
    await reservation.settle(usage(100, 40))  # waits for the one settlement, adds nothing
    report = (await ledger.usage(who))["daily"]
    assert (report["tokens_reserved"], report["tokens_used"]) == (0, 140)


async def test_a_settlement_whose_write_fails_is_retried_and_counts_once(container: Container, clock: Clock) -> None:
    pauses: list[float] = []

    async def pause(seconds: float) -> None:
        pauses.append(seconds)

    ledger = CosmosBudgetLedger(container.cosmos, PRICES, now=clock, retry_sleep=pause)
    who = tenant(daily_tokens=1000)
    reservation = await ledger.reserve(who, "m", Estimate(100, 200))
    write = ledger.patch_all
    failures = iter([ServiceRequestError("Cosmos could not be reached")] * 2)

    async def flaky(*args: Any, **kwargs: Any) -> list[dict[str, Any] | None]:
        if (failure := next(failures, None)) is not None:
            raise failure  # the batch never reached the documents: nothing changed
        return await write(*args, **kwargs)

    ledger.patch_all = flaky  # type: ignore[method-assign]
    await reservation.settle(usage(100, 50))
    report = await ledger.usage(who)
    assert report["daily"]["tokens_used"] == report["monthly"]["tokens_used"] == 150
    assert report["daily"]["tokens_reserved"] == 0
    assert pauses == [0.25, 0.5], "two failed writes, each followed by a growing pause"
