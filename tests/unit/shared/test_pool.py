"""The model endpoints' pool (shared/upstream/pool.py): an idle connection the server closed is
seen closed and never sent on, with the socket polled directly instead of through anyio."""

from __future__ import annotations

import asyncio

import httpx2

from shared.upstream.pool import PoolTransport


async def test_a_connection_the_server_closed_while_idle_is_not_reused() -> None:
    connections = 0

    async def answer_once_then_close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")  # keep-alive, as far as the client knows
        await writer.drain()
        writer.close()  # and then the server closes it anyway, as a load balancer does with idle connections

    server = await asyncio.start_server(answer_once_then_close, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/"
    try:
        async with httpx2.AsyncClient(transport=PoolTransport()) as client:
            assert (await client.get(url)).text == "ok"
            await asyncio.sleep(0.05)  # the server's FIN arrives: the idle connection is readable (EOF)
            assert (await client.get(url)).text == "ok", "the closed connection was sent on"
            assert (await client.get(url)).text == "ok"
    finally:
        server.close()
        await server.wait_closed()
    assert connections == 3


async def test_a_live_idle_connection_is_reused() -> None:
    connections = 0

    async def keep_alive(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        while await reader.readuntil(b"\r\n\r\n"):
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            await writer.drain()

    server = await asyncio.start_server(keep_alive, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/"
    try:
        async with httpx2.AsyncClient(transport=PoolTransport()) as client:
            for _ in range(5):
                assert (await client.get(url)).text == "ok"
                await asyncio.sleep(0.01)
    finally:
        server.close()
    assert connections == 1
