"""The model endpoints' SDK clients: managed identity or a Key Vault key that is re-read when it rotates."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

import httpx2
from azure.core.credentials_async import AsyncTokenCredential
from azure.identity.aio import get_bearer_token_provider
from openai import AsyncAzureOpenAI, AsyncOpenAI, DefaultAsyncHttpxClient

from shared.config import EndpointConfig
from shared.secrets import SecretProvider

log = logging.getLogger(__name__)

COGNITIVE_SERVICES_SCOPE = "https://cognitiveservices.azure.com/.default"
# The openai SDK's own pool size (openai._constants), kept when we give it our transport.
_LIMITS = httpx2.Limits(max_connections=1000, max_keepalive_connections=100)


class KeyRefreshTransport(httpx2.AsyncBaseTransport):
    """On a 401, re-reads the endpoint's key from the secret store once and, when it changed
    (rotated in Key Vault), sends the same request once more with the new key. Any other
    answer, or a 401 with a key that is still current, goes back to the caller as it came:
    the resilience layer never retries a 401 on the same endpoint."""

    def __init__(self, inner: httpx2.AsyncBaseTransport, secrets: SecretProvider, secret_name: str,
                 *, endpoint: str, header: str, prefix: str = "") -> None:
        self._inner = inner
        self._secrets = secrets
        self._secret_name = secret_name
        self._endpoint = endpoint
        self._header = header
        self._prefix = prefix

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        sent_at = time.monotonic()
        response = await self._inner.handle_async_request(request)
        if response.status_code != 401:
            return response
        fresh = self._prefix + await self._secrets.get(self._secret_name, read_since=sent_at)
        if request.headers.get(self._header) == fresh:
            return response
        await response.aclose()
        log.info("endpoint %s refused its key; retrying once with the key re-read from the secret store",
                 self._endpoint)
        request.headers[self._header] = fresh
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


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
            httpx2.AsyncHTTPTransport(limits=_LIMITS), secrets, name, endpoint=config.name,
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
