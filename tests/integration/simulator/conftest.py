"""A simulator process shared by the tests of a module, started the way a developer starts it."""

from __future__ import annotations

from collections.abc import Iterator

import bpe_openai
import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from tools.simulator.process import SimulatorProcess


@pytest.fixture(scope="module")
def simulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimulatorProcess]:
    # The log goes under pytest's temp dir, which keeps the last runs for reading after a failure.
    log = tmp_path_factory.mktemp("simulator") / "simulator.log"
    with SimulatorProcess("--region", "primary", "--seed", "7", log_path=log) as sim:
        yield sim


# gpt-4o-mini's tokenizer, straight from the package: usage must be what the real model bills.
O200K = bpe_openai.get_encoding("o200k_base")
ASK_WEATHER: list[ChatCompletionMessageParam] = [{"role": "user", "content": "What is the weather in Paris?"}]


def o200k(text: str) -> int:
    return len(O200K.encode(text))


@pytest.fixture
def control(simulator: SimulatorProcess) -> Iterator[httpx.Client]:
    """The /_sim control surface, with faults, counters and cached prefixes cleared before a test."""
    with httpx.Client(base_url=simulator.url, timeout=5) as client:
        client.delete("/_sim/faults")
        client.delete("/_sim/stats")
        client.delete("/_sim/prompt_cache")
        yield client


@pytest.fixture
def oai(simulator: SimulatorProcess) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{simulator.url}/v1", api_key="k", max_retries=0)


@pytest.fixture
def azure(simulator: SimulatorProcess) -> openai.AzureOpenAI:
    return openai.AzureOpenAI(azure_endpoint=simulator.url, api_key="k", api_version="2024-10-21", max_retries=0)


def billed(control: httpx.Client) -> tuple[int, int]:
    """What the simulator's stats say it billed: (prompt_tokens, completion_tokens)."""
    stats = control.get("/_sim/stats").json()
    return stats["prompt_tokens"], stats["completion_tokens"]
