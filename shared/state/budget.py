"""Per-tenant token and USD budgets in Cosmos `budgets`, exact under concurrency across instances.

Each window (day, month, and a key's own) is one document, all in the tenant's partition.
Admission is one transactional batch of conditional `incr` patches, one per window, whose filter
predicates check the limits on the server: no two instances can both take the last tokens, and a
window that refuses undoes the others' charge with it (one round trip, nothing to give back).
The prompt (as counted) is charged at admission: a provider bills it as soon as the call is sent.
The completion allowance is held under a lease, in a ring of lease slots in the same document:
slot `l{i}` holds `{e: epoch, t: tokens, u: micro-USD}` of every reservation whose lease ends in
bucket `e` (BUDGET_SLOT_S wide, 20 s by default). The limit check counts only slots whose
bucket has not ended, so room held by a process that died is given back when its lease ends,
atomically and on every instance, with no reaper. Settlement replaces the estimate with what was
billed and empties its slot, on every window in one batch. docs/accounting.md has the rules and why.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from azure.cosmos.exceptions import (
    CosmosAccessConditionFailedError,
    CosmosBatchOperationError,
    CosmosResourceExistsError,
)

from shared.core.background import Ahead, spawn
from shared.core.errors import BudgetBusy, BudgetExhausted
from shared.core.models import Usage
from shared.core.settings import BUDGET_SLOTS, ModelPrice
from shared.identity.auth import Principal
from shared.observability import tracing
from shared.state.cosmos import CosmosState
from shared.state.windows import (
    Window,
    bucket_of,
    cost_micros,
    first_live_bucket,
    held_in,
    key_fields,
    key_windows,
    window_report,
    windows,
)

log = logging.getLogger(__name__)
SLOTS = BUDGET_SLOTS  # ring size: the settings check that SLOTS * slot width exceeds the lease + 2 slots
BUSY_RETRY_CAP_S = 60.0
SETTLE_TRIES = 4


@dataclass(frozen=True)
class Estimate:
    prompt_tokens: int
    max_completion_tokens: int

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.max_completion_tokens


class Reservation(Protocol):
    async def settle(self, usage: Usage) -> None:
        """Replace the reservation with what the providers billed (zero: nothing was billed)."""

    async def renew(self) -> None:
        """Extend the lease of a request still running (a long stream)."""


class BudgetLedger(Protocol):
    async def reserve(self, principal: Principal, model: str, estimate: Estimate) -> Reservation:
        """Raise BudgetExhausted or BudgetBusy (both 429, with Retry-After) when it does not fit."""


def _incr(fields: dict[str, int]) -> list[dict[str, Any]]:
    return [{"op": "incr", "path": f"/{name}", "value": value} for name, value in fields.items() if value]


class CheckFailed(Exception):
    """A window's filter predicate did not hold: the batch was undone on every window."""

    def __init__(self, window: Window) -> None:
        super().__init__(window.id)
        self.window = window


@dataclass(frozen=True)
class Change:
    """One window's part of a batch: the fields to increment, if `check` holds on its document."""

    window: Window
    fields: dict[str, int]
    check: str | None = None


def _fits(doc: dict[str, Any], window: Window, tokens: int, micros: int) -> bool:
    """Whether `tokens` and `micros` fit on the window's settled use (nothing in flight counted)."""
    return (window.token_limit is None or int(doc.get("tokens_used", 0)) + tokens <= window.token_limit) and (
        window.usd_micros_limit is None or int(doc.get("usd_used_micros", 0)) + micros <= window.usd_micros_limit)


def _live_sum(field_name: str, kmin: int) -> str:
    return " + ".join(f"(c.l{i}.e >= {kmin} ? c.l{i}.{field_name} : 0)" for i in range(SLOTS))


@dataclass
class _Charge:
    """What a reservation put on its windows: the prompt as used, the completion as held."""

    prompt_tokens: int
    prompt_micros: int
    held_tokens: int
    held_micros: int


