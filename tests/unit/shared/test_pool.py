"""The model endpoints' pool (shared/upstream/pool.py), against real sockets: connections reused
and dropped as httpx2's own pool did, requests sent as httpx2 built them, and each way a
connection fails raised as the error tree's class it was before (shared/upstream/errors.py)."""

from __future__ import annotations

import asyncio
import gzip
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import httpx2
import pytest

from shared.core.settings import EndpointConfig
from shared.upstream.errors import AnswerCut, ConnectionDropped, EndpointTimedOut, EndpointUnreachable, UpstreamError
from shared.upstream.pool import PoolTransport
from shared.upstream.wire import ModelWire

Serve = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
BODY = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
ANSWER = json.dumps({"id": "c", "choices": []}).encode()


@asynccontextmanager
async def serving(handler: Serve) -> AsyncIterator[str]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        server.close()


def wire(url: str, timeout_s: float = 5.0) -> ModelWire:
    config = EndpointConfig(name="e", kind="openai", endpoint=url + "/v1", model="m")
    transport = PoolTransport()
    return ModelWire(config, httpx2.AsyncClient(transport=transport, timeout=timeout_s), transport=transport,
                     auth_name="authorization", auth=None, static_auth="Bearer k")


async def test_a_connection_the_server_closed_while_idle_is_not_reused() -> None:
    connections = 0

    async def answer_once_then_close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")  # keep-alive, as far as the client knows
        await writer.drain()
        writer.close()  # and then the server closes it anyway, as a load balancer does with idle connections

    async with serving(answer_once_then_close) as url, httpx2.AsyncClient(transport=PoolTransport()) as client:
        assert (await client.get(url)).text == "ok"
        await asyncio.sleep(0.05)  # the server's FIN arrives: the idle connection is seen closed
        assert (await client.get(url)).text == "ok", "the closed connection was sent on"
        assert (await client.get(url)).text == "ok"
    assert connections == 3


