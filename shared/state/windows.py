"""The budget windows a request is charged to: its tenant's day and month, and its key's own day
when the key has a daily limit (docs/admin.md); and what a key's use is counted as within them."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from shared.core.key_limits import KeyLimits
from shared.core.settings import BUDGET_SLOTS, ModelPrice, TenantLimits

WindowKind = Literal["day", "month"]
Scope = Literal["tenant", "key"]


@dataclass(frozen=True)
class Window:
    kind: WindowKind
    id: str
    period: str
    resets_at: datetime
    token_limit: int | None
    usd_micros_limit: int | None
    scope: Scope = "tenant"
    key_id: str | None = None  # the key of a key-scoped window

    def describe(self, tenant: str) -> str:
        """Whose budget this is, for a refusal's message: the tenant's, or one key's of it."""
        name = "daily" if self.kind == "day" else "monthly"
        if self.scope == "key":
            return f"The {name} budget of key {self.key_id!r} of tenant {tenant!r}"
        return f"The {name} budget of tenant {tenant!r}"


def _day(now: datetime) -> datetime:
    return datetime(now.year, now.month, now.day, tzinfo=UTC)


def windows(tenant: str, now: datetime, limits: TenantLimits) -> list[Window]:
    """The day and month windows containing `now` (UTC), with the tenant's limits."""
    day_start = _day(now)
    next_month = datetime(now.year + now.month // 12, now.month % 12 + 1, 1, tzinfo=UTC)
    return [
        Window("day", f"{tenant}:day:{day_start:%Y-%m-%d}", f"{day_start:%Y-%m-%d}", day_start + timedelta(days=1),
               limits.daily_tokens, micros(limits.daily_usd)),
        Window("month", f"{tenant}:month:{now:%Y-%m}", f"{now:%Y-%m}", next_month,
               limits.monthly_tokens, micros(limits.monthly_usd)),
    ]


def key_windows(tenant: str, key_id: str, now: datetime, limits: KeyLimits | None) -> list[Window]:
    """The key's own day window, when it has a daily limit: reserved and settled beside its
    tenant's, in the tenant's partition. A key without one has none (its use is still counted in
    its tenant's windows, `key_fields`)."""
    if limits is None or (limits.daily_tokens is None and limits.daily_usd is None):
        return []
    day_start = _day(now)
    return [Window("day", f"{tenant}:key:{key_id}:day:{day_start:%Y-%m-%d}", f"{day_start:%Y-%m-%d}",
                   day_start + timedelta(days=1), limits.daily_tokens, micros(limits.daily_usd), "key", key_id)]


def key_fields(key_id: str) -> tuple[str, str]:
    """The fields of a tenant's window document that count one key's settled tokens and micro-USD
    (as patch paths: a key id is escaped as a JSON pointer segment)."""
    segment = key_id.replace("~", "~0").replace("/", "~1")
    return f"kt:{segment}", f"ku:{segment}"


def key_use(doc: dict[str, Any], key_id: str) -> tuple[int, int]:
    """A key's settled tokens and micro-USD as counted in a tenant's window document."""
    return int(doc.get(f"kt:{key_id}") or 0), int(doc.get(f"ku:{key_id}") or 0)


def micros(usd: float | None) -> int | None:
    return None if usd is None else math.floor(usd * 1_000_000)


def cost_micros(price: ModelPrice | None, prompt: int, completion: int) -> int:
    """Micro-USD, rounded up: the price per 1M tokens is the price in micro-USD per token."""
    if price is None:
        return 0
    return math.ceil(prompt * price.input_per_1m + completion * price.output_per_1m)


def bucket_of(t: float, slot_s: int) -> int:
    """The lease bucket a lease ending at `t` (epoch seconds) belongs to."""
    return math.ceil(t / slot_s)


def first_live_bucket(t: float, slot_s: int) -> int:
    """Buckets before this one have ended at `t`: their room is free again."""
    return math.floor(t / slot_s) + 1


def held_in(doc: dict[str, Any], t: float, slot_s: int) -> tuple[int, int, float | None]:
    """Tokens and micro-USD held by live leases in a window document, and when the first ends."""
    kmin = first_live_bucket(t, slot_s)
    tokens = micros = 0
    first_end: float | None = None
    for i in range(BUDGET_SLOTS):
        slot = doc.get(f"l{i}") or {}
        if int(slot.get("e", 0)) >= kmin and (slot.get("t") or slot.get("u")):
            tokens += int(slot.get("t", 0))
            micros += int(slot.get("u", 0))
            end = int(slot["e"]) * slot_s
            first_end = end if first_end is None else min(first_end, end)
    return tokens, micros, first_end


def window_report(doc: dict[str, Any], window: Window, t: float, slot_s: int) -> dict[str, Any]:
    """One window: settled use, what live leases hold, its limits and when it resets."""
    held_tokens, _, _ = held_in(doc, t, slot_s)
    return {
        "tokens_used": int(doc.get("tokens_used", 0)),
        "tokens_reserved": held_tokens,
        "token_limit": window.token_limit,
        "usd_spent": usd(int(doc.get("usd_used_micros", 0))),
        "usd_limit": None if window.usd_micros_limit is None else window.usd_micros_limit / 1_000_000,
        "resets_at": f"{window.resets_at:%Y-%m-%dT%H:%M:%SZ}",
    }


def usd(micros: int) -> float:
    return round(micros / 1_000_000, 6)
