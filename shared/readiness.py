"""Readiness: dependency probes refreshed at most once per period, every call served from the last result."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import httpx2

    from shared.state.cosmos import CosmosState  # the Cosmos SDK: loaded with the container, not by the index

log = logging.getLogger(__name__)
Probe = Callable[[], Awaitable[dict[str, str]]]


class Readiness:
    """Probes run only when a caller asks and the last result is older than `period_s`, one at a
    time: however many calls arrive, the dependencies see at most one probe per period. Only the
    first call ever waits for a probe; later ones get the last result while a refresh runs.

    Nothing probes on its own between calls, so an idle app costs its dependencies nothing.
    """

    def __init__(self, probe: Probe, period_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._probe = probe
        self._period_s = period_s
        self._clock = clock
        self._result: dict[str, str] | None = None
        self._finished_at = 0.0
        self._refresh: asyncio.Task[None] | None = None

    async def checks(self) -> dict[str, str]:
        stale = self._result is None or self._clock() - self._finished_at >= self._period_s
        if stale and self._refresh is None:
            self._refresh = asyncio.create_task(self._run())
        if self._result is None and self._refresh is not None:
            await asyncio.shield(self._refresh)  # a caller that leaves does not cancel the probe
        assert self._result is not None  # noqa: S101  _run always sets it
        return dict(self._result)

    async def _run(self) -> None:
        try:
            self._result = await self._probe()
        except Exception as exc:  # noqa: BLE001  the probe guards each check; this is the last resort
            log.error("readiness probe failed: %s", type(exc).__name__)
            self._result = {"readiness": "failed"}
        finally:
            # Measured from the end, so a slow probe never runs back to back with the next one.
            self._finished_at = self._clock()
            self._refresh = None


async def probe_dependencies(cosmos: CosmosState, key_vault: bool, endpoints: Mapping[str, str],
                             client: httpx2.AsyncClient) -> dict[str, str]:
    """Each dependency's state as a word: never an exception's text or a secret. The model
    endpoints are probed concurrently over the one shared `client`."""
    checks: dict[str, str] = {}
    try:
        await asyncio.wait_for(cosmos.ping(), timeout=5)
        checks["cosmos"] = "ok"
    except Exception as exc:  # noqa: BLE001  any failure means not ready; the type is logged
        log.warning("readiness: cosmos failed: %s", type(exc).__name__)
        checks["cosmos"] = "unavailable"
    checks["key_vault"] = "ok" if key_vault else "not_configured"
    names = list(endpoints)
    states = await asyncio.gather(*(_reachable(client, endpoints[name]) for name in names))
    checks.update({f"model:{name}": state for name, state in zip(names, states, strict=True)})
    return checks


async def _reachable(client: httpx2.AsyncClient, url: str) -> str:
    """Any HTTP answer means the endpoint is reachable (auth is the model call's business)."""
    import httpx2  # noqa: PLC0415  loaded with the container, which made `client`

    try:
        await client.get(url)
        return "ok"
    except httpx2.HTTPError:
        return "unreachable"


def with_breakers(checks: dict[str, str], breakers: Mapping[str, str]) -> dict[str, str]:
    """Breaker states are read live (they are in memory, no dependency sees the call): an open
    breaker means recent calls failed, whatever the last probe of the address said."""
    result = dict(checks)
    for name, state in breakers.items():
        if state == "open" and f"model:{name}" in result:
            result[f"model:{name}"] = "circuit_open"
        result[f"breaker:{name}"] = state
    return result


def verdict(checks: Mapping[str, str]) -> list[str]:
    """The failing checks; empty when ready. Ready while Cosmos answers and at least one model
    endpoint can take calls; breaker states are reported, not judged (half-open still serves)."""
    failing = sorted(name for name, state in checks.items()
                     if not name.startswith("breaker:") and state not in ("ok", "not_configured"))
    model_up = any(state == "ok" for name, state in checks.items() if name.startswith("model:"))
    if not failing or (model_up and all(name.startswith("model:") for name in failing)):
        return []
    return failing
