"""The semantic cache on the real path: embeddings from the simulators over HTTP, entries in the
Cosmos emulator, candidates from the bounded scan (the emulator has no vector search)."""

from __future__ import annotations

import time
import uuid

import httpx

from shared.composition import Container
from shared.core.models import ChatMessage, Usage
from shared.core.settings import Settings
from shared.core.values import Completion
from shared.state.semantic_cache import SemanticCache, SemanticCacheSettings, cache_key, vector_index
from shared.upstream.embeddings import EndpointEmbedder, embedding_endpoints

MODEL = "gpt-4o-mini"
ANSWER = Completion("Open Settings, then Security, then Reset password.", "stop", "simulator-chat",
                    Usage(prompt_tokens=14, completion_tokens=9, total_tokens=23), "primary")


def user(text: str, system: str | None = None) -> list[ChatMessage]:
    head = [ChatMessage(role="system", content=system)] if system else []
    return [*head, ChatMessage(role="user", content=text)]


def tenant() -> str:
    return f"sc-{uuid.uuid4().hex[:10]}"


async def semantic_cache(container: Container, settings: Settings, **overrides: object) -> SemanticCache:
    """As the composition root would build it for the emulator: scan mode, both simulator regions."""
    endpoints = embedding_endpoints(container.groups.endpoints(), timeout_s=5)
    config = SemanticCacheSettings(mode="scan", **overrides)  # type: ignore[arg-type]
    return SemanticCache(container.cosmos, EndpointEmbedder(endpoints), vector_index(config), config)


async def test_a_paraphrase_gets_the_stored_answer_through_the_simulators_embeddings(
        container: Container, stack_settings: Settings, sim: httpx.AsyncClient) -> None:
    cache, who, now = await semantic_cache(container, stack_settings), tenant(), time.time()
    await cache.store(who, MODEL, user("How do I reset my password?"), ANSWER, ttl_s=300, now=now)
    assert await cache.lookup(who, MODEL, user("How can I reset my password?"), now=now + 1) == ANSWER
    assert (await sim.get("/_sim/stats")).json()["requests"] == 2  # one embedding per prompt, none twice


async def test_tenant_b_never_gets_tenant_as_entry(container: Container, stack_settings: Settings) -> None:
    cache, a, b, now = await semantic_cache(container, stack_settings), tenant(), tenant(), time.time()
    await cache.store(a, MODEL, user("How do I reset my password?"), ANSWER, ttl_s=300, now=now)
    assert await cache.lookup(b, MODEL, user("How do I reset my password?"), now=now) is None
    assert await cache.lookup(a, MODEL, user("How do I reset my password?"), now=now) == ANSWER


async def test_a_different_system_prompt_or_model_never_hits(container: Container, stack_settings: Settings) -> None:
    cache, who, now = await semantic_cache(container, stack_settings), tenant(), time.time()
    question = "What is the capital of France?"
    await cache.store(who, MODEL, user(question, system="Answer in one word."), ANSWER, ttl_s=300, now=now)
    assert await cache.lookup(who, MODEL, user(question, system="Answer in French."), now=now) is None
    assert await cache.lookup(who, MODEL, user(question), now=now) is None
    assert await cache.lookup(who, "gpt-4o", user(question, system="Answer in one word."), now=now) is None
    assert await cache.lookup(who, MODEL, user(question, system="Answer in one word."), now=now) == ANSWER


async def test_an_expired_entry_never_hits_though_the_emulator_keeps_it(
        container: Container, stack_settings: Settings) -> None:
    cache, who, now = await semantic_cache(container, stack_settings), tenant(), time.time()
    await cache.store(who, MODEL, user("How do I cancel my subscription?"), ANSWER, ttl_s=60, now=now)
    assert await cache.lookup(who, MODEL, user("How can I cancel my subscription?"), now=now + 61) is None
    stored = [d async for d in (await container.cosmos.container("cache")).query_items(
        "SELECT * FROM c WHERE c.tenant = @t", parameters=[{"name": "@t", "value": who}], partition_key=who)]
    assert len(stored) == 1 and stored[0]["ttl"] == 60  # Cosmos in Azure would have deleted it


async def test_spain_does_not_get_frances_answer(container: Container, stack_settings: Settings) -> None:
    cache, who, now = await semantic_cache(container, stack_settings), tenant(), time.time()
    await cache.store(who, MODEL, user("What is the capital of France?"), ANSWER, ttl_s=300, now=now)
    assert await cache.lookup(who, MODEL, user("What is the capital of Spain?"), now=now) is None
    assert await cache.lookup(who, MODEL, user("What's the capital of France?"), now=now) == ANSWER


