"""Text embeddings for the semantic cache: Semantic Kernel embedding services over our endpoints."""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from azure.core.credentials_async import AsyncTokenCredential
from openai import AsyncAzureOpenAI
from semantic_kernel.connectors.ai.embedding_generator_base import EmbeddingGeneratorBase
from semantic_kernel.connectors.ai.open_ai import AzureTextEmbedding, OpenAITextEmbedding

from shared.clients import build_client
from shared.config import EndpointConfig
from shared.errors import ServiceUnavailable, UpstreamRefused
from shared.metering import current_meter
from shared.models import Usage
from shared.resilience.clock import Clock, SystemClock
from shared.secrets import SecretProvider
from shared.upstream import classify

log = logging.getLogger(__name__)


class Embedder(Protocol):
    async def embed(self, texts: list[str]) -> list[list[float]]:
        """One vector per text, in order. Raises an AppError (never a provider's text) on failure."""
        ...


@dataclass(frozen=True)
class EmbeddingEndpoint:
    """One endpoint's embedding deployment as a Semantic Kernel service."""

    name: str
    priority: int
    service: EmbeddingGeneratorBase


async def build_embedding_endpoints(
    configs: Sequence[EndpointConfig], *, credential: AsyncTokenCredential | None, secrets: SecretProvider,
    timeout_s: float,
) -> list[EmbeddingEndpoint]:
    """An embedding service for every endpoint that names an `embedding_deployment`, each over its
    own SDK client built like the chat clients (SDK retries off)."""
    built: list[EmbeddingEndpoint] = []
    for config in configs:
        if not config.embedding_deployment:
            continue
        client = await build_client(config, credential=credential, secrets=secrets, timeout_s=timeout_s)
        service: EmbeddingGeneratorBase
        if isinstance(client, AsyncAzureOpenAI):
            service = AzureTextEmbedding(service_id=f"{config.name}-embeddings",
                                         deployment_name=config.embedding_deployment, async_client=client)
        else:
            service = OpenAITextEmbedding(service_id=f"{config.name}-embeddings",
                                          ai_model_id=config.embedding_deployment, async_client=client)
        built.append(EmbeddingEndpoint(config.name, config.priority, service))
    return built


class KernelEmbedder:
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
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                failure = classify(exc)
                log.warning("embedding failed: endpoint=%s kind=%s status=%s error=%s",
                            endpoint.name, failure.kind, failure.status, type(exc).__name__)
                if failure.kind == "refused":
                    # The text itself was refused (too long, filtered): another region would refuse it too.
                    raise UpstreamRefused("The embedding endpoint refused this text.") from exc
                self._parked_until[endpoint.name] = self._clock.now() + (failure.retry_after_s or self._cooldown_s)
        raise ServiceUnavailable("No embedding endpoint could answer right now.")


async def _embed_on(endpoint: EmbeddingEndpoint, texts: list[str]) -> list[list[float]]:
    """One call through the service's SDK client, whose answer carries the usage the request's
    meter is charged (Semantic Kernel keeps only running totals per service)."""
    service: Any = endpoint.service
    response = await service.client.embeddings.create(input=texts, model=service.ai_model_id)
    meter = current_meter()
    if meter is not None and response.usage is not None:
        tokens = int(response.usage.prompt_tokens or 0)
        meter.embedded(Usage(prompt_tokens=tokens, completion_tokens=0, total_tokens=tokens))
    return [list(item.embedding) for item in response.data]


def _checked(raw: object, expected: int) -> list[list[float]]:
    """Plain float lists (the SDK may hand back numpy rows), one finite, non-empty vector per text."""
    if not isinstance(raw, Sequence) or len(raw) != expected:
        raise ValueError("the embedding answer has the wrong number of vectors")
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
