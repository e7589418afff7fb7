"""The pass-through's own wire client against a real HTTP server, compared with the openai SDK."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Literal

import httpx2
import pytest
from aiohttp import web
from azure.core.credentials import AccessToken
from openai import AsyncAzureOpenAI, AsyncOpenAI
from pydantic import SecretStr

from shared.core.errors import ConfigError
from shared.core.settings import EndpointConfig
from shared.identity.secrets import LocalSecrets
from shared.upstream.errors import (
    CredentialsRefused,
    EndpointFailed,
    EndpointThrottled,
    EndpointTimedOut,
    StreamErrorEvent,
)
from shared.upstream.sse import sse_data
from shared.upstream.wire import (
    COGNITIVE_SERVICES_SCOPE,
    KeyRefreshTransport,
    ModelWire,
    build_wire,
)
from tests.unit.resilience.helpers import FakeClock
from tests.unit.shared.http_server import RecordingServer, RotatingSecrets, accepting, sse

ROOT = Path(__file__).resolve().parents[3]
BODY = {"model": "chat-dep", "messages": [{"role": "user", "content": "hi ✓"}], "max_tokens": 5}


@pytest.fixture
async def server() -> AsyncIterator[RecordingServer]:
    async with RecordingServer() as running:
        yield running


def config(url: str, kind: Literal["azure_openai", "openai"] = "azure_openai", **extra: Any) -> EndpointConfig:
    return EndpointConfig(name="e", kind=kind, endpoint=url, deployment="chat-dep", model="m",
                          api_version="2024-10-21", **extra)


async def keyed_wire(url: str, kind: Literal["azure_openai", "openai"] = "azure_openai",
                     key: str = "k-1") -> ModelWire:
    return await build_wire(config(url, kind, api_key_secret="key"), credential=None,
                            secrets=LocalSecrets({"key": SecretStr(key)}), timeout_s=5)


# --- URLs and auth headers, as the SDK sends them -------------------------------------------------

@pytest.mark.parametrize("deployment", ["chat-dep", "gpt 4o/mini:v2"])
@pytest.mark.parametrize("path", ["/chat/completions", "/embeddings"])
async def test_azure_urls_and_key_header_are_the_sdks(server: RecordingServer, deployment: str, path: str) -> None:
    body = {**BODY, "model": deployment}
    sdk = AsyncAzureOpenAI(azure_endpoint=server.url + "/", api_version="2024-10-21", api_key="k-1", max_retries=0)
    await sdk.post(path, body=body, cast_to=object)
    wire = await keyed_wire(server.url + "/")
    await wire.post(path, body)
    await sdk.close()
    await wire.close()
    by_sdk, by_wire = server.seen
    assert by_wire.path_qs == by_sdk.path_qs
    assert by_wire.path_qs.startswith("/openai/deployments/") and "api-version=2024-10-21" in by_wire.path_qs
    assert by_wire.headers["api-key"] == by_sdk.headers["api-key"] == "k-1"
    assert "authorization" not in by_wire.headers
    assert json.loads(by_wire.body) == json.loads(by_sdk.body) == body


@pytest.mark.parametrize("base", ["/v1", "/v1/", ""])
@pytest.mark.parametrize("keyed", [True, False])
async def test_openai_urls_and_bearer_header_are_the_sdks(server: RecordingServer, base: str, keyed: bool) -> None:
    sdk = AsyncOpenAI(base_url=server.url + base, api_key="k-1" if keyed else "unused", max_retries=0)
    await sdk.post("/chat/completions", body=BODY, cast_to=object)
    if keyed:
        wire = await keyed_wire(server.url + base, "openai")
    else:
        wire = await build_wire(config(server.url + base, "openai"), credential=None, secrets=LocalSecrets({}),
                                timeout_s=5)
    await wire.post("/chat/completions", BODY)
    await sdk.close()
    await wire.close()
    by_sdk, by_wire = server.seen
    assert by_wire.path_qs == by_sdk.path_qs
    assert by_wire.headers["authorization"] == by_sdk.headers["authorization"]
    assert by_wire.headers["authorization"] == ("Bearer k-1" if keyed else "Bearer unused")


@pytest.mark.parametrize("kind", ["azure_openai", "openai"])
async def test_a_missing_secret_fails_when_the_wire_is_built(kind: Literal["azure_openai", "openai"]) -> None:
    with pytest.raises(ConfigError, match="absent"):
        await build_wire(config("http://model", kind, api_key_secret="absent"), credential=None,
                         secrets=LocalSecrets({"other": SecretStr("x")}), timeout_s=5)


async def test_azure_without_a_key_needs_a_managed_identity() -> None:
    with pytest.raises(ValueError, match="managed identity"):
        await build_wire(config("http://model"), credential=None, secrets=LocalSecrets({}), timeout_s=5)


# --- Key rotation --------------------------------------------------------------------------------

async def test_a_401_with_a_rotated_key_is_sent_once_more_with_the_new_key(server: RecordingServer) -> None:
    server.handler = accepting("new")
    secrets = RotatingSecrets("old", "new")
    wire = await build_wire(config(server.url, api_key_secret="key"), credential=None, secrets=secrets, timeout_s=5)
    assert await wire.post("/chat/completions", BODY) == {"id": "c", "choices": []}
    await wire.close()
    assert [s.headers["api-key"] for s in server.seen] == ["old", "new"] and secrets.forced_reads == 1


async def test_a_401_with_a_key_that_is_still_current_is_an_error_after_one_call(server: RecordingServer) -> None:
    server.handler = accepting("other")
    secrets = RotatingSecrets("same", "same")
    wire = await build_wire(config(server.url, api_key_secret="key"), credential=None, secrets=secrets, timeout_s=5)
    with pytest.raises(CredentialsRefused) as info:
        await wire.post("/chat/completions", BODY)
    await wire.close()
    assert info.value.status == 401 and len(server.seen) == 1


async def test_the_transport_retries_an_openai_bearer_key_with_its_prefix() -> None:
    sent: list[str] = []

    def handle(request: httpx2.Request) -> httpx2.Response:
        sent.append(request.headers["authorization"])
        return httpx2.Response(200 if request.headers["authorization"] == "Bearer new" else 401)

    transport = KeyRefreshTransport(httpx2.MockTransport(handle), RotatingSecrets("old", "new"), "k", endpoint="e",
                                    header="authorization", prefix="Bearer ")
    async with httpx2.AsyncClient(transport=transport) as client:
        response = await client.post("http://model/chat", headers={"authorization": "Bearer old"})
    assert response.status_code == 200 and sent == ["Bearer old", "Bearer new"]


# --- Managed identity ----------------------------------------------------------------------------

class CountingCredential:
    """An AsyncTokenCredential that issues numbered tokens living `lifetime_s`."""

    def __init__(self, lifetime_s: float) -> None:
        self.lifetime_s = lifetime_s
        self.scopes: list[str] = []

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.scopes.extend(scopes)
        await asyncio.sleep(0)  # let concurrent callers pile up on the lock, as a real token request would
        return AccessToken(f"t{len(self.scopes)}", int(time.time() + self.lifetime_s))

    async def close(self) -> None:
        return None


async def test_a_managed_identity_token_is_asked_once_and_shared(server: RecordingServer) -> None:
    credential = CountingCredential(3600)
    wire = await build_wire(config(server.url), credential=credential,  # type: ignore[arg-type]
                            secrets=LocalSecrets({}), timeout_s=5)
    await asyncio.gather(*(wire.post("/chat/completions", BODY) for _ in range(4)))
    await wire.post("/chat/completions", BODY)
    await wire.close()
    assert credential.scopes == [COGNITIVE_SERVICES_SCOPE]
    assert {s.headers["authorization"] for s in server.seen} == {"Bearer t1"}
    assert all("api-key" not in s.headers for s in server.seen)


async def test_a_token_close_to_its_expiry_is_renewed_before_the_next_request(server: RecordingServer) -> None:
    # Inside azure-core's refresh window (5 minutes, less up to one of jitter) from the start.
    credential = CountingCredential(200)
    wire = await build_wire(config(server.url), credential=credential,  # type: ignore[arg-type]
                            secrets=LocalSecrets({}), timeout_s=5)
    await wire.post("/chat/completions", BODY)
    await wire.post("/chat/completions", BODY)
    await wire.close()
    assert [s.headers["authorization"] for s in server.seen] == ["Bearer t1", "Bearer t2"]


async def test_a_token_is_renewed_when_the_injected_clock_passes_its_refresh_window(server: RecordingServer) -> None:
    # The token's expiry is wall time: the wire reads the composition root's clock, so moving it
    # past the refresh window (an hour's token, less 5 minutes) renews the token with no wait.
    clock = FakeClock(t=time.time() - 1_760_000_000.0)
    credential = CountingCredential(3600)
    wire = await build_wire(config(server.url), credential=credential,  # type: ignore[arg-type]
                            secrets=LocalSecrets({}), timeout_s=5, clock=clock)
    await wire.post("/chat/completions", BODY)
    clock.t += 3000  # 50 minutes on: still outside the window (jitter at most 1 minute)
    await wire.post("/chat/completions", BODY)
    clock.t += 400  # 56 minutes 40 s on: inside it
    await wire.post("/chat/completions", BODY)
    await wire.close()
    assert [s.headers["authorization"] for s in server.seen] == ["Bearer t1", "Bearer t1", "Bearer t2"]


# --- Answers and errors --------------------------------------------------------------------------

async def test_an_error_status_carries_its_status_headers_and_body(server: RecordingServer) -> None:
    async def throttled(request: web.Request, body: bytes) -> web.StreamResponse:
        return web.json_response({"error": {"message": "private"}}, status=429, headers={"retry-after": "7"})

    server.handler = throttled
    wire = await keyed_wire(server.url)
    with pytest.raises(EndpointThrottled) as info:
        await wire.post("/chat/completions", BODY)
    await wire.close()
    assert (info.value.status, info.value.retry_after_s) == (429, 7.0)
    assert info.value.body == {"error": {"message": "private"}} and "private" not in str(info.value)


async def test_a_call_can_be_bounded_below_the_clients_timeout(server: RecordingServer) -> None:
    # The semantic cache's embedding shares the endpoint's wire but must not wait as long as a chat.
    async def slow(request: web.Request, body: bytes) -> web.StreamResponse:
        await asyncio.sleep(2)
        return web.json_response({"data": []})

    server.handler = slow
    wire = await keyed_wire(server.url)  # the client's own timeout: 5 s
    with pytest.raises(EndpointTimedOut):
        await wire.post("/embeddings", {"model": "emb", "input": ["x"]}, timeout_s=0.2)
    await wire.close()


async def test_an_error_status_with_a_text_body_keeps_the_text(server: RecordingServer) -> None:
    async def bad_gateway(request: web.Request, body: bytes) -> web.StreamResponse:
        return web.Response(status=502, text="<html>bad gateway</html>")

    server.handler = bad_gateway
    wire = await keyed_wire(server.url)
    with pytest.raises(EndpointFailed) as info:
        await wire.post("/chat/completions", BODY)
    await wire.close()
    assert (info.value.status, info.value.body) == (502, "<html>bad gateway</html>")


@pytest.mark.parametrize("answer", ["[1, 2]", "not json"])
async def test_a_2xx_that_is_not_a_json_object_is_a_value_error(server: RecordingServer, answer: str) -> None:
    async def odd(request: web.Request, body: bytes) -> web.StreamResponse:
        return web.Response(text=answer, content_type="application/json")

    server.handler = odd
    wire = await keyed_wire(server.url)
    with pytest.raises(ValueError):  # json's own error or ours: both are ValueError
        await wire.post("/chat/completions", BODY)
    await wire.close()


async def test_a_closed_wire_sends_nothing(server: RecordingServer) -> None:
    wire = await keyed_wire(server.url)
    await wire.close()
    with pytest.raises(RuntimeError, match="closed"):
        await wire.post("/chat/completions", BODY)
    assert server.seen == []


# --- Streams -------------------------------------------------------------------------------------

async def collect(wire: ModelWire, body: dict[str, Any] = BODY) -> list[dict[str, Any]]:
    return [chunk async for chunk in wire.stream("/chat/completions", body)]


async def test_a_stream_ends_at_done_and_skips_comments_and_events_without_data(server: RecordingServer) -> None:
    server.handler = sse(b": keep-alive\n\n", b"event: ping\n\n", b'data: {"n": 1}\n\n', b"id: 7\nretry: 10\n",
                         b'data: {"n": 2}\n\n', b"data: [DONE]\n\n", b'data: {"n": 3}\n\n')
    wire = await keyed_wire(server.url)
    assert await collect(wire) == [{"n": 1}, {"n": 2}]
    await wire.close()


async def test_a_stream_without_done_ends_with_its_body(server: RecordingServer) -> None:
    server.handler = sse(b'data: {"n": 1}\r\n\r\n', b'data: {"n": 2}\r\rdata: {"cut": ')
    wire = await keyed_wire(server.url)
    assert await collect(wire) == [{"n": 1}, {"n": 2}]
    await wire.close()


async def test_an_error_event_raises_with_its_body(server: RecordingServer) -> None:
    server.handler = sse(b'data: {"n": 1}\n\n', b'data: {"error": {"message": "overloaded"}}\n\n')
    wire = await keyed_wire(server.url)
    received: list[dict[str, Any]] = []
    with pytest.raises(StreamErrorEvent) as info:
        async for chunk in wire.stream("/chat/completions", BODY):
            received.append(chunk)
    await wire.close()
    assert received == [{"n": 1}] and info.value.body == {"message": "overloaded"}
    assert "overloaded" not in str(info.value)


async def test_an_error_status_before_the_stream_is_read_and_raised(server: RecordingServer) -> None:
    async def unavailable(request: web.Request, body: bytes) -> web.StreamResponse:
        return web.json_response({"error": {"code": "503"}}, status=503, headers={"retry-after-ms": "1500"})

    server.handler = unavailable
    wire = await keyed_wire(server.url)
    with pytest.raises(EndpointFailed) as info:
        await collect(wire)
    await wire.close()
    assert info.value.status == 503 and info.value.body == {"error": {"code": "503"}}
    assert info.value.retry_after_s == 1.5


async def test_a_stream_closed_early_closes_its_response(server: RecordingServer) -> None:
    gone = asyncio.Event()

    async def endless(request: web.Request, body: bytes) -> web.StreamResponse:
        response = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await response.prepare(request)
        try:
            while True:
                await response.write(b'data: {"n": 1}\n\n')
                await asyncio.sleep(0.01)
        except (ConnectionError, asyncio.CancelledError):
            gone.set()
            raise

    server.handler = endless
    responses: list[httpx2.Response] = []

    async def keep(response: httpx2.Response) -> None:
        responses.append(response)

    transport = httpx2.AsyncHTTPTransport()
    client = httpx2.AsyncClient(transport=transport, event_hooks={"response": [keep]})
    wire = ModelWire(config(server.url), client, transport=transport, auth_name="api-key", auth=None,
                     static_auth="k")
    chunks = wire.stream("/chat/completions", BODY)
    assert await anext(chunks) == {"n": 1}
    assert not responses[0].is_closed
    await chunks.aclose()
    assert responses[0].is_closed
    await asyncio.wait_for(gone.wait(), timeout=30)  # and the server saw its client go
    await wire.close()


async def test_a_stream_read_to_done_leaves_its_connection_for_the_next_request(server: RecordingServer) -> None:
    server.handler = sse(b'data: {"n": 1}\n\n', b"data: [DONE]\n\n")
    wire = await keyed_wire(server.url)
    for _ in range(3):
        assert await collect(wire) == [{"n": 1}]
    await wire.close()
    assert len(server.seen) == 3 and len({s.peer for s in server.seen}) == 1


async def chunks_of(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


@pytest.mark.parametrize("parts", [
    (b'data: {"a":\n', b'data: 1}\n\n'),  # multi-line data joined by a newline
    (b'data: {"a":\r', b'\ndata: 1}\r\n\r\n'),  # a CRLF cut between its CR and LF is one line end
    (b'data:{"a": 1}\r\r',),  # no space after the colon; CR line ends
    (b'data: {"a": 1}\n', b"\n", b": trailing comment\n"),
])
async def test_events_are_split_as_the_sdk_splits_them(parts: tuple[bytes, ...]) -> None:
    events = [json.loads(data) async for data in sse_data(chunks_of(*parts))]
    assert events == [{"a": 1}]


async def test_line_breaks_other_than_cr_and_lf_stay_inside_the_data() -> None:
    text = "a\u2028b\x0bc\x85d"
    raw = b"data: " + json.dumps({"t": text}, ensure_ascii=False).encode() + b"\n\n"
    assert [json.loads(d) async for d in sse_data(chunks_of(raw[:9], raw[9:]))] == [{"t": text}]


# --- Cold start ----------------------------------------------------------------------------------

def test_the_pass_through_and_the_embedder_load_neither_openai_nor_semantic_kernel() -> None:
    code = ("import json, sys, shared.upstream.passthrough, shared.upstream.embeddings, shared.upstream.wire\n"
            "import shared.upstream.failures\n"
            "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('openai', 'semantic_kernel'))))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=600,
                         check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
