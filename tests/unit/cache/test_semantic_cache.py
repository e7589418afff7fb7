"""The semantic cache's rules, over in-memory fakes: scope, single turn, expiry, veto, failures."""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import pytest
from azure.cosmos.exceptions import CosmosHttpResponseError

from shared.core.models import ChatMessage
from shared.state.semantic_cache import (
    SCAN_QUERY,
    VECTOR_QUERY,
    Candidate,
    CosmosVectorSearch,
    RecentEntriesScan,
    SemanticCache,
    SemanticCacheSettings,
    best_match,
    cache_key,
    vector_index,
)
from tests.unit.cache.fakes import ANSWER, DOWN, FakeContainer, FakeEmbedder, FakeState, user
from tools.simulator.embeddings import embed

NOW = 1_700_000_000.0
MODEL = "gpt-4o-mini"
PARIS = "What is the capital of France?"


def make(mode: str = "scan", **settings: Any) -> tuple[SemanticCache, FakeState, FakeEmbedder]:
    state, embedder = FakeState(), FakeEmbedder()
    config = SemanticCacheSettings(mode=mode, **settings)  # type: ignore[arg-type]
    return SemanticCache(state, embedder, vector_index(config), config), state, embedder  # type: ignore[arg-type]


@pytest.fixture(params=["scan", "vector"])
def mode(request: pytest.FixtureRequest) -> str:
    """Both indexes behind the one port must keep the same promises."""
    return str(request.param)


async def test_a_paraphrase_above_the_threshold_gets_the_stored_answer(mode: str) -> None:
    cache, _, _ = make(mode)
    await cache.store("acme", MODEL, user("How do I reset my password?"), ANSWER, ttl_s=60, now=NOW)
    assert await cache.lookup("acme", MODEL, user("How can I reset my password?"), now=NOW + 1) == ANSWER


async def test_another_tenant_never_gets_the_entry(mode: str) -> None:
    cache, state, _ = make(mode)
    await cache.store("acme", MODEL, user(PARIS), ANSWER, ttl_s=60, now=NOW)
    assert await cache.lookup("globex", MODEL, user(PARIS), now=NOW) is None
    assert all(pk == "globex" for _, params, pk in state.cache.queries if params["@tenant"] == "globex")


async def test_another_system_prompt_or_model_never_hits(mode: str) -> None:
    cache, _, _ = make(mode)
    await cache.store("acme", MODEL, user(PARIS, system="Answer in French."), ANSWER, ttl_s=60, now=NOW)
    assert await cache.lookup("acme", MODEL, user(PARIS, system="Answer in German."), now=NOW) is None
    assert await cache.lookup("acme", MODEL, user(PARIS), now=NOW) is None
    assert await cache.lookup("acme", "gpt-4o", user(PARIS, system="Answer in French."), now=NOW) is None
    assert await cache.lookup("acme", MODEL, user(PARIS, system="Answer in French."), now=NOW) == ANSWER


async def test_an_expired_entry_never_hits_even_if_the_store_still_returns_it(mode: str) -> None:
    cache, state, _ = make(mode)
    await cache.store("acme", MODEL, user(PARIS), ANSWER, ttl_s=60, now=NOW)
    assert await cache.lookup("acme", MODEL, user(PARIS), now=NOW + 61) is None
    # A store that ignores the expiry filter (as the emulator ignores ttl) still cannot serve it.
    state.cache.rows = [{**doc, "similarity": 1.0} for doc in state.cache.docs.values()]
    assert await cache.lookup("acme", MODEL, user(PARIS), now=NOW + 61) is None


async def test_the_veto_keeps_spain_from_getting_frances_answer(mode: str) -> None:
    cache, _, _ = make(mode)
    await cache.store("acme", MODEL, user(PARIS), ANSWER, ttl_s=60, now=NOW)
    assert await cache.lookup("acme", MODEL, user("What is the capital of Spain?"), now=NOW) is None


