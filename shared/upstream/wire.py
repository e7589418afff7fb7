"""One model endpoint's client for the OpenAI wire protocol over httpx2: JSON posts and SSE streams."""

from __future__ import annotations

import asyncio
import json
import logging
import random
import re
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import quote, urlencode

import httpx2

from shared.core.clock import Clock, SystemClock
from shared.core.settings import RESPONSE_LIMIT_S, EndpointConfig
from shared.upstream.errors import ErrorStatus, StreamErrorEvent, status_error, transport_error, upstream_request_id
from shared.upstream.pool import PoolTransport
from shared.upstream.sse import sse_data

if TYPE_CHECKING:  # types only: shared.identity.secrets loads the Key Vault SDK, which the hot path never needs
    from azure.core.credentials import AccessToken
    from azure.core.credentials_async import AsyncTokenCredential

    from shared.identity.secrets import SecretProvider

log = logging.getLogger(__name__)

COGNITIVE_SERVICES_SCOPE = "https://cognitiveservices.azure.com/.default"
# The paths the Azure OpenAI SDK sends to a deployment, named by the body's model (openai/lib/azure.py).
_DEPLOYMENT_PATHS = frozenset({"/completions", "/chat/completions", "/embeddings", "/audio/transcriptions",
                               "/audio/translations", "/audio/speech", "/images/generations", "/images/edits"})
# The paths sent to Azure's v1 API (`/openai/v1/...`), which the Responses API needs.
_V1_PATHS = ("/responses",)
_DOT_SEGMENT = re.compile(r"^(?:\.|%2[eE]){1,2}$")
# azure-core's BearerTokenCredentialPolicy: a token is renewed 5 minutes (less up to 1 minute of
# jitter, so instances do not all ask at once) before it expires, or at its refresh_on.
_REFRESH_WINDOW_S = 300
_MAX_REFRESH_JITTER_S = 60
# After [DONE] an HTTP/1.1 body is read to its end so the connection goes back to the pool; an
# upstream that keeps sending is cut instead (the SDK's drain_response_async waits as long).
_DRAIN_S = 0.1
# An endpoint is asked for its chat and embedding deployments: a handful of URLs, kept built.
_MAX_CACHED_URLS = 32


class KeyRefreshTransport(httpx2.AsyncBaseTransport):
    """On a 401, re-reads the endpoint's key from the secret store once and, when it changed
    (rotated in Key Vault), sends the same request once more with the new key. Any other
    answer, or a 401 with a key that is still current, goes back to the caller as it came:
    the resilience layer never retries a 401 on the same endpoint."""

    def __init__(self, inner: httpx2.AsyncBaseTransport, secrets: SecretProvider, secret_name: str,
                 *, endpoint: str, header: str, prefix: str = "", now: Callable[[], float] | None = None) -> None:
        self._inner = inner
        # The secret provider's clock: `read_since` is compared with the time it read the key.
        self._now = now or SystemClock().now
        self._secrets = secrets
        self._secret_name = secret_name
        self._endpoint = endpoint
        self._header = header
        self._prefix = prefix

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        sent_at = self._now()
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


AuthHeader = Callable[[], Awaitable[str]]


def key_reader(secrets: SecretProvider, name: str, prefix: str = "") -> AuthHeader:
    """The key's header value, read per request: the provider's cache answers until its TTL, then
    Key Vault does."""
    async def value() -> str:
        return prefix + await secrets.get(name)

    return value


def key_header(config: EndpointConfig) -> tuple[str, str]:
    """The header an endpoint's key goes in, and the key's prefix there: Azure's `api-key`, else a
    bearer token."""
    return ("api-key", "") if config.kind == "azure_openai" else ("authorization", "Bearer ")


async def key_transport(config: EndpointConfig, secrets: SecretProvider, name: str,
                        clock: Clock) -> KeyRefreshTransport:
    """The transport of an endpoint with a key in the secret store (the wire's and the SDK
    client's alike). A missing secret fails here, at start, naming it, not on the first call."""
    await secrets.get(name)
    header, prefix = key_header(config)
    return KeyRefreshTransport(PoolTransport(), secrets, name,
                               endpoint=config.name, header=header, prefix=prefix, now=clock.now)


class _BearerToken:
    """A managed identity's token for one scope, cached and renewed before it expires the way
    azure-core's BearerTokenCredentialPolicy does (one caller asks the credential, others wait)."""

    def __init__(self, credential: AsyncTokenCredential, scope: str, wall: Callable[[], float]) -> None:
        self._credential = credential
        self._scope = scope
        self._wall = wall  # expires_on and refresh_on are seconds since the epoch
        self._token: AccessToken | None = None
        self._jitter = 0
        self._lock = asyncio.Lock()

    def _stale(self) -> bool:
        token = self._token
        if token is None:
            return True
        now = self._wall()
        if token.expires_on <= now:
            return True
        refresh_on: int | None = getattr(token, "refresh_on", None)  # AccessTokenInfo has it
        if refresh_on:
            return min(refresh_on + self._jitter, token.expires_on) <= now
        return token.expires_on - now < _REFRESH_WINDOW_S - self._jitter

    async def __call__(self) -> str:
        if self._stale():
            async with self._lock:
                if self._stale():  # another caller may have renewed it while this one waited
                    self._token = await self._credential.get_token(self._scope)
                    self._jitter = random.randint(0, _MAX_REFRESH_JITTER_S)  # noqa: S311  spreads load only
        assert self._token is not None  # noqa: S101  set above
        return "Bearer " + self._token.token


