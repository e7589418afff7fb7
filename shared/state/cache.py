"""Response cache: exact entries in Cosmos `cache`, then the semantic cache; one port for both.

An exact key is the SHA-256 of tenant, model, system prompt and the whole normalized request,
sampling parameters included. Expiry is checked on every read (the local emulator never expires
items); expired entries stay in Cosmos for a while so that, when every model endpoint is down, the
gateway can serve one flagged stale.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, cast

from shared.core.models import ChatMessage, Role, Usage
from shared.core.tokens import canonical_json
from shared.core.values import Completion
from shared.identity.auth import Principal
from shared.observability import tracing
from shared.state.cosmos import CosmosState
from shared.state.semantic_cache import SemanticCache
from shared.upstream.protocol import semantic_view

log = logging.getLogger(__name__)
# How long past its TTL an entry may still serve as a stale answer in degraded mode.
STALE_GRACE_S = 24 * 3600
SINGLE_TURN = (["user"], ["system", "user"])  # the only requests the semantic cache takes part in


@dataclass(frozen=True)
class SemanticView:
    """What the semantic cache sees of a request: a scope suffix (the sampling parameters, so
    other `stop` sequences or another temperature never share an answer), the messages and the
    completion cap."""

    scope: str
    messages: list[ChatMessage]
    max_tokens: int | None


class CacheKey:
    """A request as the caches see it: the exact entry's id and, for a plain single-turn chat, the
    semantic view. Each is worked out at most once per request, and only when a cache reads it (a
    tenant without a cache never encodes or hashes its body)."""

    def __init__(self, tenant: str, model: str, request: Callable[[], dict[str, Any]],
                 semantic: Callable[[], SemanticView | None] = lambda: None) -> None:
        self._tenant, self._model, self._request, self._semantic = tenant, model, request, semantic

    def request(self) -> dict[str, Any]:
        """The request as the exact entry keys it (for the audit record of a tenant that logs content)."""
        return self._request()

    @functools.cached_property
    def exact_id(self) -> str:
        return exact_key(self._tenant, self._model, self._request())

    @functools.cached_property
    def semantic(self) -> SemanticView | None:
        return self._semantic()


class ResponseCache(Protocol):
    async def exact(self, principal: Principal, key: CacheKey, *, stale_ok: bool = False) -> Completion | None:
        """The exact entry: one Cosmos read, no model call."""
        ...

    async def similar(self, principal: Principal, model: str, key: CacheKey) -> Completion | None:
        """The semantic entry (an embedding call, then a query); None when it does not apply."""
        ...

    async def store(self, principal: Principal, model: str, key: CacheKey, completion: Completion) -> None: ...

    def reads(self, principal: Principal) -> bool:
        """Whether a lookup for this tenant reads Cosmos at all (nothing is stored without a TTL)."""
        ...

    def may_embed(self, principal: Principal, key: CacheKey) -> bool:
        """Whether a lookup of this request may make an embedding call (charged, and counted in TPM)."""
        ...


def exact_key(tenant: str, model: str, request: dict[str, Any]) -> str:
    """Canonical JSON, so key order and whitespace around values never split one request in two."""
    canonical = json.dumps({"tenant": tenant, "model": model, "request": request}, sort_keys=True,
                           separators=(",", ":"), ensure_ascii=False)
    return "x:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def completion_doc(completion: Completion) -> dict[str, Any]:
    """Every field but `request_id` (the provider's id of that one request: a hit is answered by no
    one). Built by hand: `asdict` deep-copies the provider's whole response, which is only serialized."""
    return {"content": completion.content, "finish_reason": completion.finish_reason, "model": completion.model,
            "usage": completion.usage.model_dump(), "endpoint": completion.endpoint, "raw": completion.raw}


def completion_from(doc: dict[str, Any]) -> Completion:
    return Completion(content=doc["content"], finish_reason=doc["finish_reason"], model=doc["model"],
                      usage=Usage.model_validate(doc["usage"]), endpoint=doc.get("endpoint", ""),
                      raw=doc.get("raw"))


