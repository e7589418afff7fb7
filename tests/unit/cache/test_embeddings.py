"""The Embedder over each endpoint's wire: real HTTP servers answering as the simulator does."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager

import pytest
from aiohttp import web
from pydantic import SecretStr

from shared.core.errors import ServiceUnavailable, UpstreamRefused
from shared.core.metering import Meter, metering
from shared.core.settings import EndpointConfig
from shared.identity.secrets import LocalSecrets
from shared.upstream.embeddings import EmbeddingEndpoint, EndpointEmbedder, cosine, embedding_endpoints
from shared.upstream.endpoints import Endpoint
from shared.upstream.wire import build_wire
from tests.unit.resilience.helpers import FakeClock
from tests.unit.shared.http_server import RecordingServer
from tools.simulator.embeddings import embed

Handler = Callable[[web.Request, bytes], Awaitable[web.StreamResponse]]
SECRET_TEXT = "upstream detail: deployment emb-7 quota exhausted for subscription 1234"
SECRETS = LocalSecrets({"key": SecretStr("s")})


async def answer(request: web.Request, body: bytes) -> web.StreamResponse:
    """What the simulator answers: one deterministic vector per input, numbered, in any order."""
    texts = json.loads(body)["input"]
    data = [{"object": "embedding", "index": i, "embedding": embed(t, 16)} for i, t in enumerate(texts)]
    return web.json_response({"object": "list", "data": data[::-1], "model": "emb",
                              "usage": {"prompt_tokens": 3 * len(texts), "total_tokens": 3 * len(texts)}})


def failing(status: int, headers: dict[str, str] | None = None) -> Handler:
    async def handle(request: web.Request, body: bytes) -> web.StreamResponse:
        return web.json_response({"error": {"message": SECRET_TEXT}}, status=status, headers=headers)
    return handle


class Region:
    """One endpoint's embedding deployment: a real server, and the wire the embedder uses for it."""

    def __init__(self, server: RecordingServer, endpoint: EmbeddingEndpoint) -> None:
        self.server = server
        self.endpoint = endpoint

    @property
    def calls(self) -> int:
        return len(self.server.seen)


@asynccontextmanager
async def regions(*handlers: Handler) -> AsyncIterator[list[Region]]:
    async with AsyncExitStack() as stack:
        built = []
        for priority, handler in enumerate(handlers):
            server = await stack.enter_async_context(RecordingServer(handler))
            config = EndpointConfig(name=f"r{priority}", kind="azure_openai", endpoint=server.url, deployment="chat",
                                    model="m", api_key_secret="key", embedding_deployment="emb")
            wire = await build_wire(config, credential=None, secrets=SECRETS, timeout_s=5)
            stack.push_async_callback(wire.close)
            built.append(Region(server, EmbeddingEndpoint(config.name, priority, "emb", wire)))
        yield built


async def test_vectors_come_back_in_input_order_from_the_first_priority() -> None:
    async with regions(answer, answer) as (primary, secondary):
        vectors = await EndpointEmbedder([secondary.endpoint, primary.endpoint]).embed(
            ["reset my password", "capital of France"])
        assert (primary.calls, secondary.calls) == (1, 0)
        sent = primary.server.seen[0]
        assert sent.path_qs.startswith("/openai/deployments/emb/embeddings?")
        assert json.loads(sent.body) == {"input": ["reset my password", "capital of France"], "model": "emb"}
    assert cosine(vectors[0], embed("reset my password", 16)) == pytest.approx(1.0, abs=1e-6)
    assert cosine(vectors[1], embed("capital of France", 16)) == pytest.approx(1.0, abs=1e-6)


async def test_the_usage_an_embedding_reports_is_charged_to_the_request() -> None:
    meter = Meter(model="m", prompt_tokens=0)
    async with regions(answer) as (primary,):
        with metering(meter):
            await EndpointEmbedder([primary.endpoint]).embed(["a", "b"])
    assert meter.embedding_usage.prompt_tokens == 6