async def test_a_live_idle_connection_is_reused() -> None:
    connections = 0

    async def keep_alive(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        while await reader.readuntil(b"\r\n\r\n"):
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            await writer.drain()

    async with serving(keep_alive) as url, httpx2.AsyncClient(transport=PoolTransport()) as client:
        for _ in range(5):
            assert (await client.get(url)).text == "ok"
            await asyncio.sleep(0.01)
    assert connections == 1


async def test_the_request_goes_as_httpx2_built_it_and_a_compressed_answer_is_decoded_once() -> None:
    seen: list[bytes] = []

    async def gzipped(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length"))
        seen.append(head + await reader.readexactly(length))
        body = gzip.compress(ANSWER)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Type: application/json\r\n"
                     b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        await writer.drain()

    async with serving(gzipped) as url:
        client = wire(url)
        assert await client.post("/chat/completions", BODY) == json.loads(ANSWER)
        await client.close()
    head, _, sent = seen[0].partition(b"\r\n\r\n")
    lines = head.decode().lower().split("\r\n")
    assert lines[0] == "post /v1/chat/completions http/1.1"
    assert "authorization: bearer k" in lines and "content-type: application/json" in lines
    agents = [line for line in lines if line.startswith("user-agent")]
    assert agents == [f"user-agent: python-httpx2/{httpx2.__version__}"]
    assert json.loads(sent) == BODY


async def test_aiohttp_adds_no_header_of_its_own() -> None:
    seen: list[bytes] = []

    async def record(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(await reader.readuntil(b"\r\n\r\n"))
        writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
        await writer.drain()

    async with serving(record) as url, httpx2.AsyncClient(transport=PoolTransport(), headers={}) as client:
        request = client.build_request("POST", url, content=b"raw")
        for name in ("accept", "accept-encoding", "user-agent"):
            del request.headers[name]
        assert (await client.send(request)).status_code == 204
    names = {line.split(b":")[0].lower() for line in seen[0].split(b"\r\n")[1:] if line}
    assert names == {b"host", b"connection", b"content-length"}


async def test_a_streamed_request_body_goes_whole_with_its_length() -> None:
    seen: list[bytes] = []

    async def record(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        seen.append(head + await reader.readexactly(len(b"hello world")))
        writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
        await writer.drain()

    async def parts() -> AsyncIterator[bytes]:
        yield b"hello "
        yield b"world"

    async with serving(record) as url, httpx2.AsyncClient(transport=PoolTransport()) as client:
        assert (await client.post(url, content=parts())).status_code == 204
    head, _, body = seen[0].partition(b"\r\n\r\n")
    lines = head.lower().split(b"\r\n")
    assert b"content-length: 11" in lines and not any(line.startswith(b"transfer-encoding") for line in lines)
    assert body == b"hello world"


async def test_a_response_closed_before_its_end_closes_its_connection() -> None:
    closed = asyncio.Event()

    async def endless(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n")
        writer.write(b"6\r\ndata: \r\n")
        await writer.drain()
        await reader.read()  # until the client closes the connection
        closed.set()

    async with serving(endless) as url, httpx2.AsyncClient(transport=PoolTransport()) as client:
        async with client.stream("GET", url) as response:
            async for _ in response.aiter_bytes():
                break  # the client walks away mid-answer
        await asyncio.wait_for(closed.wait(), 2)  # the connection went with the response


async def test_what_arrived_before_a_cut_is_read_before_the_error() -> None:
    def event(text: str) -> bytes:
        data = b'data: {"choices": [{"index": 0, "delta": {"content": "%s"}}]}\n\n' % text.encode()
        return b"%x\r\n%s\r\n" % (len(data), data)

    async def last_words_then_cut(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n")
        writer.write(event("a"))
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.write(event("b") + event("c"))
        writer.close()  # all while the reader below is busy elsewhere

    received: list[str] = []
    async with serving(last_words_then_cut) as url:
        client = wire(url)
        with pytest.raises(AnswerCut):
            async for chunk in client.stream("/chat/completions", {**BODY, "stream": True}):
                received.append(chunk["choices"][0]["delta"]["content"])
                await asyncio.sleep(0.2)  # a slow client: the last words and the cut arrive meanwhile
        await client.close()
    assert received == ["a", "b", "c"], "the provider billed all three"


async def _closed_port() -> str:
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    return f"http://127.0.0.1:{port}"


async def close_unanswered(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.readuntil(b"\r\n\r\n")
    writer.close()


async def cut_body(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.readuntil(b"\r\n\r\n")
    writer.write(b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"id": "c", "cho')
    await writer.drain()
    writer.close()


async def cut_stream(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.readuntil(b"\r\n\r\n")
    event = b'data: {"id": "c", "choices": [{"index": 0, "delta": {"content": "a"}}]}\n\n'
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
                 b"%x\r\n%s\r\n" % (len(event), event))
    await writer.drain()
    await asyncio.sleep(0.05)
    writer.close()  # no last chunk


async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.readuntil(b"\r\n\r\n")
    await asyncio.sleep(5)


# How the connection fails, and the error the wire raises for it, as it did over httpx2's own pool.
FAILURES: dict[str, tuple[Serve | None, type[UpstreamError]]] = {
    "connection refused": (None, EndpointUnreachable),
    "closed before answering": (close_unanswered, ConnectionDropped),
    "body cut after a 200": (cut_body, AnswerCut),
    "chunked stream cut": (cut_stream, AnswerCut),
    "no answer within the timeout": (silent, EndpointTimedOut),
}


@pytest.mark.parametrize("case", FAILURES)
async def test_each_failure_is_raised_as_the_trees_error(case: str) -> None:
    handler, expected = FAILURES[case]

    async def call(url: str) -> None:
        client = wire(url, timeout_s=0.3)
        try:
            if handler is cut_stream:
                async for _ in client.stream("/chat/completions", {**BODY, "stream": True}):
                    pass
            else:
                await client.post("/chat/completions", BODY)
        finally:
            await client.close()

    with pytest.raises(UpstreamError) as raised:
        if handler is None:
            await call(await _closed_port())
        else:
            async with serving(handler) as url:
                await call(url)
    assert type(raised.value) is expected
    assert isinstance(raised.value.__cause__, httpx2.HTTPError)
