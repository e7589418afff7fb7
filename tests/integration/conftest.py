"""An in-process container wired to the session's emulators and simulators."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from shared.composition import Container, build_container
from shared.core.background import detached, drain
from shared.core.clock import SystemClock
from shared.core.settings import Settings
from shared.upstream.resilience.pool import EndpointPool
from tools.localenv import LocalStack


class HeldTimers(SystemClock):
    """The system's time, whose timers of a second or more (the console counts' 5 s flush delay)
    wait until the test fires them: a test that counts what a request sent waits for its detached
    work (`settle`) without waiting out those timers, and no timer fires in the middle of a request."""

    def __init__(self) -> None:
        self._fire = asyncio.Event()

    async def sleep(self, seconds: float) -> None:
        if seconds < 1:
            await asyncio.sleep(seconds)
        else:
            await self._fire.wait()

    async def settle(self) -> None:
        """Wait (at most 10 s) until every piece of detached work has ended, firing the timers it
        sets meanwhile (a request's after-work sets the flush delay of its count)."""
        for _ in range(200):
            if not detached():
                return
            fired, self._fire = self._fire, asyncio.Event()
            fired.set()
            await drain(0.05)


@pytest.fixture(scope="session")
async def container(stack_settings: Settings) -> AsyncIterator[Container]:
    built = await build_container(stack_settings)
    yield built
    await built.close()


@pytest.fixture
async def sims(stack: LocalStack, container: Container) -> AsyncIterator[dict[str, httpx.AsyncClient]]:
    """Both simulators' control surfaces, and fresh breakers, reset before and after each test."""
    clients = {r: httpx.AsyncClient(base_url=stack.sim_url(r), timeout=10) for r in ("primary", "secondary")}
    reset_health(container)
    for client in clients.values():
        await client.delete("/_sim/faults")
        await client.delete("/_sim/stats")
    yield clients
    for client in clients.values():
        await client.delete("/_sim/faults")
        await client.aclose()
    reset_health(container)


@pytest.fixture
async def sim(sims: dict[str, httpx.AsyncClient]) -> httpx.AsyncClient:
    return sims["primary"]


def reset_health(container: Container) -> None:
    """Each test starts with closed breakers and no parked endpoint, as a fresh worker would."""
    policy = container.groups.policy
    policy.pool = EndpointPool(list(policy.pool.breakers), policy.pool.breakers["primary"].settings, policy.clock)
