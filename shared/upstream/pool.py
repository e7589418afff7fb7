"""The model endpoints' connection pool: httpx2's transport over aiohttp's pool in place of httpcore2's.

httpx2 stays the wire's client and transport (its requests, auth flows, responses, error mapping and
OpenTelemetry instrumentation, and the openai SDK's client for Semantic Kernel over the same
transport); only the connection pool under it is aiohttp's. httpcore2's goes through h11 and anyio:
a model call cost about twice the CPU there (0.455 ms against 0.220 over aiohttp, whose HTTP parser
is compiled: bench/README.md, "The model call over aiohttp"). The Cosmos SDK already sends over
aiohttp, so the process loads nothing new. LiteLLM sends its httpx requests over aiohttp too.

What httpcore2's pool did, this one does: the timeouts a request carries, TLS with the process's one
context, no proxy from the environment, bodies passed on undecoded (httpx2 decodes them), what
arrived before a break handed out before the error, and each failure raised as the httpcore2 error
httpcore2 raised for it, which httpx2 maps and shared/upstream/errors.py classifies as before: no
connection (ConnectError), a connection closed before any answer (RemoteProtocolError, h11's
words), a body cut after it began (RemoteProtocolError, "... message body"), and the timeouts.
"""

from __future__ import annotations

import asyncio
import functools
import ssl
from collections.abc import AsyncIterable, AsyncIterator, MutableMapping
from typing import Any, cast

import aiohttp
import httpcore2
import httpx2
from yarl import URL

# The openai SDK's pool size (openai._constants), and httpx2's time an idle connection is kept.
MAX_CONNECTIONS = 1000
KEEPALIVE_S = 5.0
# h11's words, which shared/upstream/errors.transport_error reads: a connection closed before the
# answer began, and a body that broke after it.
NO_ANSWER = "Server disconnected without sending a response."
CUT = "peer closed connection without sending complete message body"
# Headers aiohttp would add on its own: httpx2 has set each one it means to send.
_NOT_ADDED = ("Accept", "Accept-Encoding", "Content-Type", "User-Agent")


@functools.cache
def tls_context() -> ssl.SSLContext:
    """The process's one TLS context, what httpx2 builds for `verify=True`: loading the CA bundle
    costs about 70 ms of CPU, paid once (by the background loader) instead of once per client."""
    return httpx2.create_ssl_context()


def _timeout(extensions: MutableMapping[str, Any]) -> aiohttp.ClientTimeout:
    """httpx2's four timeouts as aiohttp's: a free connection waited for and a new one made (pool +
    connect), the connection made, and the longest silence while reading. aiohttp has no write
    timeout: a request body is small, and the attempt's own deadline bounds the whole call."""
    t: dict[str, float | None] = extensions.get("timeout", {})
    pool, connect = t.get("pool"), t.get("connect")
    acquire = None if pool is None or connect is None else pool + connect
    return aiohttp.ClientTimeout(total=None, connect=acquire, sock_connect=connect, sock_read=t.get("read"))


def _url(url: httpcore2.URL) -> URL:
    path, _, query = url.target.partition(b"?")
    return URL.build(scheme=url.scheme.decode(), host=url.host.decode(), port=url.port, path=path.decode(),
                     query_string=query.decode(), encoded=True)


def _received(content: aiohttp.StreamReader) -> bytes:
    """The bytes that arrived ahead of a break and were not read yet. aiohttp's reader raises the
    break first (`readany` checks for it before its buffer), but the provider billed what those
    bytes carry, as h11 handed them out before its error: they go to the meter, then the error."""
    return content._read_nowait(-1) if content._buffer else b""  # no public way to them


class _Body:
    """A response's body as it arrives. Closed when read to its end, the connection goes back to
    the pool; closed early, aiohttp closes it (a connection with an unread body is never reused)."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response

    async def __aiter__(self) -> AsyncIterator[bytes]:
        content = self._response.content
        try:
            async for chunk in content.iter_any():
                yield chunk
        except (aiohttp.SocketTimeoutError, TimeoutError) as exc:
            raise httpcore2.ReadTimeout("the answer stopped for longer than the read timeout") from exc
        except (aiohttp.ClientError, OSError) as exc:
            if rest := _received(content):
                yield rest
            raise httpcore2.RemoteProtocolError(CUT) from exc

    async def aclose(self) -> None:
        self._response.release()


class _Pool:
    """httpcore2's pool interface over an aiohttp session. The session is made in the event loop
    that first sends (a session belongs to one loop), and again should a request come from another."""

    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _current(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        if self._session is None or self._loop is not loop:
            connector = aiohttp.TCPConnector(limit=MAX_CONNECTIONS, limit_per_host=0, keepalive_timeout=KEEPALIVE_S,
                                             ssl=tls_context())
            self._session = aiohttp.ClientSession(connector=connector, trust_env=False, auto_decompress=False,
                                                  cookie_jar=aiohttp.DummyCookieJar(), skip_auto_headers=_NOT_ADDED)
            self._loop = loop
        return self._session

    async def handle_async_request(self, request: httpcore2.Request) -> httpcore2.Response:
        # The body whole, sent with its length: a streamed one's `Transfer-Encoding: chunked` goes.
        body = b"".join([part async for part in cast(AsyncIterable[bytes], request.stream)])
        headers = [(name.decode("latin-1"), value.decode("latin-1")) for name, value in request.headers
                   if name.lower() != b"transfer-encoding"]
        try:
            response = await self._current().request(
                request.method.decode(), _url(request.url), headers=headers, data=body or None,
                timeout=_timeout(request.extensions), allow_redirects=False)
        except aiohttp.ConnectionTimeoutError as exc:
            raise httpcore2.ConnectTimeout("no connection to the endpoint within the timeout") from exc
        except (aiohttp.SocketTimeoutError, TimeoutError) as exc:
            raise httpcore2.ReadTimeout("no answer within the read timeout") from exc
        except aiohttp.ClientConnectorError as exc:  # refused, unresolvable, TLS refused: nothing was sent
            raise httpcore2.ConnectError("the endpoint could not be connected to") from exc
        except (aiohttp.ClientError, OSError) as exc:  # the connection broke before an answer began
            raise httpcore2.RemoteProtocolError(NO_ANSWER) from exc
        version = response.version or aiohttp.HttpVersion11
        return httpcore2.Response(
            response.status, headers=list(response.raw_headers), content=_Body(response),
            extensions={"http_version": f"HTTP/{version.major}.{version.minor}".encode(),
                        "reason_phrase": (response.reason or "").encode()})

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> _Pool:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


class PoolTransport(httpx2.AsyncHTTPTransport):
    """httpx2's transport (and so its instrumentation and error mapping) over the pool above:
    httpx2 takes no pool, so the one it builds, empty, is replaced."""

    def __init__(self) -> None:
        super().__init__(verify=tls_context())
        self._pool = _Pool()  # type: ignore[assignment]  # httpcore2's pool interface, by duck typing
