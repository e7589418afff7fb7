"""What a tenant and each of its keys used today and this month, against their limits (the admin
API's usage report and the console's bars), read from the budget window documents."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from shared.core.settings import TenantConfig
from shared.state.cosmos import CosmosState
from shared.state.windows import key_use, key_windows, usd, window_report, windows


async def tenant_usage(state: CosmosState, config: TenantConfig, now: datetime, slot_s: int) -> dict[str, Any]:
    """The tenant's day and month, and per key: its use in both (counted in the tenant's documents
    at settlement) and, for a key with a daily limit, its own day window against that limit."""
    t = now.timestamp()
    day, month = windows(config.tenant, now, config.limits)
    own = {k.id: key_windows(config.tenant, k.id, now, k.limits) for k in config.keys}
    wanted = [day, month, *(w for ws in own.values() for w in ws)]
    docs = dict(zip((w.id for w in wanted), await asyncio.gather(
        *(state.find("budgets", config.tenant, w.id) for w in wanted)), strict=True))
    day_doc, month_doc = docs[day.id] or {}, docs[month.id] or {}
    keys = []
    for key in config.keys:
        (day_tokens, day_micros), (month_tokens, month_micros) = key_use(day_doc, key.id), key_use(month_doc, key.id)
        limits = key.limits.model_dump() if key.limits is not None else {}
        entry: dict[str, Any] = {"id": key.id, "daily": {"tokens_used": day_tokens, "usd_spent": usd(day_micros)},
                                 "monthly": {"tokens_used": month_tokens, "usd_spent": usd(month_micros)},
                                 "limits": limits}
        for window in own[key.id]:  # the key's own day, whose limit a request is refused against
            entry["daily"] = window_report(docs[window.id] or {}, window, t, slot_s)
        keys.append(entry)
    return {"tenant": config.tenant, "daily": window_report(day_doc, day, t, slot_s),
            "monthly": window_report(month_doc, month, t, slot_s), "keys": keys}
