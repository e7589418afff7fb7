"""Text embeddings for the semantic cache: each endpoint's embedding deployment, over the endpoint's
own wire (one client per endpoint, whichever door a request came in by)."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from shared.core.clock import Clock, SystemClock
from shared.core.errors import ServiceUnavailable, UpstreamRefused
from shared.core.metering import current_meter
from shared.core.models import Usage
from shared.upstream.endpoints import Endpoint
from shared.upstream.failures import billable_failure, classify
from shared.upstream.wire import ModelWire

if TYPE_CHECKING:

    pass

log = logging.getLogger(__name__)


class Embedder(Protocol):
    async def embed(self, texts: list[str]) -> list[list[float]]:
        """One vector per text, in order. Raises an AppError (never a provider's text) on failure."""
        ...


@dataclass(frozen=True)
class EmbeddingEndpoint:
    """One endpoint's embedding deployment and the wire that reaches it."""

    name: str
    priority: int
    deployment: str
    wire: ModelWire
    timeout_s: float = 5.0  # a lookup that cannot embed soon is a miss: it never holds the request up


def embedding_endpoints(endpoints: Sequence[Endpoint], *, timeout_s: float) -> list[EmbeddingEndpoint]:
    """Every endpoint that names an `embedding_deployment`, over its own wire."""
    return [EmbeddingEndpoint(e.name, e.config.priority, e.config.embedding_deployment, e.wire, timeout_s)
            for e in endpoints if e.config.embedding_deployment]


class EndpointEmbedder:
    """Embeds through the best-priority endpoint that answers, trying each at most once per call.

    No retries and no waiting: a cache lookup that cannot embed is a miss, never a reason to delay
    the request. The chat breakers are not fed either: an embedding deployment has its own quota,
    and its 429 says nothing about the chat deployment of the same account. Instead an endpoint
    that failed is skipped for its Retry-After (else `cooldown_s`), so a dead region does not cost
    every lookup a timeout before the next region answers.
    """

    def __init__(self, endpoints: Sequence[EmbeddingEndpoint], *, clock: Clock | None = None,
                 cooldown_s: float = 15.0) -> None:
        if not endpoints:
            raise ValueError("no endpoint in AI_ENDPOINTS has an embedding_deployment")
        self._endpoints = sorted(endpoints, key=lambda e: e.priority)
        self._clock = clock or SystemClock()
        self._cooldown_s = cooldown_s
        self._parked_until: dict[str, float] = {}

    async def embed(self, texts: list[str]) -> list[list[float]]:
        if not texts:
            return []
        for endpoint in self._endpoints:
            if self._parked_until.get(endpoint.name, 0.0) > self._clock.now():
                continue
            try:
                return _checked(await _embed_on(endpoint, texts), len(texts))
            except BaseException as exc:
                _charge_worst_case(exc)
                if not isinstance(exc, Exception):
                    raise
                failure = classify(exc)
                log.warning("embedding failed: endpoint=%s kind=%s status=%s error=%s",
                            endpoint.name, failure.kind, failure.status, type(exc).__name__)
                if failure.kind == "refused":
                    # The text itself was refused (too long, filtered): another region would refuse it too.
                    raise UpstreamRefused("The embedding endpoint refused this text.") from exc
                self._parked_until[endpoint.name] = self._clock.now() + (failure.retry_after_s or self._cooldown_s)
        raise ServiceUnavailable("No embedding endpoint could answer right now.")


def _charge_worst_case(exc: BaseException) -> None:
    """A call cut, timed out or cancelled after it was sent may have been billed, and reported no
    usage: the request's meter is charged its worst case, the prompt as counted (what admission
    reserved for the lookup's embedding), as a cut whole chat attempt is (docs/accounting.md)."""
    meter = current_meter()
    if meter is not None and billable_failure(exc):
        meter.embedded(Usage(prompt_tokens=meter.prompt_tokens, completion_tokens=0, total_tokens=meter.prompt_tokens))


async def _embed_on(endpoint: EmbeddingEndpoint, texts: list[str]) -> list[object]:
    """One call; the usage it reports is charged to the request's meter (embeddings are billed
    like chats)."""
    answer = await endpoint.wire.post("/embeddings", {"input": texts, "model": endpoint.deployment},
                                      timeout_s=endpoint.timeout_s)
    meter = current_meter()
    usage = answer.get("usage")
    if meter is not None and isinstance(usage, dict):
        tokens = int(usage.get("prompt_tokens") or 0)
        meter.embedded(Usage(prompt_tokens=tokens, completion_tokens=0, total_tokens=tokens))
    data = answer.get("data")
    if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
        raise ValueError("the embedding answer has no list of vectors")
    # Providers answer in input order and number each item: the number is what the protocol promises.
    return [item.get("embedding") for item in sorted(data, key=lambda item: item.get("index", 0))]


def _checked(raw: object, expected: int) -> list[list[float]]:
    """Plain float lists, one finite, non-empty vector per text."""
    if not isinstance(raw, Sequence) or len(raw) != expected:
        raise ValueError("the embedding answer has the wrong number of vectors")
    if not all(isinstance(row, list) for row in raw):
        raise ValueError("the embedding answer has a vector that is not a list of numbers")
    vectors = [[float(x) for x in row] for row in raw]
    if any(not v or not all(math.isfinite(x) for x in v) for v in vectors):
        raise ValueError("the embedding answer has an empty or non-finite vector")
    return vectors


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    """Cosine similarity in -1..1; 0 for vectors of different sizes (another embedding model)."""
    if len(a) != len(b):
        return 0.0
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return sum(x * y for x, y in zip(a, b, strict=True)) / norm if norm else 0.0
