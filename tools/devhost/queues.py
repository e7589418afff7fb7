"""Queue triggers with the Storage queues extension's polling, batching, visibility and poison handling."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable
from typing import Any

from azure.core.exceptions import AzureError, ResourceNotFoundError
from azure.storage.queue import QueueMessage as SdkMessage

from tools.devhost.bindings import Out, ReceivedMessage, collect_outputs, queue_trigger_arg
from tools.devhost.invoke import Invoker
from tools.devhost.loader import FunctionSpec, QueueBinding
from tools.devhost.queue_io import MessageDecodeError, QueueClients, decode_text, encode_text, poison_queue_name
from tools.devhost.settings import QueueOptions

log = logging.getLogger("devhost")

MIN_POLL_S = 0.1  # QueuePollingIntervals.Minimum
PROCESSING_VISIBILITY_S = 600  # the listener hides a message for 10 minutes while the function runs
RENEW_EVERY_S = PROCESSING_VISIBILITY_S / 2  # and renews that halfway through


class Backoff:
    """RandomizedExponentialBackoffStrategy: 100 ms doubling (+-20 %) up to maxPollingInterval."""

    def __init__(self, maximum_s: float, uniform: Callable[[float, float], float] = random.uniform) -> None:
        self.minimum_s, self.maximum_s, self._uniform = MIN_POLL_S, maximum_s, uniform
        self._current, self._exponent = 0.0, 0

    def next_delay(self, found_message: bool) -> float:
        if found_message:
            self._current, self._exponent = self.minimum_s, 1
        elif self._current != self.maximum_s:
            interval = self.minimum_s
            if self._exponent > 0:
                interval += self._uniform(0.8, 1.2) * 2 ** (self._exponent - 1) * self.minimum_s
            if interval < self.maximum_s:
                self._current, self._exponent = interval, self._exponent + 1
            else:
                self._current = self.maximum_s
        return self._current


class QueueListener:
    """Polls one trigger queue and runs the function on each message, as the extension's QueueListener."""

    def __init__(self, spec: FunctionSpec, clients: QueueClients, options: QueueOptions, invoker: Invoker,
                 *, uniform: Callable[[float, float], float] = random.uniform) -> None:
        assert isinstance(spec.trigger, QueueBinding)  # noqa: S101  the host builds listeners for queue triggers only
        self.spec, self.binding, self.options, self.invoker = spec, spec.trigger, options, invoker
        self.clients = clients
        self.queue = clients.queue(self.binding.connection, self.binding.queue_name)
        self.poison_name = poison_queue_name(self.binding.queue_name)
        self._backoff = Backoff(options.max_polling_interval_s, uniform)
        self._processing: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        self._stopping = False
        self._found_since_delay = False
        clients.watch(self.binding.connection, self.binding.queue_name, self._wake.set)

    async def run(self) -> None:
        exists: bool | None = None
        while not self._stopping:
            self._wake.clear()
            try:
                if not exists:
                    # The extension never creates a trigger queue: it waits for one to appear.
                    exists = await self._exists()
                batch = await self._receive() if exists else []
            except AzureError as exc:
                exists = None
                log.warning("Queue '%s' (function '%s'): %s; backing off", self.binding.queue_name, self.spec.name,
                            type(exc).__name__)
                batch = []
            if not batch:
                await self._sleep(self._backoff.next_delay(self._found_since_delay))
                self._found_since_delay = False
                continue
            for message in batch:
                task = asyncio.create_task(self._process(message))
                self._processing.add(task)
                task.add_done_callback(self._processing.discard)
            self._found_since_delay = True
            while len(self._processing) > self.options.new_batch_threshold and not self._stopping:
                await asyncio.wait(set(self._processing), return_when=asyncio.FIRST_COMPLETED)

    def stop(self) -> None:
        """Stop polling; invocations in flight carry on until drain()."""
        self._stopping = True
        self._wake.set()

    async def drain(self, grace_s: float) -> None:
        """Let invocations in flight finish within the grace period, then cancel the rest."""
        if self._processing:
            await asyncio.wait(set(self._processing), timeout=grace_s)
        for task in list(self._processing):
            task.cancel()
        await asyncio.gather(*self._processing, return_exceptions=True)

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)

    async def _exists(self) -> bool:
        try:
            await self.queue.get_queue_properties()
        except ResourceNotFoundError:
            return False
        return True

    async def _receive(self) -> list[SdkMessage]:
        pages = self.queue.receive_messages(messages_per_page=self.options.batch_size,
                                            visibility_timeout=PROCESSING_VISIBILITY_S).by_page()
        try:
            page = await pages.__anext__()
        except StopAsyncIteration:
            return []
        return [message async for message in page]

    async def _process(self, raw: SdkMessage) -> None:
        receipt = [str(raw.pop_receipt)]
        try:
            body = decode_text(str(raw.content), self.options.message_encoding)
        except MessageDecodeError:
            # The extension moves undecodable messages to the poison queue at once, untouched.
            log.warning("Message decoding has failed! Check MessageEncoding settings. MessageId=%s. (function '%s')",
                        raw.id, self.spec.name)
            await self._to_poison(raw, str(raw.content), receipt)
            return
        dequeues = int(raw.dequeue_count or 0)
        if dequeues > self.options.max_dequeue_count:
            await self._to_poison(raw, encode_text(body, self.options.message_encoding), receipt)
            return
        message = ReceivedMessage(raw.id, body, dequeues, raw.inserted_on, raw.expires_on, raw.next_visible_on,
                                  receipt[0])
        renewal = asyncio.create_task(self._keep_hidden(raw.id, receipt))
        try:
            succeeded = await self._invoke(message)
        finally:
            renewal.cancel()
            await asyncio.gather(renewal, return_exceptions=True)
        try:
            await self._settle(raw, body, succeeded, dequeues, receipt)
        except AzureError as exc:
            log.warning("Could not settle message %s of queue '%s': %s", raw.id, self.binding.queue_name, exc)

    async def _invoke(self, message: ReceivedMessage) -> bool:
        spec = self.spec
        context = self.invoker.new_context(spec)
        outs = {b.param: Out() for b in spec.outputs}
        args: dict[str, Any] = {**outs, spec.trigger_param: queue_trigger_arg(spec, message)}
        try:
            result = await self.invoker.run(spec, args, context,
                                            reason=f"New queue message detected on '{self.binding.queue_name}'.")
            await self.clients.send_outputs(collect_outputs(spec, outs, result), self.options.message_encoding)
        except Exception as exc:  # noqa: BLE001  any failure of the invocation is a failed attempt
            log.warning("Function '%s' failed on message %s (dequeue count %d): %s", spec.name, message.id,
                        message.dequeue_count, type(exc).__name__)
            return False
        return True

    async def _settle(self, raw: SdkMessage, body: bytes, succeeded: bool, dequeues: int, receipt: list[str]) -> None:
        if succeeded:
            await self.queue.delete_message(raw.id, receipt[0])
        elif self.poison_name is None:
            pass  # no poison queue: the message stays hidden for the processing visibility timeout
        elif dequeues >= self.options.max_dequeue_count:
            await self._to_poison(raw, encode_text(body, self.options.message_encoding), receipt)
        else:
            await self.queue.update_message(raw.id, receipt[0],
                                            visibility_timeout=round(self.options.visibility_timeout_s))

    async def _to_poison(self, raw: SdkMessage, text: str, receipt: list[str]) -> None:
        if self.poison_name is None:
            return
        log.warning("Message %s has reached MaxDequeueCount of %d or cannot be decoded. Moving message to queue "
                    "'%s'. (function '%s')", raw.id, self.options.max_dequeue_count, self.poison_name, self.spec.name)
        await self.clients.send(self.binding.connection, self.poison_name, [text])
        await self.queue.delete_message(raw.id, receipt[0])

    async def _keep_hidden(self, message_id: str, receipt: list[str]) -> None:
        """Long invocations keep their message hidden: renew the visibility halfway through each period."""
        while True:
            await asyncio.sleep(RENEW_EVERY_S)
            try:
                updated = await self.queue.update_message(message_id, receipt[0],
                                                          visibility_timeout=PROCESSING_VISIBILITY_S)
                receipt[0] = str(updated.pop_receipt)
            except AzureError as exc:
                log.warning("Could not renew visibility of message %s: %s", message_id, type(exc).__name__)
