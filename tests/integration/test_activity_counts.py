"""The console's last hour (shared/state/activity.py) on the Cosmos emulator: counts per minute,
written after the flush delay, summed over exactly the last 60 minutes of a moved clock."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from shared.core.background import drain
from shared.core.settings import Settings
from shared.state.activity import CosmosActivity
from shared.state.cosmos import CosmosState, cosmos_client

ELEVEN = datetime(2031, 5, 4, 11, 0, tzinfo=UTC).timestamp()


async def test_the_last_hour_counts_requests_hits_and_refusals_across_an_hour_boundary(
        stack_settings: Settings) -> None:
    state = CosmosState(cosmos_client(stack_settings, None), stack_settings.cosmos_database, create=True)
    now = [ELEVEN - 30]  # 10:59:30
    flushed: list[float] = []

    async def flush_now(seconds: float) -> None:  # the flush delay, not waited for
        flushed.append(seconds)

    activity = CosmosActivity(state, lambda: now[0], flush_now)
    tenant = f"activity-{uuid.uuid4().hex[:8]}"
    try:
        activity.count(tenant)
        activity.count(tenant, hit=True)
        now[0] = ELEVEN + 10  # 11:00:10, the next hour's document
        activity.count(tenant, refused=True)
        await drain(10)
        assert flushed  # written once the delay passed, in the background
        now[0] = ELEVEN + 30 * 60
        assert await activity.last_hour(tenant) == {"requests": 3, "cache_hits": 1, "refusals": 1}
        now[0] = ELEVEN + 60 * 60  # 12:00:00: the minute 10:59 has left the window, 11:00 has not
        assert await activity.last_hour(tenant) == {"requests": 1, "cache_hits": 0, "refusals": 1}
        now[0] = ELEVEN + 61 * 60
        assert await activity.last_hour(tenant) == {"requests": 0, "cache_hits": 0, "refusals": 0}
        assert await activity.last_hour("another-tenant") == {"requests": 0, "cache_hits": 0, "refusals": 0}
    finally:
        await state.close()
