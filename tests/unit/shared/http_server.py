"""For client tests: a real HTTP server on loopback that records each request, and a rotating secret store."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType

from aiohttp import web

Handler = Callable[[web.Request, bytes], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Seen:
    """One request as it arrived on the socket."""

    method: str
    path_qs: str
    headers: dict[str, str]  # lower-cased names
    body: bytes
    peer: object  # the client's (host, port): one value per TCP connection


async def ok(request: web.Request, body: bytes) -> web.StreamResponse:
    return web.json_response({"id": "x", "object": "chat.completion", "choices": []})


class RecordingServer:
    """`async with RecordingServer() as server:` serves `server.url` until the block ends; a test
    swaps `server.handler` to answer as the case needs."""

    def __init__(self, handler: Handler = ok) -> None:
        self.handler = handler
        self.seen: list[Seen] = []
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def _serve(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        peer = request.transport.get_extra_info("peername") if request.transport else None
        self.seen.append(Seen(request.method, request.path_qs,
                              {k.lower(): v for k, v in request.headers.items()}, body, peer))
        return await self.handler(request, body)

    async def __aenter__(self) -> RecordingServer:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._serve)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


def sse(*chunks: bytes, status: int = 200) -> Handler:
    """A handler that writes `chunks` one write (and one flush) each, as an event stream."""

    async def handle(request: web.Request, body: bytes) -> web.StreamResponse:
        response = web.StreamResponse(status=status, headers={"content-type": "text/event-stream"})
        await response.prepare(request)
        for chunk in chunks:
            await response.write(chunk)
        await response.write_eof()
        return response

    return handle


class RotatingSecrets:
    """A secret store whose cache still holds `cached` until a read forced by a 401 gets `fresh`."""

    def __init__(self, cached: str, fresh: str) -> None:
        self.cached, self.fresh = cached, fresh
        self.forced_reads = 0

    async def get(self, name: str, *, read_since: float | None = None) -> str:
        if read_since is None:
            return self.cached
        self.forced_reads += 1
        return self.fresh

    async def close(self) -> None:
        return None


def accepting(key: str) -> Handler:
    """Answers 200 to the `api-key` given, 401 to any other."""

    async def handle(request: web.Request, body: bytes) -> web.StreamResponse:
        if request.headers.get("api-key") != key:
            return web.json_response({"error": {"code": "401", "message": "invalid key"}}, status=401)
        return web.json_response({"id": "c", "choices": []})
    return handle