class ModelWire:
    """Posts JSON and reads SSE streams for one endpoint: URLs as the openai SDK builds them, the
    endpoint's auth, no retries (the resilience layer is the only retry layer) and no models."""

    def __init__(self, config: EndpointConfig, client: httpx2.AsyncClient, *, transport: httpx2.AsyncBaseTransport,
                 auth_name: str, auth: AuthHeader | None, static_auth: str | None = None) -> None:
        self._client = client
        # The connection pool (and a key's re-read on 401) under the client: Semantic Kernel's SDK
        # client for the same endpoint sends through it too (shared/upstream/clients.py).
        self.transport = transport
        self._azure = config.kind == "azure_openai"
        self._auth_name = auth_name
        self._auth = auth
        self._headers = {"accept": "application/json", "content-type": "application/json"}
        if static_auth is not None:
            self._headers[auth_name] = static_auth
        if self._azure:
            self._base = f"{config.endpoint.rstrip('/')}/openai"
            self._query = "?" + urlencode({"api-version": config.api_version})
        else:
            # The SDK gives its base_url a trailing slash and joins a path to it as httpx does.
            base = httpx2.URL(config.endpoint)
            path, sep, query = base.raw_path.partition(b"?")
            self._root = base if path.endswith(b"/") else base.copy_with(raw_path=path + b"/" + sep + query)
        self._urls: dict[tuple[str, str], httpx2.URL] = {}

    def url(self, path: str, model: object) -> httpx2.URL:
        """The URL a request for `path` goes to; Azure names the deployment from the body's model."""
        key = (path, str(model))
        url = self._urls.get(key)
        if url is None:
            url = self._build_url(path, model)
            if len(self._urls) < _MAX_CACHED_URLS:
                self._urls[key] = url
        return url

    def _build_url(self, path: str, model: object) -> httpx2.URL:
        if not self._azure:
            return self._root.copy_with(raw_path=self._root.raw_path + path.lstrip("/").encode())
        if path.startswith(_V1_PATHS):
            return httpx2.URL(f"{self._base}/v1{path}")  # Azure's v1 API: no api-version, model in the body
        if path in _DEPLOYMENT_PATHS and model is not None:
            # openai's path_template: the segment quoted as RFC 3986 pchar, dot-segments refused.
            segment = quote(str(model), safe="!$&'()*+,;=:@")
            if _DOT_SEGMENT.match(segment):
                raise ValueError("the deployment name is not a valid path segment")
            path = f"/deployments/{segment}{path}"
        return httpx2.URL(self._base + path + self._query)

    async def _request(self, path: str, body: Mapping[str, Any] | None, *, read_s: float | None = None,
                       timeout_s: float | None = None, method: str = "POST") -> httpx2.Request:
        headers = self._headers
        if self._auth is not None:
            headers = {**headers, self._auth_name: await self._auth()}
        content = None if body is None else json.dumps(body, ensure_ascii=False, separators=(",", ":"),
                                                        allow_nan=False).encode()
        model = None if body is None else body.get("model")
        request = self._client.build_request(method, self.url(path, model), content=content, headers=headers)
        if timeout_s is not None:
            request.extensions["timeout"] = dict.fromkeys(("connect", "read", "write", "pool"), timeout_s)
        elif read_s is not None:
            request.extensions["timeout"] = {**request.extensions.get("timeout", {}), "read": read_s}
        return request

    async def post(self, path: str, body: Mapping[str, Any], *, long: bool = False, timeout_s: float | None = None,
                   receipt: Receipt | None = None) -> dict[str, Any]:
        """One JSON answer. A failure raises the tree of shared/upstream/errors.py (an error status,
        a transport error); a 2xx whose body is not a JSON object raises ValueError. `long`: a
        generation, which sends no byte until the model has finished, so its silence is its length,
        not an idle endpoint: its caller's time limit (the resilience policy's, from what it asks
        for) bounds it, and the read timeout only backs that up at RESPONSE_LIMIT_S. `timeout_s`: a
        shorter bound than the client's for this call (a cache lookup's embedding). `receipt` gets
        the provider's id of the answered request."""
        request = await self._request(path, body, read_s=RESPONSE_LIMIT_S if long else None, timeout_s=timeout_s)
        response = await self._send(request)
        if response.status_code >= 400:
            raise _status_error(response)
        _sign(receipt, response)
        answer = json.loads(response.content)
        if not isinstance(answer, dict):
            raise ValueError("the endpoint's answer is not a JSON object")
        return answer

    async def fetch(self, method: str, path: str) -> dict[str, Any]:
        """A JSON answer to a request without a body (GET or DELETE of a stored object). An error
        status raises shared/upstream/errors.ErrorStatus."""
        response = await self._send(await self._request(path, None, method=method))
        if response.status_code >= 400:
            raise _status_error(response)
        answer = json.loads(response.content)
        if not isinstance(answer, dict):
            raise ValueError("the endpoint's answer is not a JSON object")
        return answer

    async def stream(self, path: str, body: Mapping[str, Any], *,
                     receipt: Receipt | None = None) -> AsyncGenerator[dict[str, Any], None]:
        """The JSON objects of a Server-Sent Events answer, until `data: [DONE]` or the body's end.
        The response is closed however the generator ends (consumed, failed or closed early).
        An error event raises StreamErrorEvent, and a body that breaks the tree's transport error.
        `receipt` gets the provider's id of the request once it answered."""
        response = await self._send(await self._request(path, body), stream=True)
        try:
            if response.status_code >= 400:
                await response.aread()
                raise _status_error(response)
            _sign(receipt, response)
            async for data in sse_data(response.aiter_bytes()):
                if data.startswith("[DONE]"):
                    await _drain(response)
                    break
                chunk = json.loads(data)
                if not isinstance(chunk, dict):
                    raise ValueError("a streamed chunk is not a JSON object")
                if chunk.get("error"):
                    raise StreamErrorEvent(chunk["error"])
                yield chunk
        except httpx2.HTTPError as exc:
            raise transport_error(exc) from exc
        finally:
            await response.aclose()

    async def _send(self, request: httpx2.Request, *, stream: bool = False) -> httpx2.Response:
        """The request sent (a whole answer read too); httpx2's failure raised as the tree's."""
        try:
            return await self._client.send(request, stream=stream)
        except httpx2.HTTPError as exc:
            raise transport_error(exc) from exc

    async def close(self) -> None:
        await self._client.aclose()