def chat(*turns: tuple[str, str]) -> list[ChatMessage]:
    return [ChatMessage(role=role, content=content) for role, content in turns]


@pytest.mark.parametrize("messages", [
    chat(("user", PARIS), ("assistant", "Paris."), ("user", "And of Spain?")),
    chat(("user", PARIS), ("user", PARIS)),
    chat(("system", "Be terse."), ("system", "Use French."), ("user", PARIS)),
    chat(("user", PARIS), ("system", "Be terse.")),
    chat(("assistant", "How can I help?"), ("user", PARIS)),
])
async def test_a_multi_turn_request_bypasses_without_an_embedding_call(messages: list[ChatMessage]) -> None:
    cache, state, embedder = make()
    await cache.store("acme", MODEL, messages, ANSWER, ttl_s=60, now=NOW)
    assert await cache.lookup("acme", MODEL, messages, now=NOW) is None
    assert embedder.calls == [] and state.cache.docs == {} and state.cache.queries == []
    assert cache_key(MODEL, messages) is None


@pytest.mark.parametrize("finish_reason", ["length", "content_filter", "tool_calls"])
async def test_an_incomplete_or_filtered_answer_is_never_stored(finish_reason: str) -> None:
    cache, state, embedder = make()
    await cache.store("acme", MODEL, user(PARIS), dataclasses.replace(ANSWER, finish_reason=finish_reason),
                      ttl_s=60, now=NOW)
    await cache.store("acme", MODEL, user(PARIS), dataclasses.replace(ANSWER, content=""), ttl_s=60, now=NOW)
    assert state.cache.docs == {} and embedder.calls == []


async def test_the_stored_document_has_the_agreed_shape() -> None:
    cache, state, _ = make()
    await cache.store("acme", MODEL, user(PARIS, system="Be terse."), ANSWER, ttl_s=90.5, now=NOW)
    [doc] = state.cache.docs.values()
    assert doc["id"].startswith("s:") and len(doc["id"]) == 2 + 64
    assert {k: doc[k] for k in ("kind", "tenant", "model", "prompt", "created_at", "expires_at", "ttl")} == {
        "kind": "semantic", "tenant": "acme", "model": MODEL, "prompt": PARIS, "created_at": NOW,
        "expires_at": NOW + 90.5, "ttl": 91}
    assert doc["scope"] == cache_key(MODEL, user(PARIS, system="Be terse.")).scope  # type: ignore[union-attr]
    assert doc["completion"] == {"content": ANSWER.content, "finish_reason": "stop", "model": "gpt-test-0613",
                                 "usage": {"prompt_tokens": 12, "completion_tokens": 7, "total_tokens": 19},
                                 "endpoint": "primary"}
    assert doc["embedding"] == embed(PARIS, 256)


async def test_storing_the_same_prompt_again_refreshes_one_entry_and_reuses_the_lookups_vector() -> None:
    cache, state, embedder = make()
    assert await cache.lookup("acme", MODEL, user(PARIS), now=NOW) is None
    await cache.store("acme", MODEL, user(PARIS), ANSWER, ttl_s=60, now=NOW)
    await cache.store("acme", MODEL, user(PARIS), ANSWER, ttl_s=60, now=NOW + 30)
    assert len(state.cache.docs) == 1 and next(iter(state.cache.docs.values()))["expires_at"] == NOW + 90
    assert len(embedder.calls) == 1  # the miss's embedding served both stores


async def test_an_answer_longer_than_the_callers_max_tokens_is_not_served() -> None:
    cache, _, _ = make()
    await cache.store("acme", MODEL, user(PARIS), ANSWER, ttl_s=60, now=NOW)  # 7 completion tokens
    assert await cache.lookup("acme", MODEL, user(PARIS), now=NOW, max_tokens=5) is None
    assert await cache.lookup("acme", MODEL, user(PARIS), now=NOW, max_tokens=7) == ANSWER


