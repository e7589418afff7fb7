"""One clock, injected at the composition root, is the time of the budget, the rate limiter and
the jobs: a test moves it across midnight instead of waiting for midnight (on the Cosmos emulator)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from shared.composition import build_container
from shared.core.models import Usage
from shared.core.settings import Settings, TenantLimits
from shared.identity.auth import Principal
from shared.state.budget import Estimate
from tests.unit.resilience.helpers import FakeClock

NEW_YEARS_EVE = datetime(2031, 12, 31, 23, 59, 50, tzinfo=UTC).timestamp()


class MovedClock(FakeClock):
    """The test clock, its wall time set where the test needs it."""

    def __init__(self, wall: float) -> None:
        super().__init__()
        self.offset = wall - self.t

    def wall(self) -> float:
        return self.offset + self.t


async def test_moving_the_one_clock_past_midnight_opens_a_new_day_and_month(stack_settings: Settings) -> None:
    clock = MovedClock(NEW_YEARS_EVE)
    container = await build_container(stack_settings, clock=clock)
    try:
        model = stack_settings.ai_endpoints[0].model
        tenant = Principal(f"clock-{uuid.uuid4().hex[:8]}", "k",
                           limits=TenantLimits(daily_tokens=1000, monthly_tokens=5000, rpm=1000))
        reservation = await container.budget.reserve(tenant, model, Estimate(100, 50))
        await reservation.settle(Usage(prompt_tokens=100, completion_tokens=20, total_tokens=120))
        await container.gateway.rate_limiter.admit(tenant, 150)
        before = await container.budget.usage(tenant)
        assert before["daily"]["resets_at"] == "2032-01-01T00:00:00Z" and before["daily"]["tokens_used"] == 120
        assert before["monthly"]["resets_at"] == "2032-01-01T00:00:00Z"

        clock.t += 20  # 2032-01-01 00:00:10: no waiting for the new year
        after = await container.budget.usage(tenant)
        assert after["daily"]["resets_at"] == "2032-01-02T00:00:00Z" and after["daily"]["tokens_used"] == 0
        assert after["monthly"]["resets_at"] == "2032-02-01T00:00:00Z" and after["monthly"]["tokens_used"] == 0
        allowance = await container.gateway.rate_limiter.admit(tenant, 150)
        assert allowance.remaining_requests == 999, "a new minute: the rate window turned with the clock"
    finally:
        await container.close()
