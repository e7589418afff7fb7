"""An in-process container wired to the session's emulators and simulators."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from shared.config import Settings
from shared.container import Container, build_container
from tools.localenv import LocalStack


@pytest.fixture(scope="session")
async def container(stack_settings: Settings) -> AsyncIterator[Container]:
    built = await build_container(stack_settings)
    yield built
    await built.close()


@pytest.fixture
async def sim(stack: LocalStack) -> AsyncIterator[httpx.AsyncClient]:
    """The primary simulator's control surface, reset before and after each test."""
    async with httpx.AsyncClient(base_url=stack.sim_url("primary"), timeout=10) as client:
        await client.delete("/_sim/faults")
        await client.delete("/_sim/stats")
        yield client
        await client.delete("/_sim/faults")