# The provider's id of an answered request, for the client to quote to the provider; filled in by
# the wire when the answer starts (the caller reads it after: the answer itself stays plain JSON).
Receipt = dict[str, str]


def _sign(receipt: Receipt | None, response: httpx2.Response) -> None:
    if receipt is not None and (request_id := upstream_request_id(response.headers)) is not None:
        receipt["request_id"] = request_id


def _status_error(response: httpx2.Response) -> ErrorStatus:
    try:
        body: object = json.loads(response.content)
    except ValueError:
        body = response.text
    return status_error(response.status_code, response.headers, body)


async def _drain(response: httpx2.Response) -> None:
    if response.http_version != "HTTP/1.1":
        return  # HTTP/2 closes the stream and keeps the connection
    try:
        async with asyncio.timeout(_DRAIN_S):
            # The transport's own stream, as the SDK drains it: the decoded iterator is half-read.
            async for _ in cast(AsyncIterator[bytes], response.stream):
                pass
    except (TimeoutError, httpx2.HTTPError, httpx2.StreamError):
        pass  # the answer is complete: a connection that is not reused is no error of the request


async def build_wire(config: EndpointConfig, *, credential: AsyncTokenCredential | None, secrets: SecretProvider,
                     timeout_s: float, clock: Clock | None = None) -> ModelWire:
    """One endpoint's wire with the auth of shared/upstream/clients.build_client: a Key Vault key read per
    request (re-read once on a 401), else Azure's managed identity, else no key at all. `clock`: the
    one the secret provider reads (the system's by default), for a token's expiry and a key's age."""
    clock = clock or SystemClock()
    timeout = httpx2.Timeout(timeout_s)
    azure = config.kind == "azure_openai"
    name = config.api_key_secret
    if name is not None:
        keyed = await key_transport(config, secrets, name, clock)
        client = httpx2.AsyncClient(transport=keyed, timeout=timeout)
        header, prefix = key_header(config)
        return ModelWire(config, client, auth_name=header, auth=key_reader(secrets, name, prefix), transport=keyed)
    transport = PoolTransport()
    client = httpx2.AsyncClient(transport=transport, timeout=timeout)
    if azure:
        if credential is None:
            await client.aclose()
            raise ValueError(f"endpoint {config.name!r} has no api_key_secret and no managed identity")
        return ModelWire(config, client, auth_name="authorization",
                         auth=_BearerToken(credential, COGNITIVE_SERVICES_SCOPE, clock.wall),
                         transport=transport)
    # OpenAI-compatible servers such as Ollama or vLLM may need no key: what the SDK sent for none.
    return ModelWire(config, client, auth_name="authorization", auth=None, static_auth="Bearer unused",
                     transport=transport)
