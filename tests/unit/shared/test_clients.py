"""The SDK client reads its Key Vault key per request and, on a 401, re-reads it once (issue 13)."""

from __future__ import annotations

import json
from typing import Literal

import httpx2
import pytest
from pydantic import SecretStr

from shared.clients import KeyRefreshTransport, build_client
from shared.config import EndpointConfig
from shared.errors import ConfigError
from shared.secrets import LocalSecrets


class RotatingSecrets:
    """A secret store whose value a test rotates; counts re-reads after a refusal."""

    def __init__(self, value: str) -> None:
        self.value = value
        self.forced_reads = 0

    async def get(self, name: str, *, read_since: float | None = None) -> str:
        self.forced_reads += read_since is not None
        return self.value

    async def close(self) -> None:
        return None


def endpoint_that_accepts(keys: set[str], sent: list[str]) -> httpx2.MockTransport:
    def handle(request: httpx2.Request) -> httpx2.Response:
        sent.append(request.headers.get("api-key", ""))
        if request.headers.get("api-key") not in keys:
            return httpx2.Response(401, json={"error": {"code": "401", "message": "invalid key"}})
        return httpx2.Response(200, json={"id": "c", "object": "chat.completion", "created": 0, "model": "m",
                                          "choices": [{"index": 0, "finish_reason": "stop",
                                                       "message": {"role": "assistant", "content": "hi"}}]})

    return httpx2.MockTransport(handle)


async def send(transport: KeyRefreshTransport, key: str) -> httpx2.Response:
    async with httpx2.AsyncClient(transport=transport) as client:
        return await client.post("http://model/chat", headers={"api-key": key}, content=json.dumps({"x": 1}))


async def test_a_401_with_a_rotated_key_is_sent_once_more_with_the_new_key() -> None:
    secrets, sent = RotatingSecrets("new"), list[str]()
    transport = KeyRefreshTransport(endpoint_that_accepts({"new"}, sent), secrets, "k", endpoint="e",
                                    header="api-key")
    assert (await send(transport, "old")).status_code == 200
    assert sent == ["old", "new"] and secrets.forced_reads == 1


async def test_a_401_with_a_key_that_is_still_current_is_returned_after_one_call() -> None:
    secrets, sent = RotatingSecrets("same"), list[str]()
    transport = KeyRefreshTransport(endpoint_that_accepts(set(), sent), secrets, "k", endpoint="e",
                                    header="api-key")
    assert (await send(transport, "same")).status_code == 401
    assert sent == ["same"]


@pytest.mark.parametrize("kind", ["azure_openai", "openai"])
async def test_a_missing_secret_fails_when_the_client_is_built(kind: Literal["azure_openai", "openai"]) -> None:
    config = EndpointConfig(name="e", kind=kind, endpoint="http://model", deployment="chat", model="m",
                            api_key_secret="absent")
    with pytest.raises(ConfigError, match="absent"):
        await build_client(config, credential=None, secrets=LocalSecrets({"other": SecretStr("x")}), timeout_s=5)