@pytest.mark.parametrize("status", [429, 500, 503, 401])
async def test_a_failing_region_fails_over_to_the_next(status: int) -> None:
    async with regions(failing(status), answer) as (primary, secondary):
        vectors = await EndpointEmbedder([primary.endpoint, secondary.endpoint]).embed(["hello there"])
        assert len(vectors) == 1 and (primary.calls, secondary.calls) == (1, 1)


async def test_a_failed_region_is_skipped_for_its_retry_after_then_tried_again() -> None:
    clock = FakeClock()
    async with regions(failing(429, {"retry-after": "20"}), answer) as (primary, secondary):
        embedder = EndpointEmbedder([primary.endpoint, secondary.endpoint], clock=clock, cooldown_s=5)
        await embedder.embed(["a"])
        await embedder.embed(["b"])
        assert primary.calls == 1  # the second lookup paid no round trip to the throttled region
        primary.server.handler = answer
        clock.t += 21
        await embedder.embed(["c"])
        assert primary.calls == 2 and secondary.calls == 2


async def test_when_every_region_fails_the_error_is_ours_and_carries_no_provider_text(
        caplog: pytest.LogCaptureFixture) -> None:
    async with regions(failing(503), failing(500)) as both:
        with caplog.at_level(logging.DEBUG), pytest.raises(ServiceUnavailable) as info:
            await EndpointEmbedder([r.endpoint for r in both]).embed(["x"])
        assert [r.calls for r in both] == [1, 1]  # one attempt each: a cache miss must not wait
    assert SECRET_TEXT not in info.value.detail and "1234" not in caplog.text


async def test_a_refused_text_is_not_sent_to_the_other_region() -> None:
    async with regions(failing(400), answer) as (primary, secondary):
        with pytest.raises(UpstreamRefused) as info:
            await EndpointEmbedder([primary.endpoint, secondary.endpoint]).embed(["x" * 10])
        assert secondary.calls == 0 and SECRET_TEXT not in info.value.detail


@pytest.mark.parametrize("odd", [
    {"object": "list", "data": []},  # too few vectors
    {"object": "list", "data": [{"index": 0, "embedding": "AAAA"}, {"index": 1, "embedding": []}]},
    {"object": "list"},
])
async def test_an_answer_that_is_not_one_vector_per_text_fails_over(odd: dict[str, object]) -> None:
    async def short(request: web.Request, body: bytes) -> web.StreamResponse:
        return web.json_response(odd)

    async with regions(short, answer) as (primary, secondary):
        assert len(await EndpointEmbedder([primary.endpoint, secondary.endpoint]).embed(["a", "b"])) == 2
        assert (primary.calls, secondary.calls) == (1, 1)


async def test_wires_are_built_only_for_endpoints_with_an_embedding_deployment() -> None:
    configs = [
        EndpointConfig(name="east", kind="azure_openai", endpoint="http://east", deployment="chat", model="m",
                       api_key_secret="key", embedding_deployment="text-embedding-3-small"),
        EndpointConfig(name="west", kind="azure_openai", endpoint="http://west", deployment="chat", model="m",
                       api_key_secret="key"),
        EndpointConfig(name="local", kind="openai", endpoint="http://local/v1", model="m", priority=2,
                       embedding_deployment="nomic-embed-text"),
    ]
    chat = [Endpoint(c, await build_wire(c, credential=None, secrets=SECRETS, timeout_s=30)) for c in configs]
    built = embedding_endpoints(chat, timeout_s=4)
    assert [(e.name, e.priority, e.deployment, e.timeout_s) for e in built] == [
        ("east", 0, "text-embedding-3-small", 4), ("local", 2, "nomic-embed-text", 4)]
    assert [e.wire for e in built] == [chat[0].wire, chat[2].wire], "one wire per endpoint, the chat's own"
    assert str(built[0].wire.url("/embeddings", "text-embedding-3-small")).startswith(
        "http://east/openai/deployments/text-embedding-3-small/embeddings?api-version=")
    assert str(built[1].wire.url("/embeddings", "nomic-embed-text")) == "http://local/v1/embeddings"
    for e in chat:
        await e.wire.close()


def test_an_embedder_needs_an_endpoint() -> None:
    with pytest.raises(ValueError, match="embedding_deployment"):
        EndpointEmbedder([])
