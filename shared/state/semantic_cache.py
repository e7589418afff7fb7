"""The semantic response cache: prompts close in meaning share an answer, within a tenant and scope.

Entries live in Cosmos `cache` (partition /tenant) beside the exact cache's, with ids "s:<sha256>".
A scope is the model plus the hash of the system prompt, so a different model or system prompt never
hits. Only single-turn requests take part (at most one system message, then one user message): a
multi-turn answer depends on the whole conversation, which one embedding cannot stand for.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import math
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from azure.cosmos.aio import ContainerProxy

from shared.core.models import ChatMessage, Usage
from shared.core.values import Completion
from shared.state.cosmos import CosmosState
from shared.state.semantic_veto import veto
from shared.upstream.embeddings import Embedder, cosine
from shared.upstream.protocol import text_response

log = logging.getLogger(__name__)
KIND = "semantic"


@dataclass(frozen=True)
class SemanticCacheSettings:
    """SEMANTIC_CACHE_* app settings.

    threshold: the least cosine similarity (-1..1) between a new prompt's embedding and a stored
    one for the stored answer to be served. Higher is stricter: fewer hits, fewer wrong answers.
    0.70 is calibrated by `python -m bench.semantic_cache`: with the veto, false hits stay under 1%
    at every threshold on its set; 0.70 is the strictest that keeps all but one of the hits, so the
    similarity still rules out unrelated candidates should the veto let one through.
    """

    threshold: float = 0.70
    scan_limit: int = 200  # "scan" mode: the newest entries of the tenant and scope compared in process
    mode: Literal["vector", "scan"] = "vector"  # "scan" where Cosmos has no vector search (the emulator)
    # Candidates taken by similarity before the veto: near-duplicates that differ in a key term
    # ("capital of Spain", "of Italy") can outrank the one true match, so more than one or two.
    top_k: int = 10
    timeout_s: float = 3.0  # a lookup or store slower than this is given up: the request goes on

    def __post_init__(self) -> None:
        if not -1.0 <= self.threshold <= 1.0:
            raise ValueError("SEMANTIC_CACHE_THRESHOLD must be between -1 and 1")
        if self.scan_limit < 1 or self.top_k < 1 or self.timeout_s <= 0:
            raise ValueError("SEMANTIC_CACHE_SCAN_LIMIT, top_k and timeout_s must be positive")
        if self.mode not in ("vector", "scan"):
            raise ValueError("SEMANTIC_CACHE_MODE must be 'vector' or 'scan'")


# --- where candidates come from ---------------------------------------------------------------------
@dataclass(frozen=True)
class Candidate:
    similarity: float
    doc: dict[str, Any]


class VectorIndex(Protocol):
    async def nearest(self, container: ContainerProxy, *, tenant: str, scope: str, vector: list[float],
                      now: float, top_k: int) -> list[Candidate]:
        """The most similar unexpired entries of the tenant and scope, most similar first."""
        ...


VECTOR_QUERY = (
    "SELECT TOP @top_k c.id, c.tenant, c.scope, c.prompt, c.completion, c.expires_at, "
    "VectorDistance(c.embedding, @vector) AS similarity FROM c "
    "WHERE c.tenant = @tenant AND c.kind = @kind AND c.scope = @scope AND c.expires_at > @now "
    "ORDER BY VectorDistance(c.embedding, @vector)"
)
SCAN_QUERY = (
    "SELECT TOP @limit c.id, c.tenant, c.scope, c.prompt, c.completion, c.expires_at, c.embedding FROM c "
    "WHERE c.tenant = @tenant AND c.kind = @kind AND c.scope = @scope AND c.expires_at > @now "
    "ORDER BY c.created_at DESC"
)


def _parameters(tenant: str, scope: str, now: float, **extra: Any) -> list[dict[str, Any]]:
    values = {"@tenant": tenant, "@kind": KIND, "@scope": scope, "@now": now, **{f"@{k}": v for k, v in extra.items()}}
    return [{"name": name, "value": value} for name, value in values.items()]


class CosmosVectorSearch:
    """Cosmos DB vector search (the `cache` container's /embedding policy: float32, cosine), for
    which VectorDistance is a similarity and ORDER BY puts the most similar first."""

    async def nearest(self, container: ContainerProxy, *, tenant: str, scope: str, vector: list[float],
                      now: float, top_k: int) -> list[Candidate]:
        rows = container.query_items(VECTOR_QUERY, parameters=_parameters(tenant, scope, now, top_k=top_k,
                                                                          vector=vector), partition_key=tenant)
        return [Candidate(float(row.pop("similarity")), row) async for row in rows]


class RecentEntriesScan:
    """Where the store has no vector search (the local emulator): the newest `limit` entries of the
    tenant and scope, ranked in process. Bounded, so a busy tenant costs one page, not its history."""

    def __init__(self, limit: int) -> None:
        self.limit = limit

    async def nearest(self, container: ContainerProxy, *, tenant: str, scope: str, vector: list[float],
                      now: float, top_k: int) -> list[Candidate]:
        rows = container.query_items(SCAN_QUERY, parameters=_parameters(tenant, scope, now, limit=self.limit),
                                     partition_key=tenant)
        ranked = [Candidate(cosine(vector, row.pop("embedding", None) or []), row) async for row in rows]
        return sorted(ranked, key=lambda c: c.similarity, reverse=True)[:top_k]


def vector_index(settings: SemanticCacheSettings) -> VectorIndex:
    return CosmosVectorSearch() if settings.mode == "vector" else RecentEntriesScan(settings.scan_limit)


# --- the cache --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Key:
    scope: str
    prompt: str


def _sha256(*parts: str) -> str:
    return hashlib.sha256(json.dumps(parts).encode("utf-8")).hexdigest()


def cache_key(model: str, messages: Sequence[ChatMessage]) -> _Key | None:
    """The scope and prompt of a single-turn request; None for anything else (it bypasses)."""
    roles = [m.role for m in messages]
    if roles not in (["user"], ["system", "user"]):
        return None
    system = messages[0].content if len(messages) == 2 else ""
    return _Key(scope=_sha256(model, _sha256(system)), prompt=messages[-1].content)


def best_match(prompt: str, candidates: Sequence[Candidate], *, tenant: str, scope: str, threshold: float,
               now: float, max_tokens: int | None = None) -> Candidate | None:
    """The most similar candidate at or above the threshold that is this tenant's and scope's,
    unexpired (the emulator never expires items), not vetoed, and fits the caller's max_tokens."""
    for candidate in sorted(candidates, key=lambda c: c.similarity, reverse=True):
        doc = candidate.doc
        if candidate.similarity < threshold:
            return None
        if (doc.get("tenant"), doc.get("scope")) != (tenant, scope) or float(doc.get("expires_at", 0)) <= now:
            continue
        if veto(prompt, str(doc.get("prompt", ""))) is not None:
            continue
        if max_tokens is not None and int(doc["completion"]["usage"]["completion_tokens"]) > max_tokens:
            continue
        return candidate
    return None


class SemanticCache:
    """lookup() and store() never raise: a cache problem must never fail a request."""

    _MEMO_SIZE = 256

    def __init__(self, state: CosmosState, embedder: Embedder, index: VectorIndex,
                 settings: SemanticCacheSettings) -> None:
        self._state = state
        self._embedder = embedder
        self._index = index
        self.settings = settings
        # The vector of a prompt just looked up, so storing its answer needs no second embedding call.
        self._memo: OrderedDict[str, list[float]] = OrderedDict()

    async def lookup(self, tenant: str, model: str, messages: list[ChatMessage], *, now: float,
                     max_tokens: int | None = None) -> Completion | None:
        """A stored answer to a prompt close enough to this one; None on a miss, a bypass or a failure."""
        key = cache_key(model, messages)
        if key is None:
            return None
        try:
            return await asyncio.wait_for(self._lookup(tenant, key, now, max_tokens), self.settings.timeout_s)
        except Exception as exc:  # noqa: BLE001  any failure is a miss; only the type is logged
            log.warning("semantic cache lookup failed: %s", type(exc).__name__)
            return None

    async def store(self, tenant: str, model: str, messages: list[ChatMessage], completion: Completion, *,
                    ttl_s: float, now: float) -> None:
        """Keep a complete answer (finish_reason "stop") of a single-turn request for ttl_s seconds."""
        key = cache_key(model, messages)
        if key is None or completion.finish_reason != "stop" or not completion.content or ttl_s <= 0:
            return
        try:
            await asyncio.wait_for(self._store(tenant, model, key, completion, ttl_s=ttl_s, now=now),
                                   self.settings.timeout_s)
        except Exception as exc:  # noqa: BLE001  an answer not cached is only a later miss
            log.warning("semantic cache store failed: %s", type(exc).__name__)

    async def _lookup(self, tenant: str, key: _Key, now: float, max_tokens: int | None) -> Completion | None:
        vector = await self._vector(key.prompt)
        container = await self._state.container("cache")
        candidates = await self._index.nearest(container, tenant=tenant, scope=key.scope, vector=vector, now=now,
                                               top_k=self.settings.top_k)
        match = best_match(key.prompt, candidates, tenant=tenant, scope=key.scope,
                           threshold=self.settings.threshold, now=now, max_tokens=max_tokens)
        if match is None:
            return None
        log.info("semantic cache hit: similarity=%.3f", match.similarity)
        return _completion(match.doc["completion"])

    async def _store(self, tenant: str, model: str, key: _Key, completion: Completion, *, ttl_s: float,
                     now: float) -> None:
        vector = await self._vector(key.prompt)
        container = await self._state.container("cache")
        await container.upsert_item(entry(tenant, model, key, vector, completion, ttl_s=ttl_s, now=now),
                                    no_response=True)  # not its embedding and answer back

    async def _vector(self, prompt: str) -> list[float]:
        digest = _sha256(prompt)
        if (vector := self._memo.get(digest)) is None:
            [vector] = await self._embedder.embed([prompt])
            self._memo[digest] = vector
            while len(self._memo) > self._MEMO_SIZE:
                self._memo.popitem(last=False)
        return vector


def entry(tenant: str, model: str, key: _Key, vector: list[float], completion: Completion, *, ttl_s: float,
          now: float) -> dict[str, Any]:
    """The stored document. The id is one per tenant, scope and prompt: storing again refreshes it."""
    return {
        "id": "s:" + _sha256(tenant, key.scope, key.prompt),
        "kind": KIND, "tenant": tenant, "scope": key.scope, "model": model, "prompt": key.prompt,
        "embedding": vector,
        "completion": {"content": completion.content, "finish_reason": completion.finish_reason,
                       "model": completion.model, "usage": completion.usage.model_dump(),
                       "endpoint": completion.endpoint, **_answer_meta(completion.raw)},
        "created_at": now, "expires_at": now + ttl_s,
        # Cosmos deletes the item after `ttl` seconds (the container has TTL on); expires_at is
        # what reads check, since the emulator never deletes and Cosmos deletes lazily.
        "ttl": max(1, math.ceil(ttl_s)),
    }


def _answer_meta(raw: dict[str, Any] | None) -> dict[str, Any]:
    """What makes a replayed answer look like a fresh one (an OpenAI-path answer): its `created`,
    `system_fingerprint` and usage with its details."""
    if raw is None:
        return {}
    meta = {k: raw[k] for k in ("created", "system_fingerprint") if raw.get(k) is not None}
    if isinstance(raw.get("usage"), dict):
        meta["usage"] = raw["usage"]
    return meta


def _completion(doc: dict[str, Any]) -> Completion:
    usage = Usage.model_validate(doc["usage"])
    raw = None
    if "created" in doc:  # stored from an OpenAI-path answer: replayed as that answer's shape
        raw = text_response(doc["content"], doc["finish_reason"], doc["model"], doc["usage"],
                            created=int(doc["created"]), system_fingerprint=doc.get("system_fingerprint"))
    return Completion(content=doc["content"], finish_reason=doc["finish_reason"], model=doc["model"],
                      usage=usage, endpoint=doc.get("endpoint", ""), raw=raw)
