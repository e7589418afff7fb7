"""Semantic Kernel's openai SDK clients: managed identity or a Key Vault key re-read when it rotates."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import httpx2
from azure.core.credentials_async import AsyncTokenCredential
from azure.identity.aio import get_bearer_token_provider
from openai import AsyncAzureOpenAI, AsyncOpenAI, DefaultAsyncHttpxClient

from shared.config import EndpointConfig
from shared.secrets import SecretProvider
from shared.wire import COGNITIVE_SERVICES_SCOPE, LIMITS, KeyRefreshTransport


def _key_reader(secrets: SecretProvider, name: str) -> Callable[[], Awaitable[str]]:
    async def read() -> str:
        # Per request: the provider's cache answers until its TTL, then Key Vault does.
        return await secrets.get(name)

    return read


async def build_client(
    config: EndpointConfig, *, credential: AsyncTokenCredential | None, secrets: SecretProvider,
    timeout_s: float,
) -> AsyncOpenAI:
    """One endpoint's SDK client (AsyncAzureOpenAI for kind azure_openai) with the SDK's own
    retries off: our resilience layer retries. Shared by the chat and the embedding services."""
    name = config.api_key_secret
    if name is not None:
        await secrets.get(name)  # a missing secret fails at start, naming it, not on the first call
        azure = config.kind == "azure_openai"
        transport = KeyRefreshTransport(
            httpx2.AsyncHTTPTransport(limits=LIMITS), secrets, name, endpoint=config.name,
            header="api-key" if azure else "authorization", prefix="" if azure else "Bearer ",
        )
        http_client = DefaultAsyncHttpxClient(transport=transport)
        if azure:
            return AsyncAzureOpenAI(azure_endpoint=config.endpoint, api_version=config.api_version,
                                    api_key=_key_reader(secrets, name), max_retries=0, timeout=timeout_s,
                                    http_client=http_client)
        return AsyncOpenAI(base_url=config.endpoint, api_key=_key_reader(secrets, name), max_retries=0,
                           timeout=timeout_s, http_client=http_client)
    if config.kind == "azure_openai":
        if credential is None:
            raise ValueError(f"endpoint {config.name!r} has no api_key_secret and no managed identity")
        return AsyncAzureOpenAI(
            azure_endpoint=config.endpoint, api_version=config.api_version,
            # Managed identity: the provider asks the credential per call, which caches and refreshes.
            azure_ad_token_provider=get_bearer_token_provider(credential, COGNITIVE_SERVICES_SCOPE),
            max_retries=0, timeout=timeout_s,
        )
    # OpenAI-compatible servers such as Ollama or vLLM may need no key; the SDK insists on one.
    return AsyncOpenAI(base_url=config.endpoint, api_key="unused", max_retries=0, timeout=timeout_s)
