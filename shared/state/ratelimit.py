"""Rate limits (RPM and TPM per key) in Cosmos `ratelimits`, shared by every instance.

Fixed windows of RATE_WINDOW_S (a minute unless a test shortens it), one document per key and
window. Admission is one conditional `incr`
patch whose filter predicate checks both limits on the server, so instances never race past
them. TPM counts the request's worst case (prompt + max_tokens) at admission.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Protocol

from azure.cosmos.exceptions import CosmosAccessConditionFailedError, CosmosResourceExistsError

from shared.core.background import Ahead
from shared.core.errors import RateLimited
from shared.identity.auth import Principal
from shared.state.cosmos import CosmosState

if TYPE_CHECKING:
    from azure.cosmos.aio import ContainerProxy


@dataclass(frozen=True)
class Allowance:
    """What the key has left in this window (None: no such limit)."""

    remaining_requests: int | None = None
    remaining_tokens: int | None = None

    def headers(self) -> dict[str, str]:
        headers = {}
        if self.remaining_requests is not None:
            headers["x-ratelimit-remaining-requests"] = str(max(0, self.remaining_requests))
        if self.remaining_tokens is not None:
            headers["x-ratelimit-remaining-tokens"] = str(max(0, self.remaining_tokens))
        return headers


class RateLimiter(Protocol):
    async def admit(self, principal: Principal, estimated_tokens: int) -> Allowance:
        """Raise TooManyRequests (with Retry-After) when the key is over its RPM or TPM."""


class CosmosRateLimiter:
    def __init__(self, state: CosmosState, now: Callable[[], datetime] = lambda: datetime.now(UTC),
                 window_s: int = 60) -> None:
        self.state = state
        self.now = now
        self.window = timedelta(seconds=window_s)  # divides a minute (the settings check it)
        self._created: set[str] = set()  # this window's documents this process knows exist
        self._ahead = Ahead()  # next windows' documents being created ahead

    async def admit(self, principal: Principal, estimated_tokens: int) -> Allowance:
        rpm, tpm = principal.limits.rpm, principal.limits.tpm
        if rpm is None and tpm is None:
            return Allowance()
        now = self.now()
        start = self._start(now)
        doc_id = _window_id(principal.rate_key, start)
        container = await self.state.container("ratelimits")
        if doc_id not in self._created:
            await self._create(container, principal.rate_key, doc_id)
        # The next window's document is created ahead, off the critical path: admission at a
        # window boundary stays one round trip.
        ahead = _window_id(principal.rate_key, start + self.window)
        if ahead not in self._created:
            self._ahead.start(ahead, self._create, container, principal.rate_key, ahead)
        checks = []
        if rpm is not None:
            checks.append(f"c.requests <= {rpm - 1}")
        if tpm is not None:
            checks.append(f"c.tokens <= {tpm - estimated_tokens}")
        try:
            doc = await container.patch_item(
                doc_id, partition_key=principal.rate_key,
                patch_operations=[{"op": "incr", "path": "/requests", "value": 1},
                                  {"op": "incr", "path": "/tokens", "value": estimated_tokens}],
                filter_predicate="FROM c WHERE " + " AND ".join(checks),
            )  # with the document back: its counts are the remaining-* headers
        except CosmosAccessConditionFailedError:
            raise self._limited(principal, now) from None
        return Allowance(
            remaining_requests=None if rpm is None else rpm - int(doc["requests"]),
            remaining_tokens=None if tpm is None else tpm - int(doc["tokens"]),
        )

    async def over(self, principal: Principal) -> RateLimited | None:
        """Read-only, nothing counted: the refusal when the key has used its whole RPM or TPM this window."""
        rpm, tpm = principal.limits.rpm, principal.limits.tpm
        if rpm is None and tpm is None:
            return None
        now = self.now()
        doc_id = _window_id(principal.rate_key, self._start(now))
        doc = await self.state.find("ratelimits", principal.rate_key, doc_id) or {}
        if (rpm is not None and int(doc.get("requests", 0)) >= rpm) or \
                (tpm is not None and int(doc.get("tokens", 0)) >= tpm):
            return self._limited(principal, now)
        return None

    def _limited(self, principal: Principal, now: datetime) -> RateLimited:
        rpm, tpm = principal.limits.rpm, principal.limits.tpm
        wait = (self._start(now) + self.window - now).total_seconds()
        exhausted = Allowance(None if rpm is None else 0, None if tpm is None else 0)
        return RateLimited("This API key is over its per-minute request or token limit.",
                           retry_after_s=max(1.0, wait), headers=exhausted.headers())

    def _start(self, now: datetime) -> datetime:
        minute = now.replace(second=0, microsecond=0)
        return minute + self.window * ((now - minute) // self.window)

    async def _create(self, container: ContainerProxy, key: str, doc_id: str) -> None:
        # A window lives 3 minutes: created up to one ahead, it still outlives itself.
        with contextlib.suppress(CosmosResourceExistsError):
            await container.create_item({"id": doc_id, "key": key, "requests": 0, "tokens": 0, "ttl": 180},
                                        no_response=True)
        if len(self._created) > 10_000:
            self._created.clear()  # past minutes are never asked for again; this bounds memory
        self._created.add(doc_id)


def _window_id(key: str, start: datetime) -> str:
    """A minute's window keeps the id it had before windows could be shorter."""
    return f"{key}:{start:%Y%m%d%H%M}" + (f"{start:%S}" if start.second else "")