# --- failures are misses ----------------------------------------------------------------------------
async def test_an_embedding_failure_is_a_miss_and_a_skipped_store(caplog: pytest.LogCaptureFixture) -> None:
    cache, state, embedder = make()
    embedder.error = DOWN
    with caplog.at_level(logging.WARNING):
        assert await cache.lookup("acme", MODEL, user(PARIS), now=NOW) is None
        await cache.store("acme", MODEL, user(PARIS), ANSWER, ttl_s=60, now=NOW)
    assert state.cache.docs == {}
    assert "ServiceUnavailable" in caplog.text and DOWN.detail not in caplog.text  # the type only


async def test_a_cosmos_failure_is_a_miss_and_never_raises(caplog: pytest.LogCaptureFixture) -> None:
    cache, state, _ = make()
    state.cache.error = CosmosHttpResponseError(  # type: ignore[no-untyped-call]
        status_code=503, message="account acme-prod is throttled")
    with caplog.at_level(logging.WARNING):
        assert await cache.lookup("acme", MODEL, user(PARIS), now=NOW) is None
        await cache.store("acme", MODEL, user(PARIS), ANSWER, ttl_s=60, now=NOW)
    assert "acme-prod" not in caplog.text and "CosmosHttpResponseError" in caplog.text


async def test_a_slow_dependency_is_given_up_after_the_timeout() -> None:
    cache, state, _ = make(timeout_s=0.05)
    await cache.store("acme", MODEL, user(PARIS), ANSWER, ttl_s=60, now=NOW)
    # Another worker, same Cosmos, whose embedding endpoint stalls (no vector memoised for this prompt).
    config = SemanticCacheSettings(mode="scan", timeout_s=0.05)
    slow = FakeEmbedder(delay_s=5)
    other = SemanticCache(state, slow, vector_index(config), config)  # type: ignore[arg-type]
    stored = dict(state.cache.docs)
    # The stored entry would hit, but is not waited for: a miss; and a store is given up unwritten.
    assert await other.lookup("acme", MODEL, user(PARIS), now=NOW) is None
    await other.store("acme", MODEL, user("What is the capital of Italy?"), ANSWER, ttl_s=60, now=NOW)
    assert state.cache.docs == stored and len(slow.calls) == 2


# --- the two indexes behind the one port --------------------------------------------------------------
async def test_vector_search_sends_one_query_filtered_by_tenant_and_scope_in_the_tenants_partition() -> None:
    container = FakeContainer(rows=[])
    vector = [0.6, 0.8]
    await CosmosVectorSearch().nearest(container, tenant="acme", scope="s1", vector=vector, now=NOW, top_k=7)  # type: ignore[arg-type]
    [(query, params, partition_key)] = container.queries
    assert query == VECTOR_QUERY == (
        "SELECT TOP @top_k c.id, c.tenant, c.scope, c.prompt, c.completion, c.expires_at, "
        "VectorDistance(c.embedding, @vector) AS similarity FROM c "
        "WHERE c.tenant = @tenant AND c.kind = @kind AND c.scope = @scope AND c.expires_at > @now "
        "ORDER BY VectorDistance(c.embedding, @vector)")
    assert params == {"@tenant": "acme", "@kind": "semantic", "@scope": "s1", "@now": NOW, "@top_k": 7,
                      "@vector": vector}
    assert partition_key == "acme"


