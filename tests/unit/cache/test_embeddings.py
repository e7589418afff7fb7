"""The Embedder over Semantic Kernel's embedding services: real SDK clients on a mock transport."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

import httpx2
import pytest
from openai import AsyncAzureOpenAI
from pydantic import SecretStr
from semantic_kernel.connectors.ai.open_ai import AzureTextEmbedding, OpenAITextEmbedding

from shared.config import EndpointConfig
from shared.embeddings import EmbeddingEndpoint, KernelEmbedder, build_embedding_endpoints, cosine
from shared.errors import ServiceUnavailable, UpstreamRefused
from shared.secrets import LocalSecrets
from tests.unit.resilience.helpers import FakeClock
from tools.simulator.embeddings import EncodingFormat, embed, encode

Handler = Callable[[httpx2.Request], httpx2.Response]
SECRET_TEXT = "upstream detail: deployment emb-7 quota exhausted for subscription 1234"


def answer(request: httpx2.Request) -> httpx2.Response:
    """What the simulator answers: one deterministic vector per input, in the requested format."""
    body = json.loads(request.content)
    texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
    fmt: EncodingFormat = "base64" if body.get("encoding_format") == "base64" else "float"
    data = [{"object": "embedding", "index": i, "embedding": encode(embed(t, 16), fmt)} for i, t in enumerate(texts)]
    return httpx2.Response(200, json={"object": "list", "data": data, "model": "emb",
                                      "usage": {"prompt_tokens": 3, "total_tokens": 3}})


def failing(status: int, headers: dict[str, str] | None = None) -> Handler:
    return lambda request: httpx2.Response(status, headers=headers or {}, json={"error": {"message": SECRET_TEXT}})


class Region:
    """One endpoint's embedding service over the real openai client, its transport swapped."""

    def __init__(self, name: str, priority: int, handler: Handler) -> None:
        self.handler = handler
        self.calls = 0
        client = AsyncAzureOpenAI(azure_endpoint=f"http://{name}", api_key="k", api_version="2024-10-21",
                                  max_retries=0, http_client=httpx2.AsyncClient(transport=httpx2.MockTransport(self)))
        self.endpoint = EmbeddingEndpoint(name, priority, AzureTextEmbedding(deployment_name="emb",
                                                                             async_client=client))

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        self.calls += 1
        return self.handler(request)


async def test_vectors_come_back_in_order_from_the_first_priority() -> None:
    primary, secondary = Region("primary", 0, answer), Region("secondary", 1, answer)
    embedder = KernelEmbedder([secondary.endpoint, primary.endpoint])
    vectors = await embedder.embed(["reset my password", "capital of France"])
    assert (primary.calls, secondary.calls) == (1, 0)
    assert cosine(vectors[0], embed("reset my password", 16)) == pytest.approx(1.0, abs=1e-6)
    assert cosine(vectors[1], embed("capital of France", 16)) == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("status", [429, 500, 503, 401])
async def test_a_failing_region_fails_over_to_the_next(status: int) -> None:
    primary, secondary = Region("primary", 0, failing(status)), Region("secondary", 1, answer)
    vectors = await KernelEmbedder([primary.endpoint, secondary.endpoint]).embed(["hello there"])
    assert len(vectors) == 1 and (primary.calls, secondary.calls) == (1, 1)


async def test_a_failed_region_is_skipped_for_its_retry_after_then_tried_again() -> None:
    clock = FakeClock()
    primary, secondary = Region("primary", 0, failing(429, {"retry-after": "20"})), Region("secondary", 1, answer)
    embedder = KernelEmbedder([primary.endpoint, secondary.endpoint], clock=clock, cooldown_s=5)
    await embedder.embed(["a"])
    await embedder.embed(["b"])
    assert primary.calls == 1  # the second lookup paid no round trip to the throttled region
    primary.handler = answer
    clock.t += 21
    await embedder.embed(["c"])
    assert primary.calls == 2 and secondary.calls == 2


async def test_when_every_region_fails_the_error_is_ours_and_carries_no_provider_text(
        caplog: pytest.LogCaptureFixture) -> None:
    regions = [Region("primary", 0, failing(503)), Region("secondary", 1, failing(500))]
    with caplog.at_level(logging.WARNING), pytest.raises(ServiceUnavailable) as info:
        await KernelEmbedder([r.endpoint for r in regions]).embed(["x"])
    assert SECRET_TEXT not in info.value.detail and "1234" not in caplog.text
    assert [r.calls for r in regions] == [1, 1]  # one attempt each: a cache miss must not wait


async def test_a_refused_text_is_not_sent_to_the_other_region() -> None:
    primary, secondary = Region("primary", 0, failing(400)), Region("secondary", 1, answer)
    with pytest.raises(UpstreamRefused) as info:
        await KernelEmbedder([primary.endpoint, secondary.endpoint]).embed(["x" * 10])
    assert secondary.calls == 0 and SECRET_TEXT not in info.value.detail


async def test_an_answer_with_the_wrong_number_of_vectors_fails_over() -> None:
    def short(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, json={"object": "list", "data": [], "model": "emb",
                                          "usage": {"prompt_tokens": 1, "total_tokens": 1}})
    primary, secondary = Region("primary", 0, short), Region("secondary", 1, answer)
    assert len(await KernelEmbedder([primary.endpoint, secondary.endpoint]).embed(["a", "b"])) == 2


async def test_services_are_built_only_for_endpoints_with_an_embedding_deployment() -> None:
    configs = [
        EndpointConfig(name="east", kind="azure_openai", endpoint="http://east", deployment="chat", model="m",
                       api_key_secret="key", embedding_deployment="text-embedding-3-small"),
        EndpointConfig(name="west", kind="azure_openai", endpoint="http://west", deployment="chat", model="m",
                       api_key_secret="key"),
        EndpointConfig(name="local", kind="openai", endpoint="http://local/v1", model="m", priority=2,
                       embedding_deployment="nomic-embed-text"),
    ]
    built = await build_embedding_endpoints(configs, credential=None, secrets=LocalSecrets({"key": SecretStr("s")}),
                                            timeout_s=4)
    assert [(e.name, e.priority, type(e.service)) for e in built] == [
        ("east", 0, AzureTextEmbedding), ("local", 2, OpenAITextEmbedding)]
    for e in built:
        assert isinstance(e.service, AzureTextEmbedding | OpenAITextEmbedding)
        assert e.service.client.max_retries == 0 and e.service.client.timeout == 4  # our layer decides
    assert built[0].service.ai_model_id == "text-embedding-3-small"


def test_an_embedder_needs_an_endpoint() -> None:
    with pytest.raises(ValueError, match="embedding_deployment"):
        KernelEmbedder([])
