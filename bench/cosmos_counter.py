"""A counting HTTP/1.1 proxy in front of the Cosmos emulator, for an app in another process.

bench/cache.py counts Cosmos requests with a transport inside its own process; the overhead bench
measures the app as it runs (devhost, its own process), so it counts at the wire instead: the app's
`COSMOS_ENDPOINT` points here, and every request head that passes is counted by operation. It runs
in a thread of the bench driver and only in the counting pass, so it never adds latency or CPU to
the timed runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import Counter

from tools.localenv import free_port

RESOURCES = ("docs", "colls", "dbs", "pkranges", "offers")


def operation(method: str, path: str, query: bool) -> str:
    """`GET docs`, `PATCH docs`, `query docs`, ...: the resource is the last typed segment of the path."""
    parts = path.split("?", maxsplit=1)[0].rstrip("/").split("/")
    resource = next((p for p in reversed(parts) if p in RESOURCES), "account")
    return f"{'query' if query else method} {resource}"


class CosmosCounter:
    """Listens on a free loopback port and forwards every connection to `upstream_port`."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.port = free_port()
        self.requests: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cosmos-counter", daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def take(self) -> Counter[str]:
        """The counts since the last take, and start again from zero."""
        with self._lock:
            counts, self.requests = self.requests, Counter()
        return counts

    def __enter__(self) -> CosmosCounter:
        self._thread.start()
        self._ready.wait(timeout=10)
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(asyncio.start_server(self._client, "127.0.0.1", self.port))
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:
            server.close()
            tasks = asyncio.all_tasks(self._loop)  # open connections: close them, then the loop
            for task in tasks:
                task.cancel()
            self._loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
            self._loop.close()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        back = asyncio.create_task(_pipe(up_reader, writer))
        try:
            await self._forward(reader, up_writer)
        finally:
            up_writer.close()
            with contextlib.suppress(Exception):
                await back
            writer.close()

    async def _forward(self, reader: asyncio.StreamReader, up: asyncio.StreamWriter) -> None:
        """Request by request (the SDK never pipelines): count the head, pass head and body on."""
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, path = lines[0].split(" ")[:2]
                headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
                query = headers.get("x-ms-documentdb-isquery", "").lower() == "true"
                with self._lock:
                    self.requests[operation(method, path, query)] += 1
                up.write(head)
                if headers.get("transfer-encoding", "").lower() == "chunked":
                    await _pipe(reader, up)  # never seen from the SDK; pass the rest through uncounted
                    return
                length = int(headers.get("content-length") or 0)
                if length:
                    up.write(await reader.readexactly(length))
                await up.drain()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError):
        while chunk := await reader.read(65536):
            writer.write(chunk)
            await writer.drain()
    with contextlib.suppress(Exception):
        writer.close()
