"""Semantic Kernel's openai SDK clients, over their endpoint's wire transport (one connection pool
per endpoint, whichever door a request came in by): managed identity, or a Key Vault key re-read
when it rotates (the transport's own 401 handling)."""

from __future__ import annotations

from typing import Any, cast

import httpx2
from azure.core.credentials_async import AsyncTokenCredential
from azure.identity.aio import get_bearer_token_provider
from openai import AsyncAzureOpenAI, AsyncOpenAI, DefaultAsyncHttpxClient, Timeout

from shared.core.settings import RESPONSE_LIMIT_S, EndpointConfig
from shared.identity.secrets import SecretProvider
from shared.upstream.wire import COGNITIVE_SERVICES_SCOPE, key_reader


async def build_client(
    config: EndpointConfig, *, transport: httpx2.AsyncBaseTransport, credential: AsyncTokenCredential | None,
    secrets: SecretProvider, timeout_s: float,
) -> AsyncOpenAI:
    """One endpoint's SDK client (AsyncAzureOpenAI for kind azure_openai) over `transport`, the
    endpoint wire's (build_wire), with the SDK's own retries off: our resilience layer retries.
    A whole answer sends nothing until it is done, so reads wait up to RESPONSE_LIMIT_S: the
    resilience policy bounds each attempt by the time its request asks for (shared/upstream/wire.py)."""
    timeout = Timeout(timeout_s, read=RESPONSE_LIMIT_S)
    # The wire's transport is httpx2's, which speaks httpx's transport interface.
    http_client = DefaultAsyncHttpxClient(transport=cast(Any, transport))
    name = config.api_key_secret
    if name is not None:
        await secrets.get(name)  # a missing secret fails here, at start, naming it
        # The SDK sets the key's header itself (from api_key); the transport re-reads it on a 401.
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
            max_retries=0, timeout=timeout, http_client=http_client,
        )
    # OpenAI-compatible servers such as Ollama or vLLM may need no key; the SDK insists on one.
    return AsyncOpenAI(base_url=config.endpoint, api_key="unused", max_retries=0, timeout=timeout,
                       http_client=http_client)