def row(prompt: str, similarity: float, **extra: Any) -> dict[str, Any]:
    completion = {"content": f"answer to {prompt}", "finish_reason": "stop", "model": "m",
                  "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}, "endpoint": "e"}
    return {"id": "s:" + prompt, "tenant": "acme", "scope": "s1", "prompt": prompt, "completion": completion,
            "expires_at": NOW + 60, "similarity": similarity, **extra}


async def test_vector_search_candidates_go_through_the_threshold_then_the_veto() -> None:
    container = FakeContainer(rows=[row("What is the capital of Spain?", 0.97),
                                    row("What's the capital city of France?", 0.91),
                                    row("What is the capital of France?", 0.88)])
    found = await CosmosVectorSearch().nearest(container, tenant="acme", scope="s1", vector=[1.0], now=NOW,  # type: ignore[arg-type]
                                               top_k=3)
    assert [c.similarity for c in found] == [0.97, 0.91, 0.88] and "similarity" not in found[0].doc
    match = best_match(PARIS, found, tenant="acme", scope="s1", threshold=0.85, now=NOW)
    # Spain is vetoed; "capital city" adds a content word; the exact rephrasing wins.
    assert match is not None and match.doc["prompt"] == "What is the capital of France?"
    assert best_match(PARIS, found, tenant="acme", scope="s1", threshold=0.90, now=NOW) is None


def test_best_match_ignores_rows_of_another_tenant_or_scope_and_expired_rows() -> None:
    candidates = [Candidate(0.99, row(PARIS, 0.99, tenant="globex")), Candidate(0.98, row(PARIS, 0.98, scope="s2")),
                  Candidate(0.97, row(PARIS, 0.97, expires_at=NOW)), Candidate(0.80, row(PARIS, 0.80))]
    match = best_match(PARIS, candidates, tenant="acme", scope="s1", threshold=0.7, now=NOW)
    assert match is candidates[3]
    assert best_match(PARIS, candidates, tenant="acme", scope="s1", threshold=0.81, now=NOW) is None


async def test_the_scan_reads_only_the_newest_entries_and_ranks_them_in_process() -> None:
    cache, state, _ = make(scan_limit=2)
    await cache.store("acme", MODEL, user(PARIS), ANSWER, ttl_s=600, now=NOW)
    await cache.store("acme", MODEL, user("How do I reset my password?"), ANSWER, ttl_s=600, now=NOW + 1)
    await cache.store("acme", MODEL, user("How do I cancel my plan?"), ANSWER, ttl_s=600, now=NOW + 2)
    assert await cache.lookup("acme", MODEL, user(PARIS), now=NOW + 3) is None  # beyond the newest two
    assert await cache.lookup("acme", MODEL, user("How can I reset my password?"), now=NOW + 3) == ANSWER
    query, params, partition_key = state.cache.queries[-1]
    assert query == SCAN_QUERY and params["@limit"] == 2 and partition_key == "acme"
    assert "ORDER BY c.created_at DESC" in query and "c.tenant = @tenant" in query


async def test_the_scan_returns_the_most_similar_first() -> None:
    container = FakeContainer()
    for i, text in enumerate(["reset my password now", "cancel my plan", "reset my password"]):
        container.docs[str(i)] = {"id": str(i), "tenant": "acme", "kind": "semantic", "scope": "s1", "prompt": text,
                                  "embedding": embed(text, 256), "created_at": NOW + i, "expires_at": NOW + 60}
    found = await RecentEntriesScan(limit=10).nearest(container, tenant="acme", scope="s1",  # type: ignore[arg-type]
                                                      vector=embed("reset my password", 256), now=NOW, top_k=2)
    assert [c.doc["prompt"] for c in found] == ["reset my password", "reset my password now"]
    assert found[0].similarity == pytest.approx(1.0) and "embedding" not in found[0].doc


@pytest.mark.parametrize("bad", [{"threshold": 1.5}, {"threshold": -2}, {"scan_limit": 0}, {"top_k": 0},
                                 {"mode": "fuzzy"}, {"timeout_s": 0}])
def test_a_bad_setting_fails_at_start_naming_it(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"SEMANTIC_CACHE|top_k|timeout_s"):
        SemanticCacheSettings(**bad)


def test_the_defaults() -> None:
    assert SemanticCacheSettings() == SemanticCacheSettings(threshold=0.70, scan_limit=200, mode="vector", top_k=10,
                                                            timeout_s=3.0)
