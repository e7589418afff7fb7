"""The matrix's rigs: a fresh provider and gateway per test, left with no call hanging."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from shared.core.background import drain
from tests.unit.pipeline.provider import Provider
from tests.unit.pipeline.rig import Rig, build_rig


async def _rig(*, semantic: bool) -> AsyncIterator[Rig]:
    built = build_rig(Provider(), semantic=semantic)
    yield built
    built.provider.gate.set()  # a test that failed half-way leaves no call hanging in the shared loop
    await drain(5)
    await built.close()


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    async for built in _rig(semantic=False):
        yield built


@pytest.fixture
async def semantic() -> AsyncIterator[Rig]:
    """A tenant whose cache has a semantic tier: each lookup embeds through the provider."""
    async for built in _rig(semantic=True):
        yield built