class CosmosExactCache:
    def __init__(self, state: CosmosState, now: Callable[[], float]) -> None:
        self.state = state
        self.now = now
        # Answers whose store is still in flight (it runs after the response): this process reads
        # its own writes, so a client repeating a request at once gets the hit it expects.
        self._storing: dict[str, Completion] = {}

    async def lookup(self, principal: Principal, key: CacheKey, *, stale_ok: bool = False) -> Completion | None:
        if (storing := self._storing.get(key.exact_id)) is not None:
            return storing
        doc = await self.state.find("cache", principal.tenant, key.exact_id)
        if doc is None:
            return None
        fresh = doc["expires_at"] > self.now()
        if fresh or (stale_ok and doc["expires_at"] + STALE_GRACE_S > self.now()):
            return completion_from(doc["completion"])
        return None

    async def store(self, principal: Principal, model: str, key: CacheKey, completion: Completion) -> None:
        ttl_s = principal.limits.cache_ttl_s
        if ttl_s <= 0:
            return
        self._storing[key.exact_id] = completion
        try:
            container = await self.state.container("cache")
            now = self.now()
            await container.upsert_item({
                "id": key.exact_id, "tenant": principal.tenant, "kind": "exact",
                "model": model, "completion": completion_doc(completion), "created_at": now,
                "expires_at": now + ttl_s, "ttl": int(ttl_s + STALE_GRACE_S),
            }, no_response=True)  # the entry is not sent back: it would be decoded for nothing
        finally:
            self._storing.pop(key.exact_id, None)


class TieredCache:
    """Exact entries first; then, for single-turn chats, the semantic cache. A stale answer for
    degraded mode comes from the exact cache only: an approximate and expired answer is too far."""

    def __init__(self, exact: CosmosExactCache, semantic: SemanticCache | None, now: Callable[[], float]) -> None:
        self.exact_cache = exact
        self.semantic = semantic
        self.now = now

    def reads(self, principal: Principal) -> bool:
        return principal.limits.cache_ttl_s > 0  # nothing of this tenant's is ever stored

    def may_embed(self, principal: Principal, key: CacheKey) -> bool:
        return self.semantic is not None and self.reads(principal) and key.semantic is not None

    async def exact(self, principal: Principal, key: CacheKey, *, stale_ok: bool = False) -> Completion | None:
        if not self.reads(principal):
            return None
        return await self.exact_cache.lookup(principal, key, stale_ok=stale_ok)

    async def similar(self, principal: Principal, model: str, key: CacheKey) -> Completion | None:
        view = key.semantic
        if self.semantic is None or view is None or not self.reads(principal):
            return None
        hit = await self.semantic.lookup(principal.tenant, f"{model}{view.scope}", view.messages, now=self.now(),
                                         max_tokens=view.max_tokens)
        if hit is not None:
            tracing.note_cache("semantic_hit")
        return hit

    async def store(self, principal: Principal, model: str, key: CacheKey, completion: Completion) -> None:
        """The exact and the semantic entry together (one round trip, not two in a row)."""
        if not self.reads(principal):
            return
        view = key.semantic
        writes = [self.exact_cache.store(principal, model, key, completion)]
        if self.semantic is not None and view is not None:
            writes.append(self.semantic.store(principal.tenant, f"{model}{view.scope}", view.messages, completion,
                                              ttl_s=principal.limits.cache_ttl_s, now=self.now()))
        await asyncio.gather(*writes)


def chat_view(request: dict[str, Any]) -> SemanticView | None:
    """The semantic view of a native chat's key (its messages stripped, its sampling parameters);
    None unless single-turn: the semantic cache never answers (nor embeds for) another."""
    if [m["role"] for m in request["messages"]] not in SINGLE_TURN:
        return None
    # Constructed, not validated: the key holds the messages stripped, which may leave one empty.
    messages = [ChatMessage.model_construct(role=m["role"], content=m["content"]) for m in request["messages"]]
    params = {k: v for k, v in request["params"].items() if k != "max_tokens" and v is not None}
    return SemanticView(("|" + canonical_json(params)) if params else "", messages, request["params"]["max_tokens"])


def openai_view(body: Mapping[str, Any]) -> SemanticView | None:
    """The semantic view of an OpenAI body; None when it must not answer (anything but a plain
    single-turn text chat)."""
    view = semantic_view(body)
    if view is None:
        return None
    pairs, params = view
    if [role for role, _ in pairs] not in SINGLE_TURN:
        return None
    cap = params.pop("max_completion_tokens", None) or params.pop("max_tokens", None)
    params.pop("max_tokens", None)
    # Constructed, not validated: the native path's 32,000-character bound is not this path's.
    messages = [ChatMessage.model_construct(role=cast(Role, role), content=text) for role, text in pairs]
    return SemanticView("|openai|" + canonical_json(params), messages, cap)
