"""In-memory stand-ins for the semantic cache's dependencies, recording what the cache did to them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from shared.core.errors import ServiceUnavailable
from shared.core.models import ChatMessage, Usage
from shared.core.values import Completion
from shared.state.semantic_cache import SCAN_QUERY, VECTOR_QUERY
from shared.upstream.embeddings import cosine
from tools.simulator.embeddings import embed

DIMS = 256
ANSWER = Completion("Paris is the capital of France.", "stop", "gpt-test-0613",
                    Usage(prompt_tokens=12, completion_tokens=7, total_tokens=19), "primary")


def user(text: str, system: str | None = None) -> list[ChatMessage]:
    """A single-turn request, with a system message first when given."""
    head = [ChatMessage(role="system", content=system)] if system else []
    return [*head, ChatMessage(role="user", content=text)]


@dataclass
class FakeEmbedder:
    """The simulator's own embedding function, in process; fails or stalls when told to."""

    error: Exception | None = None
    delay_s: float = 0.0
    calls: list[list[str]] = field(default_factory=list)

    async def embed(self, texts: list[str]) -> list[list[float]]:
        self.calls.append(texts)
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if self.error is not None:
            raise self.error
        return [embed(t, DIMS) for t in texts]


def _params(parameters: list[dict[str, Any]]) -> dict[str, Any]:
    return {p["name"]: p["value"] for p in parameters}


@dataclass
class FakeContainer:
    """Records every query; answers the cache's two queries the way Cosmos would, or with `rows`."""

    docs: dict[str, dict[str, Any]] = field(default_factory=dict)
    rows: list[dict[str, Any]] | None = None  # canned answer rows, when set
    queries: list[tuple[str, dict[str, Any], Any]] = field(default_factory=list)
    error: Exception | None = None

    async def upsert_item(self, body: dict[str, Any], *, no_response: bool | None = None) -> dict[str, Any]:
        if self.error is not None:
            raise self.error
        self.docs[body["id"]] = dict(body)
        return {} if no_response else body  # as Cosmos: no document back when asked for none

    def query_items(self, query: str, *, parameters: list[dict[str, Any]], partition_key: Any) -> AsyncIterator[
            dict[str, Any]]:
        self.queries.append((query, _params(parameters), partition_key))
        return self._answer(query, _params(parameters), partition_key)

    async def _answer(self, query: str, p: dict[str, Any], partition_key: Any) -> AsyncIterator[dict[str, Any]]:
        if self.error is not None:
            raise self.error
        if self.rows is not None:
            for row in self.rows:
                yield dict(row)
            return
        found = [d for d in self.docs.values() if d["tenant"] == partition_key == p["@tenant"]
                 and d["kind"] == p["@kind"] and d["scope"] == p["@scope"] and d["expires_at"] > p["@now"]]
        if query == SCAN_QUERY:
            found = sorted(found, key=lambda d: d["created_at"], reverse=True)[:p["@limit"]]
        elif query == VECTOR_QUERY:
            found = sorted(({**d, "similarity": cosine(d["embedding"], p["@vector"])} for d in found),
                           key=lambda d: d["similarity"], reverse=True)[:p["@top_k"]]
        else:
            raise AssertionError(f"unexpected query {query!r}")
        for doc in found:
            yield dict(doc)


@dataclass
class FakeState:
    """CosmosState's one method the cache uses."""

    cache: FakeContainer = field(default_factory=FakeContainer)
    error: Exception | None = None

    async def container(self, name: str) -> FakeContainer:
        assert name == "cache"
        if self.error is not None:
            raise self.error
        return self.cache


DOWN = ServiceUnavailable("No embedding endpoint could answer right now.")
