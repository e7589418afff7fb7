"""Requests, cache hits and refusals per tenant and minute, for the console's "last hour" (docs/admin.md).

Counted in memory and written at most every FLUSH_S per instance, one `incr` patch per tenant and
hour, to a document `{tenant}:activity:{YYYY-MM-DDTHH}` of `budgets` with one field per minute and
count (`r07`, `h07`, `x07`). Off the request path; counts not yet written when a process dies are
lost, which a console's rate may afford (a budget never relies on them).
"""

from __future__ import annotations

import contextlib
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from azure.cosmos.exceptions import CosmosResourceExistsError

from shared.core.background import spawn
from shared.state.cosmos import CosmosState

log = logging.getLogger(__name__)
FLUSH_S = 5.0
MAX_OPS = 10  # Cosmos takes at most 10 operations in one patch
COUNTS = (("r", "requests"), ("h", "cache_hits"), ("x", "refusals"))


def _hour_id(tenant: str, at: datetime) -> str:
    return f"{tenant}:activity:{at:%Y-%m-%dT%H}"


class CosmosActivity:
    def __init__(self, state: CosmosState, wall: Callable[[], float], sleep: Callable[[float], Awaitable[None]],
                 flush_s: float = FLUSH_S) -> None:
        self._state = state
        self._wall = wall
        self._sleep = sleep
        self._flush_s = flush_s
        self._pending: dict[tuple[str, int], list[int]] = defaultdict(lambda: [0, 0, 0])  # (tenant, minute)
        self._flushing = False
        self._known: set[str] = set()

    def count(self, tenant: str, *, hit: bool = False, refused: bool = False) -> None:
        """One request of `tenant` ended: answered from the cache, refused, or neither. Called on
        every request, so it adds to a minute's counts; documents and fields are named at the flush."""
        counts = self._pending[(tenant, int(self._wall() // 60))]
        counts[0] += 1
        counts[1] += hit
        counts[2] += refused
        if not self._flushing:
            self._flushing = True
            spawn(self._flush_later())

    async def _flush_later(self) -> None:
        await self._sleep(self._flush_s)
        pending, self._pending = self._pending, defaultdict(lambda: [0, 0, 0])
        self._flushing = False
        documents: dict[tuple[str, str], dict[str, int]] = defaultdict(dict)
        for (tenant, minute), counts in pending.items():
            at = datetime.fromtimestamp(minute * 60, UTC)
            fields = documents[(tenant, _hour_id(tenant, at))]
            for (prefix, _), count in zip(COUNTS, counts, strict=True):
                if count:
                    fields[f"{prefix}{at:%M}"] = count
        for (tenant, doc_id), fields in documents.items():
            try:
                await self._write(tenant, doc_id, fields)
            except Exception as exc:  # noqa: BLE001  a console count is not worth a failed request
                log.warning("activity counts not written: %s", type(exc).__name__)

    async def _write(self, tenant: str, doc_id: str, fields: dict[str, int]) -> None:
        container = await self._state.container("budgets")
        if doc_id not in self._known:
            with contextlib.suppress(CosmosResourceExistsError):
                await container.create_item({"id": doc_id, "tenant": tenant, "ttl": 2 * 86400}, no_response=True)
            if len(self._known) > 10_000:
                self._known.clear()
            self._known.add(doc_id)
        ops: list[dict[str, Any]] = [{"op": "incr", "path": f"/{name}", "value": value}
                                     for name, value in fields.items()]
        for i in range(0, len(ops), MAX_OPS):
            await container.patch_item(doc_id, partition_key=tenant, patch_operations=ops[i:i + MAX_OPS],
                                       no_response=True)

    async def last_hour(self, tenant: str) -> dict[str, int]:
        """The tenant's counts of the minutes that overlap the last 60 (so 60 to 61 minutes of them,
        this one included), as written so far."""
        now = datetime.fromtimestamp(self._wall(), UTC)
        earlier = now - timedelta(hours=1)
        docs = [await self._state.find("budgets", tenant, _hour_id(tenant, at)) or {} for at in (earlier, now)]
        totals = dict.fromkeys((name for _, name in COUNTS), 0)
        for doc, hour in zip(docs, (earlier, now), strict=True):
            for minute in range(60):
                at = hour.replace(minute=minute, second=0, microsecond=0)
                if earlier < at + timedelta(minutes=1) and at <= now:
                    for prefix, name in COUNTS:
                        totals[name] += int(doc.get(f"{prefix}{minute:02d}") or 0)
        return totals
