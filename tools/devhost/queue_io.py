"""Storage queue access shared by triggers and outputs: one client per connection, encoding, sends."""

from __future__ import annotations

import base64
import binascii
import contextlib
import re
from collections.abc import Callable, Sequence

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.storage.queue.aio import QueueClient, QueueServiceClient

from tools.devhost.bindings import Outgoing

POISON_SUFFIX = "-poison"
_BASE64_WHITESPACE = re.compile(r"[ \t\r\n]")


class MessageDecodeError(ValueError):
    """A message that is not valid for the configured messageEncoding."""


def encode_text(payload: str | bytes, encoding: str) -> str:
    """The wire text of a message body under host.json messageEncoding."""
    raw = payload.encode("utf-8") if isinstance(payload, str) else payload
    if encoding == "base64":
        return base64.b64encode(raw).decode("ascii")
    return payload if isinstance(payload, str) else payload.decode("utf-8", errors="replace")


def decode_text(text: str, encoding: str) -> bytes:
    """The body of a received message; base64 is strict like .NET's Convert.FromBase64String."""
    if encoding != "base64":
        return text.encode("utf-8")
    try:
        return base64.b64decode(_BASE64_WHITESPACE.sub("", text), validate=True)
    except (binascii.Error, ValueError):
        raise MessageDecodeError("the message is not valid base64") from None


def poison_queue_name(queue: str) -> str | None:
    """`<queue>-poison`, unless the queue is a poison queue or the name would be too long (the extension's rule)."""
    if queue.endswith(POISON_SUFFIX) or len(queue) + len(POISON_SUFFIX) > 63:
        return None
    return queue + POISON_SUFFIX


class QueueClients:
    """Async clients per connection string, and the in-process watcher that wakes a queue's listener."""

    def __init__(self) -> None:
        self._services: dict[str, QueueServiceClient] = {}
        self._watchers: dict[tuple[str, str], list[Callable[[], None]]] = {}

    def queue(self, connection: str, name: str) -> QueueClient:
        service = self._services.get(connection)
        if service is None:
            # Retries close to the .NET SDK the host uses (3 tries, ~1 s growing), not Python's 15 s default.
            service = QueueServiceClient.from_connection_string(connection, retry_total=3, initial_backoff=1,
                                                                increment_base=2)
            self._services[connection] = service
        return service.get_queue_client(name)

    def watch(self, connection: str, name: str, callback: Callable[[], None]) -> None:
        """Call `callback` whenever this host adds a message to the queue (the host's SharedQueueWatcher)."""
        self._watchers.setdefault((connection, name), []).append(callback)

    def notify(self, connection: str, name: str) -> None:
        for callback in self._watchers.get((connection, name), []):
            callback()

    async def send(self, connection: str, name: str, texts: Sequence[str]) -> None:
        """Add messages, creating the queue when missing (AddMessageAndCreateIfNotExistsAsync)."""
        client = self.queue(connection, name)
        for text in texts:
            try:
                await client.send_message(text)
            except ResourceNotFoundError:
                with contextlib.suppress(ResourceExistsError):
                    await client.create_queue()
                await client.send_message(text)
        if texts:
            self.notify(connection, name)

    async def send_outputs(self, outgoing: Sequence[Outgoing], encoding: str) -> None:
        """Write an invocation's output bindings; any failure fails the invocation."""
        for out in outgoing:
            await self.send(out.binding.connection, out.binding.queue_name,
                            [encode_text(m, encoding) for m in out.messages])

    async def close(self) -> None:
        for service in self._services.values():
            await service.close()
        self._services.clear()
