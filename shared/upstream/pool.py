"""The model endpoints' connection pool: httpx2's, with a cheaper check of an idle connection.

Before it hands out a connection, and again when a response closes, httpcore2's pool asks every idle
connection whether the server has closed it (`get_extra_info("is_readable")`). Through anyio, each
ask builds the socket's whole attribute table, a `getpeername` system call included, before the
`poll` that answers it: about 4.6 us against 0.7. With 32 requests in flight a request meets dozens
of such asks: 4.8% of the app's CPU on the full path under py-spy (bench/README.md). Here a stream keeps its
socket and polls it directly; everything else is anyio's, unchanged.
"""
# ruff: noqa: ASYNC109  the signatures are httpcore2's stream and backend interfaces, `timeout` included

from __future__ import annotations

import functools
import ssl
from collections.abc import Iterable
from typing import Any

import httpcore2
import httpx2
from httpcore2._utils import is_socket_readable

# The openai SDK's own pool size (openai._constants): the pass-through's connections behave as before.
LIMITS = httpx2.Limits(max_connections=1000, max_keepalive_connections=100)


@functools.cache
def tls_context() -> ssl.SSLContext:
    """The process's one TLS context, what httpx2 builds for `verify=True`: loading the CA bundle
    costs about 70 ms of CPU, paid once (by the background loader) instead of once per client."""
    return httpx2.create_ssl_context()


class _Stream(httpcore2.AsyncNetworkStream):
    def __init__(self, inner: httpcore2.AsyncNetworkStream) -> None:
        self._inner = inner
        self._socket = inner.get_extra_info("socket")  # the same socket under TLS, as httpcore2 polls it

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return await self._inner.read(max_bytes, timeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        await self._inner.write(buffer, timeout)

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def start_tls(self, ssl_context: ssl.SSLContext, server_hostname: str | None = None,
                        timeout: float | None = None) -> httpcore2.AsyncNetworkStream:
        return _Stream(await self._inner.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable":
            return self._socket is not None and is_socket_readable(self._socket)
        return self._inner.get_extra_info(info)


class _Backend(httpcore2.AsyncNetworkBackend):
    def __init__(self) -> None:
        self._inner = httpcore2.AnyIOBackend()

    async def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                          socket_options: Iterable[Any] | None = None) -> httpcore2.AsyncNetworkStream:
        return _Stream(await self._inner.connect_tcp(host, port, timeout, local_address, socket_options))

    async def connect_unix_socket(self, path: str, timeout: float | None = None,
                                  socket_options: Iterable[Any] | None = None) -> httpcore2.AsyncNetworkStream:
        return _Stream(await self._inner.connect_unix_socket(path, timeout, socket_options))

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class PoolTransport(httpx2.AsyncHTTPTransport):
    """httpx2's transport over a pool with the backend above (httpx2 takes no backend, so the pool
    it builds is replaced by the same pool with one)."""

    def __init__(self) -> None:
        super().__init__(verify=tls_context(), limits=LIMITS)
        self._pool = httpcore2.AsyncConnectionPool(
            ssl_context=tls_context(), max_connections=LIMITS.max_connections,
            max_keepalive_connections=LIMITS.max_keepalive_connections, keepalive_expiry=LIMITS.keepalive_expiry,
            network_backend=_Backend())