@dataclass
class CosmosReservation:
    ledger: CosmosBudgetLedger
    tenant: str
    model: str
    windows: list[Window]
    charge: _Charge
    bucket: int
    key_id: str = ""  # whose use the tenant's windows also count per key (shared/state/windows.key_fields)
    _settling: asyncio.Task[None] | None = field(default=None, repr=False)

    async def settle(self, usage: Usage) -> None:
        """Runs once, in a task of its own that a cancelled caller cannot interrupt; only a
        successful write marks it done (a failed one is retried, then left to the lease)."""
        if self._settling is None:
            self._settling = spawn(self._settle(usage))
        await asyncio.shield(self._settling)

    async def renew(self) -> None:
        now = self.ledger.now().timestamp()
        slot_s = self.ledger.slot_s
        if self._settling is not None or bucket_of(now + self.ledger.lease_s / 2, slot_s) < self.bucket:
            return
        new = bucket_of(now + self.ledger.lease_s, slot_s)
        if new == self.bucket:
            return
        c = self.charge
        old_i, new_i = self.bucket % SLOTS, new % SLOTS
        moves = {f"l{old_i}/t": -c.held_tokens, f"l{old_i}/u": -c.held_micros,
                 f"l{new_i}/t": c.held_tokens, f"l{new_i}/u": c.held_micros}
        try:
            for window in self.windows:
                await self.ledger.prepare_slot(self.tenant, window, new, now)
            await self.ledger.patch_all(self.tenant, [
                Change(w, moves, f"c.l{old_i}.e = {self.bucket} AND c.l{new_i}.e = {new}") for w in self.windows])
        except Exception as exc:  # noqa: BLE001  the lease keeps its old end; logged by type
            log.warning("budget lease renewal failed: tenant=%s error=%s", self.tenant, type(exc).__name__)
            return
        self.bucket = new

    async def _settle(self, usage: Usage) -> None:
        c = self.charge
        used_micros = cost_micros(self.ledger.prices.get(self.model), usage.prompt_tokens, usage.completion_tokens)
        used = {"tokens_used": usage.total_tokens - c.prompt_tokens, "usd_used_micros": used_micros - c.prompt_micros}
        tracing.charged(self.tenant, self.model, usage.prompt_tokens, usage.completion_tokens, used_micros)
        slot = self.bucket % SLOTS
        release = {f"l{slot}/t": -c.held_tokens, f"l{slot}/u": -c.held_micros}
        # The tenant's windows also count the key's use, in the same patch: usage per key for free.
        per_key = {**used, **dict(zip(key_fields(self.key_id), (usage.total_tokens, used_micros), strict=True))}
        await self.ledger.settle(self.tenant, [(w, per_key if w.scope == "tenant" else used) for w in self.windows],
                                 release, f"c.l{slot}.e = {self.bucket}")


