"""Fixtures for the OpenAI-compatible e2e tests: an app instance with tenants of their own, the
real SDK clients (sync and async, OpenAI and Azure), and the check that every test's tenant was
charged exactly what the simulators billed."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionFunctionToolParam

from shared.core.settings import hash_api_key
from tools.localenv import LocalStack

FID_KEY = "fidelity-key"  # cache off: every call reaches the simulator, nothing embeds
CACHED_KEY = "fidelity-cached-key"  # cache on (exact and semantic)
SMALL_KEY = "fidelity-small-key"  # max_request_tokens 2000
TENANTS = json.dumps([
    {"tenant": "fid", "keys": [{"id": "fid", "sha256": hash_api_key(FID_KEY)}], "limits": {"cache_ttl_s": 0}},
    {"tenant": "fid-cached", "keys": [{"id": "fidc", "sha256": hash_api_key(CACHED_KEY)}]},
    {"tenant": "fid-small", "keys": [{"id": "fids", "sha256": hash_api_key(SMALL_KEY)}],
     "limits": {"cache_ttl_s": 0, "max_request_tokens": 2000}},
])
# Typed as the SDK's tool parameter, so the create() overloads accept them.
WEATHER: ChatCompletionFunctionToolParam = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "unit": {"enum": ["c", "f"]}},
                   "required": ["city", "unit"], "additionalProperties": False},
    "strict": True}}
TIDES: ChatCompletionFunctionToolParam = {"type": "function", "function": {
    "name": "get_tides", "description": "Tide table for a harbour",
    "parameters": {"type": "object", "properties": {"harbour": {"type": "string"}}, "required": ["harbour"]}}}


@pytest.fixture(scope="session")
def oai_app(stack: LocalStack) -> Iterator[str]:
    with stack.app_on_free_port("oai-fidelity", {"TENANTS": TENANTS}) as url:
        yield url


def _sims(stack: LocalStack, method: str, path: str) -> list[httpx.Response]:
    return [httpx.request(method, f"{stack.sim_url(r)}{path}") for r in ("primary", "secondary")]


def simulator_billed(stack: LocalStack) -> int:
    return sum(r.json()["prompt_tokens"] + r.json()["completion_tokens"] for r in _sims(stack, "GET", "/_sim/stats"))


def tokens_used(app: str, key: str) -> int:
    day = httpx.get(f"{app}/api/v1/usage", headers={"x-api-key": key}, timeout=30).json()["daily"]
    assert day["tokens_reserved"] == 0, "every reservation is settled when the answer has been read"
    return int(day["tokens_used"])


class Ledger:
    """What the simulators billed and what the tenant was charged, since the test began."""

    def __init__(self, stack: LocalStack, app: str, key: str) -> None:
        self.stack, self.app, self.key = stack, app, key
        self.billed0, self.used0 = simulator_billed(stack), tokens_used(app, key)

    def deltas(self) -> tuple[int, int]:
        return simulator_billed(self.stack) - self.billed0, tokens_used(self.app, self.key) - self.used0


@pytest.fixture
def ledger(stack: LocalStack, oai_app: str) -> Iterator[Ledger]:
    """Asserted after the test: the tenant's usage equals what the simulators billed."""
    for response in _sims(stack, "DELETE", "/_sim/faults"):
        response.raise_for_status()
    book = Ledger(stack, oai_app, FID_KEY)
    yield book
    billed, charged = book.deltas()
    assert billed > 0, "the test made billed calls"
    assert charged == billed, f"charged {charged} tokens, the simulators billed {billed}"


@pytest.fixture
def fid_oai(oai_app: str) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{oai_app}/api/v1", api_key=FID_KEY, max_retries=0) as client:
        yield client


@pytest.fixture
async def fid_aoai(oai_app: str) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(base_url=f"{oai_app}/api/v1", api_key=FID_KEY, max_retries=0) as client:
        yield client


@pytest.fixture
def fid_azure(oai_app: str) -> Iterator[openai.AzureOpenAI]:
    with openai.AzureOpenAI(azure_endpoint=f"{oai_app}/api", api_key=FID_KEY, api_version="2024-10-21",
                            max_retries=0) as client:
        yield client
