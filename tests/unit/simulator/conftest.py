"""Fixtures of the in-process simulator tests: the app over httpx's ASGI transport, with a recorded sleep."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import bpe_openai
import httpx
import pytest

from tools.simulator import Simulator, SimulatorConfig, create_app

# What gpt-4o-mini bills in; usage must match it exactly, whatever the simulator does inside.
O200K = bpe_openai.get_encoding("o200k_base")

KEY = {"api-key": "any"}
QUESTION = "Tell me about the quarterly numbers."
CHAT: dict[str, Any] = {"model": "gpt-4o", "messages": [{"role": "user", "content": QUESTION}]}


class RecordedSleep:
    """Stands in for asyncio.sleep: answers at once and remembers every wait it was asked for."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.fixture
def sleep() -> RecordedSleep:
    return RecordedSleep()


@pytest.fixture
def sim(sleep: RecordedSleep) -> Simulator:
    config = SimulatorConfig(region="west", ms_per_token=2.0, base_latency_ms=20.0, embedding_dims=32)
    return Simulator(config, sleep=sleep)


@pytest.fixture
async def client(sim: Simulator) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(simulator=sim))
    async with httpx.AsyncClient(transport=transport, base_url="http://sim") as client:
        yield client


def o200k(text: str) -> int:
    return len(O200K.encode(text))


def sse_payloads(text: str) -> list[Any]:
    events = [line.removeprefix("data: ") for line in text.split("\n\n") if line]
    assert events[-1] == "[DONE]"
    return [json.loads(event) for event in events[:-1]]