class CosmosBudgetLedger:
    def __init__(self, state: CosmosState, prices: dict[str, ModelPrice], *, lease_s: float = 60.0,
                 slot_s: int = 20, now: Callable[[], datetime] = lambda: datetime.now(UTC),
                 retry_sleep: Callable[[float], Any] = asyncio.sleep) -> None:
        self.state = state
        self.prices = prices
        self.lease_s = lease_s
        self.slot_s = slot_s  # every instance on the account must use the same width (BUDGET_SLOT_S)
        self.now = now
        self._sleep = retry_sleep
        self._known: set[str] = set()  # window documents this process knows exist
        self._ready_slots: dict[tuple[str, int], int] = {}  # (window id, slot) -> bucket it is set to
        self._ahead = Ahead()  # slots being pointed ahead

    async def reserve(self, principal: Principal, model: str, estimate: Estimate) -> CosmosReservation:
        now = self.now()
        t = now.timestamp()
        price = self.prices.get(model)
        charge = _Charge(estimate.prompt_tokens, cost_micros(price, estimate.prompt_tokens, 0),
                         estimate.max_completion_tokens, cost_micros(price, 0, estimate.max_completion_tokens))
        bucket = bucket_of(t + self.lease_s, self.slot_s)
        held = self._windows(principal, now)
        # Both are no-ops (no round trip) once this process knows the documents and the slot: the
        # slot of the next bucket is pointed ahead, off the critical path, so that stays the rule.
        if any(w.id not in self._known for w in held):
            await asyncio.gather(*(self._ensure(principal.tenant, w) for w in held))
        if any(self._ready_slots.get((w.id, bucket % SLOTS)) != bucket for w in held):
            await asyncio.gather(*(self.prepare_slot(principal.tenant, w, bucket, t) for w in held))
        self._prepare_ahead(principal.tenant, held, bucket + 1, t)
        try:
            await self.patch_all(principal.tenant, [self._admission(w, charge, bucket, t) for w in held])
        except CheckFailed as refused:  # the first window that refused; none kept the charge
            raise await self._refusal(principal.tenant, refused.window, charge, t) from None
        return CosmosReservation(self, principal.tenant, model, held, charge, bucket, principal.key_id)

    @staticmethod
    def _windows(principal: Principal, now: datetime) -> list[Window]:
        """The tenant's windows, then the key's own (a refusal names the first that refused)."""
        return [*windows(principal.tenant, now, principal.limits),
                *key_windows(principal.tenant, principal.key_id, now, principal.key_limits)]

    def _admission(self, window: Window, c: _Charge, bucket: int, t: float) -> Change:
        kmin = first_live_bucket(t, self.slot_s)
        checks = [f"c.l{bucket % SLOTS}.e = {bucket}"]
        if window.token_limit is not None:
            limit = window.token_limit - c.prompt_tokens - c.held_tokens
            checks.append(f"c.tokens_used + {_live_sum('t', kmin)} <= {limit}")
        if window.usd_micros_limit is not None:
            limit = window.usd_micros_limit - c.prompt_micros - c.held_micros
            checks.append(f"c.usd_used_micros + {_live_sum('u', kmin)} <= {limit}")
        slot = bucket % SLOTS
        fields = {"tokens_used": c.prompt_tokens, "usd_used_micros": c.prompt_micros,
                  f"l{slot}/t": c.held_tokens, f"l{slot}/u": c.held_micros}
        return Change(window, fields, " AND ".join(checks))

    async def _refusal(self, tenant: str, window: Window, c: _Charge, t: float) -> BudgetBusy | BudgetExhausted:
        """Exhausted when the request cannot fit even with nothing in flight; else busy until the
        first lease ends (capped), since in-flight requests usually settle for less than they hold."""
        doc = await self.state.find("budgets", tenant, window.id) or {}
        if not _fits(doc, window, c.prompt_tokens + c.held_tokens, c.prompt_micros + c.held_micros):
            return self._exhausted(tenant, window, "for this request")
        _, _, first_end = held_in(doc, t, self.slot_s)
        wait = min(BUSY_RETRY_CAP_S, max(1.0, (first_end or t + 1) - t))
        return BudgetBusy(f"{window.describe(tenant)} is held by requests in flight. Retry shortly.",
                          retry_after_s=wait, scope=window.scope)

    async def spent(self, principal: Principal) -> BudgetExhausted | None:
        """Read-only, nothing reserved: the refusal when a window's settled use has reached its limit,
        so that no request fits before it resets (what `POST /api/v1/jobs` asks before accepting)."""
        limited = [w for w in self._windows(principal, self.now())
                   if w.token_limit is not None or w.usd_micros_limit is not None]
        docs = await asyncio.gather(*(self.state.find("budgets", principal.tenant, w.id) for w in limited))
        return next((self._exhausted(principal.tenant, w, "left") for w, doc in zip(limited, docs, strict=True)
                     if not _fits(doc or {}, w, 1, 1)), None)

    def _exhausted(self, tenant: str, window: Window, room: str) -> BudgetExhausted:
        wait = (window.resets_at - self.now()).total_seconds()
        return BudgetExhausted(f"{window.describe(tenant)} has no room {room} until "
                               f"{window.resets_at:%Y-%m-%dT%H:%M:%SZ}.", retry_after_s=max(1.0, wait),
                               scope=window.scope)

    def _prepare_ahead(self, tenant: str, held: list[Window], bucket: int, t: float) -> None:
        """Point the next bucket's slot now, in the background. Its old bucket has ended already:
        the ring is longer than the longest lease plus two slots (SLOTS)."""
        for window in held:
            slot = (window.id, bucket % SLOTS)
            if self._ready_slots.get(slot) != bucket:
                self._ahead.start(slot, self.prepare_slot, tenant, window, bucket, t)

    async def prepare_slot(self, tenant: str, window: Window, bucket: int, t: float) -> None:
        """Point the slot of `bucket` at it, once its earlier bucket has ended (it always has: the
        ring is longer than any lease). Idempotent across instances: the predicate lets one win."""
        slot = bucket % SLOTS
        if self._ready_slots.get((window.id, slot)) == bucket:
            return
        kmin = first_live_bucket(t, self.slot_s)
        with contextlib.suppress(CosmosAccessConditionFailedError):
            container = await self.state.container("budgets")
            await container.patch_item(
                window.id, partition_key=tenant,
                patch_operations=[{"op": "set", "path": f"/l{slot}", "value": {"e": bucket, "t": 0, "u": 0}}],
                filter_predicate=f"FROM c WHERE NOT IS_DEFINED(c.l{slot}) OR c.l{slot}.e < {kmin}",
                no_response=True,
            )
        if len(self._ready_slots) > 10_000:
            self._ready_slots.clear()
        self._ready_slots[(window.id, slot)] = bucket

    async def settle(self, tenant: str, used: list[tuple[Window, dict[str, int]]], release: dict[str, int],
                     slot_check: str) -> None:
        """Charge each window its `used` and empty the lease slot, in one batch (a batch that failed
        changed nothing, so it is retried whole)."""

        async def batch() -> None:
            # The settled documents feed only the budget gauge, which exists with telemetry on.
            gauge = tracing.enabled()
            try:
                docs = await self.patch_all(tenant, [Change(w, {**u, **release}, slot_check) for w, u in used],
                                            body=gauge)
            except CheckFailed:
                # The lease ended first, and its slot was reused on some window: each window then
                # charges the use alone where its slot moved on (that room was given back already).
                await asyncio.gather(*(self.settle_window(tenant, w, u, release, slot_check) for w, u in used))
                return
            for (window, _), doc in zip(used, docs, strict=True):
                tracing.budget_window(tenant, window.kind, doc, window.token_limit, window.usd_micros_limit)

        await self._until_written(batch, f"windows={[w.id for w, _ in used]}")

    async def settle_window(self, tenant: str, window: Window, used: dict[str, int], release: dict[str, int],
                            slot_check: str) -> None:
        """Charge `used` and empty the lease slot. If the lease has already ended (its slot reused),
        only the charge applies: that room was given back when the lease ended."""

        async def one() -> None:
            gauge = tracing.enabled()
            try:
                doc = await self.patch(tenant, window, {**used, **release}, slot_check, body=gauge)
            except CosmosAccessConditionFailedError:
                doc = await self.patch(tenant, window, used, body=gauge)
            tracing.budget_window(tenant, window.kind, doc, window.token_limit, window.usd_micros_limit)

        await self._until_written(one, f"window={window.id} fields={sorted(used)}")

    async def _until_written(self, write: Callable[[], Awaitable[None]], what: str) -> None:
        """A settlement's write, retried; after the last failure logged by type and left: the usage is
        lost there, and the held room still returns with its lease."""
        for attempt in range(SETTLE_TRIES):
            try:
                await write()
                return
            except Exception as exc:  # noqa: BLE001  any failure: retried, then logged by type
                if attempt == SETTLE_TRIES - 1:
                    log.error("budget settlement failed: %s error=%s", what, type(exc).__name__)
                    return
                await self._sleep(0.25 * 2**attempt)

    async def patch_all(self, tenant: str, changes: list[Change], *, body: bool = False) -> list[dict[str, Any] | None]:
        """Apply every change in one transactional batch: all of them, or none and CheckFailed naming
        the first window whose check did not hold. Each window's document as patched if `body`
        (else empty), None where there was nothing to patch (and nothing checked)."""
        ops = [_incr(c.fields) for c in changes]
        sent = [(c, o) for c, o in zip(changes, ops, strict=True) if o]
        if not sent:
            return [None] * len(changes)
        container = await self.state.container("budgets")
        try:
            results = iter(await container.execute_item_batch(
                [("patch", (c.window.id, o), {"filter_predicate": f"FROM c WHERE {c.check}"} if c.check else {})
                 for c, o in sent], partition_key=tenant, no_response=not body))
        except CosmosBatchOperationError as exc:
            if exc.status_code == 412 and exc.error_index is not None:
                raise CheckFailed(sent[exc.error_index][0].window) from None
            raise
        return [(dict(next(results).get("resourceBody") or {}) if body else {}) if o else None for o in ops]

    async def patch(self, tenant: str, window: Window, fields: dict[str, int],
                    check: str | None = None, *, body: bool = False) -> dict[str, Any] | None:
        """The window's document as patched if `body` (else empty: Cosmos sends none back), or None
        when there was nothing to patch."""
        ops = _incr(fields)
        if not ops:
            return None
        container = await self.state.container("budgets")
        return await container.patch_item(window.id, partition_key=tenant, patch_operations=ops,
                                          filter_predicate=f"FROM c WHERE {check}" if check else None,
                                          no_response=not body)

    async def usage(self, principal: Principal) -> dict[str, Any]:
        """`GET /api/v1/usage`: use of both windows, what live leases hold, and the limits."""
        report: dict[str, Any] = {"tenant": principal.tenant}
        t = self.now().timestamp()
        for window in windows(principal.tenant, self.now(), principal.limits):
            doc = await self.state.find("budgets", principal.tenant, window.id) or {}
            report["daily" if window.kind == "day" else "monthly"] = window_report(doc, window, t, self.slot_s)
        return report

    async def _ensure(self, tenant: str, window: Window) -> None:
        if window.id in self._known:
            return
        container = await self.state.container("budgets")
        # Kept past the window's end for reporting; Cosmos removes it later (in Azure).
        ttl = 40 * 86400 if window.kind == "day" else 400 * 86400
        doc: dict[str, Any] = {"id": window.id, "tenant": tenant, "window": window.kind, "period": window.period,
                               "tokens_used": 0, "usd_used_micros": 0, "ttl": ttl}
        doc.update({f"l{i}": {"e": 0, "t": 0, "u": 0} for i in range(SLOTS)})
        with contextlib.suppress(CosmosResourceExistsError):
            await container.create_item(doc, no_response=True)
        self._known.add(window.id)