async def test_a_multi_turn_request_bypasses_the_cache(container: Container, stack_settings: Settings,
                                                       sim: httpx.AsyncClient) -> None:
    cache, who, now = await semantic_cache(container, stack_settings), tenant(), time.time()
    turns = [*user("What is the capital of France?"), ChatMessage(role="assistant", content="Paris."),
             ChatMessage(role="user", content="And its population?")]
    await cache.store(who, MODEL, turns, ANSWER, ttl_s=300, now=now)
    assert await cache.lookup(who, MODEL, turns, now=now) is None
    assert (await sim.get("/_sim/stats")).json()["requests"] == 0


async def test_an_incomplete_answer_is_never_stored(container: Container, stack_settings: Settings) -> None:
    cache, who, now = await semantic_cache(container, stack_settings), tenant(), time.time()
    cut = Completion("Open Settings, then", "length", "simulator-chat", Usage(), "primary")
    await cache.store(who, MODEL, user("How do I reset my password?"), cut, ttl_s=300, now=now)
    assert await cache.lookup(who, MODEL, user("How do I reset my password?"), now=now) is None


async def test_with_both_embedding_regions_down_a_lookup_is_a_miss_not_an_error(
        container: Container, stack_settings: Settings, sims: dict[str, httpx.AsyncClient]) -> None:
    cache, who, now = await semantic_cache(container, stack_settings), tenant(), time.time()
    await cache.store(who, MODEL, user("How do I reset my password?"), ANSWER, ttl_s=300, now=now)
    for sim in sims.values():
        await sim.post("/_sim/faults", json={"status": 503, "rate": 1.0})
    fresh = await semantic_cache(container, stack_settings)  # no vector remembered from the store
    assert await fresh.lookup(who, MODEL, user("How can I reset my password?"), now=now) is None
    await fresh.store(who, MODEL, user("How do I change my email?"), ANSWER, ttl_s=300, now=now)


async def test_the_primary_embedding_region_down_fails_over_to_the_secondary(
        container: Container, stack_settings: Settings, sims: dict[str, httpx.AsyncClient]) -> None:
    cache, who, now = await semantic_cache(container, stack_settings), tenant(), time.time()
    await cache.store(who, MODEL, user("How do I export my data to CSV?"), ANSWER, ttl_s=300, now=now)
    await sims["primary"].post("/_sim/faults", json={"status": 503, "rate": 1.0})
    fresh = await semantic_cache(container, stack_settings)
    assert await fresh.lookup(who, MODEL, user("How can I export my data to CSV?"), now=now) == ANSWER
    assert (await sims["secondary"].get("/_sim/stats")).json()["requests"] == 1


async def test_the_scan_is_bounded_to_the_newest_entries_of_the_scope(
        container: Container, stack_settings: Settings) -> None:
    cache, who, now = await semantic_cache(container, stack_settings, scan_limit=3), tenant(), time.time()
    await cache.store(who, MODEL, user("How do I reset my password?"), ANSWER, ttl_s=300, now=now)
    for i, topic in enumerate(["invoices", "refunds", "shipping"]):
        await cache.store(who, MODEL, user(f"Where can I read about {topic}?"), ANSWER, ttl_s=300, now=now + 1 + i)
    # Entries of another scope do not push the password answer out of this scope's newest three.
    await cache.store(who, MODEL, user("Where can I read about taxes?", system="Be brief."), ANSWER, ttl_s=300,
                      now=now + 9)
    assert await cache.lookup(who, MODEL, user("How can I reset my password?"), now=now + 10) is None
    assert await cache.lookup(who, MODEL, user("Where can I read about refunds?"), now=now + 10) == ANSWER


async def test_the_stored_document_is_tenant_partitioned_and_keyed_apart_from_the_exact_cache(
        container: Container, stack_settings: Settings) -> None:
    cache, who, now = await semantic_cache(container, stack_settings), tenant(), time.time()
    messages = user("How do I reset my password?", system="You are a support agent.")
    await cache.store(who, MODEL, messages, ANSWER, ttl_s=300, now=now)
    [doc] = [d async for d in (await container.cosmos.container("cache")).query_items(
        "SELECT * FROM c WHERE c.tenant = @t", parameters=[{"name": "@t", "value": who}], partition_key=who)]
    assert doc["id"].startswith("s:") and doc["kind"] == "semantic" and doc["tenant"] == who
    assert doc["scope"] == cache_key(MODEL, messages).scope  # type: ignore[union-attr]
    assert doc["model"] == MODEL and doc["prompt"] == "How do I reset my password?"
    assert len(doc["embedding"]) == 256 and doc["expires_at"] == now + 300 and doc["ttl"] == 300
    assert doc["completion"]["finish_reason"] == "stop" and doc["completion"]["usage"]["total_tokens"] == 23
