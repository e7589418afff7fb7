"""The gateway as shared/composition.py wires it, with the provider behind a mock transport.

Real: the Gateway and OpenAIPath, the stages, the resilience policy (pool, breakers, retry
budget) on a clock that moves instead of sleeping, the pass-through's ModelWire, Semantic Kernel's
engine as LazyEngine builds it (its SDK client over the wire's transport), the semantic cache's
EndpointEmbedder and the job runner.
In memory: the budget ledger, the cache's store, the rate limiter and the job store (their Cosmos
implementations are covered by the integration tests).
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field

import httpx2

from shared.core.metering import current_meter
from shared.core.settings import EndpointConfig
from shared.core.values import Completion
from shared.identity.auth import Principal
from shared.identity.secrets import LocalSecrets
from shared.jobs.service import JobService
from shared.pipeline.gateway import Gateway
from shared.pipeline.openai_path import OpenAIPath
from shared.pipeline.responses import ResponsesApi
from shared.state.cache import CacheKey
from shared.state.responses import ResponseRecord
from shared.upstream.embeddings import EmbeddingEndpoint, EndpointEmbedder
from shared.upstream.endpoints import Endpoint, embedding_endpoint_name
from shared.upstream.engine import LazyEngine
from shared.upstream.groups import ModelGroups
from shared.upstream.resilience.breaker import BreakerSettings
from shared.upstream.resilience.policy import ResiliencePolicy, RetrySettings
from shared.upstream.resilience.pool import EndpointPool
from shared.upstream.resilience.retry_budget import RetryBudget
from shared.upstream.spans import ATTEMPT_SPANS
from shared.upstream.wire import ModelWire
from tests.unit.pipeline.provider import MODEL, Provider
from tests.unit.resilience.helpers import FakeClock
from tests.unit.shared.fakes import CountingLimiter, FakeBudget, FakeCache
from tests.unit.shared.test_jobs import FakeQueue, MemoryJobStore

EMBEDDING = "text-embedding-3-small"
ENDPOINT = "primary"
CONFIG_URL = "http://model.test/v1"


@dataclass
class SemanticTier(FakeCache):
    """FakeCache with a semantic tier whose lookups embed through the real EndpointEmbedder (the
    provider's /embeddings), so the meter is told the embedding's usage as in production. A hit
    is an answer stored under the same request (the vector search itself is Cosmos's)."""

    embedder: EndpointEmbedder | None = None
    exact_tier: bool = False

    def may_embed(self, principal: Principal, key: CacheKey) -> bool:
        # As ResponseCache: only a request with a semantic view (a plain single-turn chat) embeds.
        return self.reads(principal) and key.semantic is not None

    async def similar(self, principal: Principal, model: str, key: CacheKey) -> Completion | None:
        # Admission embeds under the request's meter: the embedder tells it the usage it reports.
        assert self.embedder is not None and current_meter() is not None
        await self.embedder.embed([json.dumps(key.request())])
        return self.similar_entries.get(key.exact_id)

    async def store(self, principal: Principal, model: str, key: CacheKey, completion: Completion) -> None:
        self.similar_entries[key.exact_id] = completion


@dataclass
class MemoryRecords:
    """The Responses API's records, in memory (CosmosResponseRecords is the e2e tests')."""

    records: dict[tuple[str, str], ResponseRecord] = field(default_factory=dict)
    origins: dict[tuple[str, str], str] = field(default_factory=dict)

    async def get(self, tenant: str, response_id: str) -> ResponseRecord | None:
        return self.records.get((tenant, response_id))

    async def put(self, record: ResponseRecord) -> None:
        self.records[(record.tenant, record.id)] = record

    async def delete(self, tenant: str, response_id: str) -> None:
        self.records.pop((tenant, response_id), None)

    async def put_origin(self, tenant: str, item_id: str, endpoint: str) -> None:
        self.origins[(tenant, item_id)] = endpoint

    async def origin_of(self, tenant: str, item_id: str) -> str | None:
        return self.origins.get((tenant, item_id))


@dataclass
class Rig:
    provider: Provider
    gateway: Gateway
    openai: OpenAIPath
    jobs: JobService
    budget: FakeBudget
    cache: FakeCache
    limiter: CountingLimiter
    job_store: MemoryJobStore
    queue: FakeQueue
    clients: list[httpx2.AsyncClient] = field(default_factory=list)
    engine: LazyEngine | None = None
    records: MemoryRecords = field(default_factory=MemoryRecords)

    @property
    def responses(self) -> ResponsesApi:
        return ResponsesApi(self.gateway, self.records)

    async def close(self) -> None:
        if self.engine is not None:
            await self.engine.close()  # the SDK client over the wire's transport
        for client in self.clients:
            await client.aclose()


def build_rig(provider: Provider, *, semantic: bool = False) -> Rig:
    config = EndpointConfig(name=ENDPOINT, kind="openai", endpoint=CONFIG_URL, model=MODEL,
                            embedding_deployment=EMBEDDING)
    transport = provider.transport()
    http = httpx2.AsyncClient(transport=transport)
    wire = ModelWire(config, http, transport=transport, auth_name="authorization", auth=None, static_auth="Bearer k")
    clock = FakeClock()
    names = [ENDPOINT, embedding_endpoint_name(ENDPOINT)]
    pool = EndpointPool(names, BreakerSettings(), clock, random.Random(7), events=ATTEMPT_SPANS)
    policy = ResiliencePolicy(pool, RetryBudget(clock), RetrySettings(), clock, rng=random.Random(7),
                              events=ATTEMPT_SPANS)
    groups = ModelGroups([Endpoint(config, wire)], policy)
    # The real lazy engine: shared/upstream/kernel.build_engine builds Semantic Kernel's SDK client
    # over the endpoint wire's transport, so the native operations reach the same provider.
    engine = LazyEngine(groups, credential=None, secrets=LocalSecrets({}), timeout_s=20)
    budget, limiter = FakeBudget(), CountingLimiter()
    cache: FakeCache = FakeCache()
    if semantic:
        cache = SemanticTier(embedder=EndpointEmbedder([EmbeddingEndpoint(ENDPOINT, 0, EMBEDDING, wire)],
                                                       clock=clock))
    gateway = Gateway(engine, limiter, budget, cache)
    store, queue = MemoryJobStore(), FakeQueue()
    jobs = JobService(store, gateway, lease_s=60, queue=queue)
    return Rig(provider, gateway, OpenAIPath(gateway), jobs, budget, cache, limiter, store, queue, [http], engine)


def reserved(rig: Rig) -> int:
    """The worst case the request reserved (prompt as counted + completion cap)."""
    return rig.budget.estimates[0].tokens
