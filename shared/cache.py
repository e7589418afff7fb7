"""Response cache: exact entries in Cosmos `cache`, then the semantic cache; one port for both.

An exact key is the SHA-256 of tenant, model, system prompt and the whole normalized request,
sampling parameters included. Expiry is checked on every read (the local emulator never expires
items); expired entries stay in Cosmos for a while so that, when every model endpoint is down, the
gateway can serve one flagged stale.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import asdict
from typing import Any, Protocol, cast

from shared import tracing
from shared.auth import Principal
from shared.cosmos import CosmosState
from shared.models import ChatMessage, Role, Usage
from shared.openai_wire import semantic_view
from shared.semantic_cache import SemanticCache
from shared.tokens import canonical_json
from shared.values import Completion

log = logging.getLogger(__name__)
# How long past its TTL an entry may still serve as a stale answer in degraded mode.
STALE_GRACE_S = 24 * 3600


class ResponseCache(Protocol):
    async def lookup(self, principal: Principal, model: str, request: dict[str, Any], *,
                     stale_ok: bool = False) -> Completion | None: ...

    async def store(self, principal: Principal, model: str, request: dict[str, Any],
                    completion: Completion) -> None: ...

    def may_embed(self, principal: Principal, request: dict[str, Any]) -> bool:
        """Whether a lookup of this request may make an embedding call (charged, and counted in TPM)."""
        ...


def exact_key(tenant: str, model: str, request: dict[str, Any]) -> str:
    """Canonical JSON, so key order and whitespace around values never split one request in two."""
    canonical = json.dumps({"tenant": tenant, "model": model, "request": request}, sort_keys=True,
                           separators=(",", ":"), ensure_ascii=False)
    return "x:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def completion_doc(completion: Completion) -> dict[str, Any]:
    doc = asdict(completion)
    doc["usage"] = completion.usage.model_dump()
    return doc


def completion_from(doc: dict[str, Any]) -> Completion:
    return Completion(content=doc["content"], finish_reason=doc["finish_reason"], model=doc["model"],
                      usage=Usage.model_validate(doc["usage"]), endpoint=doc.get("endpoint", ""),
                      raw=doc.get("raw"))


class CosmosExactCache:
    def __init__(self, state: CosmosState, now: Callable[[], float]) -> None:
        self.state = state
        self.now = now

    async def lookup(self, principal: Principal, model: str, request: dict[str, Any], *,
                     stale_ok: bool = False) -> Completion | None:
        doc = await self.state.find("cache", principal.tenant, exact_key(principal.tenant, model, request))
        if doc is None:
            return None
        fresh = doc["expires_at"] > self.now()
        if fresh or (stale_ok and doc["expires_at"] + STALE_GRACE_S > self.now()):
            return completion_from(doc["completion"])
        return None

    async def store(self, principal: Principal, model: str, request: dict[str, Any],
                    completion: Completion) -> None:
        ttl_s = principal.limits.cache_ttl_s
        if ttl_s <= 0:
            return
        container = await self.state.container("cache")
        now = self.now()
        await container.upsert_item({
            "id": exact_key(principal.tenant, model, request), "tenant": principal.tenant, "kind": "exact",
            "model": model, "completion": completion_doc(completion), "created_at": now,
            "expires_at": now + ttl_s, "ttl": int(ttl_s + STALE_GRACE_S),
        })


class TieredCache:
    """Exact entries first; then, for single-turn chats, the semantic cache. A stale answer for
    degraded mode comes from the exact cache only: an approximate and expired answer is too far."""

    def __init__(self, exact: CosmosExactCache, semantic: SemanticCache | None, now: Callable[[], float]) -> None:
        self.exact = exact
        self.semantic = semantic
        self.now = now

    def may_embed(self, principal: Principal, request: dict[str, Any]) -> bool:
        return self.semantic is not None and principal.limits.cache_ttl_s > 0 and _semantic(request) is not None

    async def lookup(self, principal: Principal, model: str, request: dict[str, Any], *,
                     stale_ok: bool = False) -> Completion | None:
        if principal.limits.cache_ttl_s <= 0:
            return None  # nothing of this tenant's is ever stored: no Cosmos read, no embedding call
        hit = await self.exact.lookup(principal, model, request, stale_ok=stale_ok)
        view = _semantic(request)
        if hit is not None or stale_ok or self.semantic is None or view is None:
            return hit
        scope, messages, max_tokens = view
        hit = await self.semantic.lookup(principal.tenant, f"{model}{scope}", messages, now=self.now(),
                                         max_tokens=max_tokens)
        if hit is not None:
            tracing.note_cache("semantic_hit")
        return hit

    async def store(self, principal: Principal, model: str, request: dict[str, Any],
                    completion: Completion) -> None:
        if principal.limits.cache_ttl_s <= 0:
            return
        await self.exact.store(principal, model, request, completion)
        view = _semantic(request)
        if self.semantic is not None and view is not None:
            scope, messages, _ = view
            await self.semantic.store(principal.tenant, f"{model}{scope}", messages, completion,
                                      ttl_s=principal.limits.cache_ttl_s, now=self.now())


def _semantic(request: dict[str, Any]) -> tuple[str, list[ChatMessage], int | None] | None:
    """What the semantic cache sees of a request: a scope suffix (the sampling parameters, so
    other `stop` sequences or another temperature never share an answer), the messages and the
    completion cap; None when it must not answer (anything but a plain single-turn text chat)."""
    if request.get("op") == "chat":
        # Constructed, not validated: the key holds the messages stripped, which may leave one empty.
        messages = [ChatMessage.model_construct(role=m["role"], content=m["content"]) for m in request["messages"]]
        params = {k: v for k, v in request["params"].items() if k != "max_tokens" and v is not None}
        return ("|" + canonical_json(params)) if params else "", messages, request["params"]["max_tokens"]
    if request.get("op") != "openai":
        return None
    view = semantic_view(json.loads(request["body"]))
    if view is None:
        return None
    pairs, params = view
    if [role for role, _ in pairs] not in (["user"], ["system", "user"]):
        return None
    cap = params.pop("max_completion_tokens", None) or params.pop("max_tokens", None)
    params.pop("max_tokens", None)
    # Constructed, not validated: the native path's 32,000-character bound is not this path's.
    messages = [ChatMessage.model_construct(role=cast(Role, role), content=text) for role, text in pairs]
    return "|openai|" + canonical_json(params), messages, cap
