"""The devhost's listening socket: responses on a kept-alive connection are not held by Nagle."""

from __future__ import annotations

import asyncio
import socket

from tools.devhost.host import _bind


async def test_accepted_connections_send_without_nagle() -> None:
    """asyncio turns TCP_NODELAY on only for sockets whose proto is IPPROTO_TCP. Without it, a
    response written as headers then body waits for the client's delayed ACK (~40 ms) on every
    request after the first on a connection."""
    sock = _bind("127.0.0.1", 0)
    accepted: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    def connected(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        server_side = writer.get_extra_info("socket")
        accepted.set_result(server_side.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
        writer.close()

    server = await asyncio.start_server(connected, sock=sock)
    try:
        _, writer = await asyncio.open_connection(*sock.getsockname()[:2])
        assert await accepted != 0
        writer.close()
    finally:
        server.close()
        await server.wait_closed()
