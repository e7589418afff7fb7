"""Semantic Kernel's openai SDK clients: managed identity or a Key Vault key re-read when it rotates."""

from __future__ import annotations

from azure.core.credentials_async import AsyncTokenCredential
from azure.identity.aio import get_bearer_token_provider
from openai import AsyncAzureOpenAI, AsyncOpenAI, DefaultAsyncHttpxClient, Timeout

from shared.core.settings import RESPONSE_LIMIT_S, EndpointConfig
from shared.identity.secrets import SecretProvider
from shared.upstream.wire import COGNITIVE_SERVICES_SCOPE, key_reader, key_transport


async def build_client(
    config: EndpointConfig, *, credential: AsyncTokenCredential | None, secrets: SecretProvider,
    timeout_s: float,
) -> AsyncOpenAI:
    """One endpoint's SDK client (AsyncAzureOpenAI for kind azure_openai) with the SDK's own
    retries off: our resilience layer retries. Shared by the chat and the embedding services.
    A whole answer sends nothing until it is done, so reads wait up to RESPONSE_LIMIT_S: the
    resilience policy bounds each attempt by the time its request asks for (shared/upstream/wire.py)."""
    timeout = Timeout(timeout_s, read=RESPONSE_LIMIT_S)
    name = config.api_key_secret
    if name is not None:
        # The SDK sets the key's header itself (from api_key); the transport re-reads it on a 401.
        http_client = DefaultAsyncHttpxClient(transport=await key_transport(config, secrets, name))
        if config.kind == "azure_openai":
            return AsyncAzureOpenAI(azure_endpoint=config.endpoint, api_version=config.api_version,
                                    api_key=key_reader(secrets, name), max_retries=0, timeout=timeout,
                                    http_client=http_client)
        return AsyncOpenAI(base_url=config.endpoint, api_key=key_reader(secrets, name), max_retries=0,
                           timeout=timeout, http_client=http_client)
    if config.kind == "azure_openai":
        if credential is None:
            raise ValueError(f"endpoint {config.name!r} has no api_key_secret and no managed identity")
        return AsyncAzureOpenAI(
            azure_endpoint=config.endpoint, api_version=config.api_version,
            # Managed identity: the provider asks the credential per call, which caches and refreshes.
            azure_ad_token_provider=get_bearer_token_provider(credential, COGNITIVE_SERVICES_SCOPE),
            max_retries=0, timeout=timeout,
        )
    # OpenAI-compatible servers such as Ollama or vLLM may need no key; the SDK insists on one.
    return AsyncOpenAI(base_url=config.endpoint, api_key="unused", max_retries=0, timeout=timeout)
