"""Semantic Kernel's SDK clients read their Key Vault key per request and, on a 401, re-read it
once (issue 13), through the transport they share with shared/upstream/wire.py (tested there)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Literal

import httpx2
import pytest
from pydantic import SecretStr

from shared.core.errors import ConfigError
from shared.core.settings import EndpointConfig
from shared.identity.secrets import LocalSecrets
from shared.upstream.clients import build_client
from shared.upstream.wire import build_wire
from tests.unit.shared.http_server import RecordingServer, RotatingSecrets, accepting


@pytest.fixture
async def server() -> AsyncIterator[RecordingServer]:
    async with RecordingServer() as running:
        yield running


async def test_the_sdk_client_retries_a_401_once_with_the_rotated_key(server: RecordingServer) -> None:
    server.handler = accepting("new")
    secrets = RotatingSecrets("old", "new")
    config = EndpointConfig(name="e", kind="azure_openai", endpoint=server.url, deployment="chat", model="m",
                            api_key_secret="key")
    wire = await build_wire(config, credential=None, secrets=secrets, timeout_s=5)
    client = await build_client(config, transport=wire.transport, credential=None, secrets=secrets, timeout_s=5)
    answer = await client.post("/chat/completions", body={"model": "chat", "messages": []}, cast_to=object)
    assert answer == {"id": "c", "choices": []}
    await client.close()
    assert [s.headers["api-key"] for s in server.seen] == ["old", "new"] and secrets.forced_reads == 1


async def test_the_sdk_client_and_the_wire_of_an_endpoint_share_one_connection(server: RecordingServer) -> None:
    secrets = LocalSecrets({"key": SecretStr("k")})
    config = EndpointConfig(name="e", kind="azure_openai", endpoint=server.url, deployment="chat", model="m",
                            api_key_secret="key")
    wire = await build_wire(config, credential=None, secrets=secrets, timeout_s=5)
    client = await build_client(config, transport=wire.transport, credential=None, secrets=secrets, timeout_s=5)
    await wire.post("/chat/completions", {"model": "chat", "messages": []})
    await client.post("/chat/completions", body={"model": "chat", "messages": []}, cast_to=object)
    await wire.post("/chat/completions", {"model": "chat", "messages": []})
    await client.close()
    await wire.close()
    peers = {s.peer for s in server.seen}
    assert len(server.seen) == 3 and len(peers) == 1, f"one pooled connection for both doors, saw {peers}"


@pytest.mark.parametrize("kind", ["azure_openai", "openai"])
async def test_a_missing_secret_fails_when_the_client_is_built(kind: Literal["azure_openai", "openai"]) -> None:
    config = EndpointConfig(name="e", kind=kind, endpoint="http://model", deployment="chat", model="m",
                            api_key_secret="absent")
    with pytest.raises(ConfigError, match="absent"):
        await build_client(config, transport=httpx2.AsyncHTTPTransport(), credential=None,
                           secrets=LocalSecrets({"other": SecretStr("x")}), timeout_s=5)
