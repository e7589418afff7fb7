"""What the worker hands a function (Context, Out, QueueMessage) and how outputs become queue messages."""

from __future__ import annotations

import datetime
import json
import re
import secrets
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import azure.functions as func
from azure.functions import _abc as func_abc
from azure.functions import meta
from azure.functions.queue import QueueMessageInConverter, QueueMessageOutConverter

from tools.devhost.loader import FunctionSpec, QueueBinding

_TRACEPARENT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")
# The worker keeps one thread-local for every invocation; user threads read invocation_id from it.
_invocation_local = threading.local()


class TraceContext(func_abc.TraceContext):
    """W3C trace context of one invocation, with the worker's deprecated capitalised aliases."""

    def __init__(self, trace_parent: str, trace_state: str, attributes: dict[str, str]) -> None:
        self._parent, self._state, self._attributes = trace_parent, trace_state, attributes

    @property
    def trace_parent(self) -> str:
        return self._parent

    @property
    def trace_state(self) -> str:
        return self._state

    @property
    def attributes(self) -> dict[str, str]:
        return self._attributes

    Traceparent = trace_parent
    Tracestate = trace_state
    Attributes = attributes


class RpcException(func_abc.RpcException):
    """The empty exception the worker reports when no retry policy is involved."""

    source = ""
    stack_trace = ""
    message = ""


class RetryContext(func_abc.RetryContext):
    """Retry policies are not run by devhost (nor by the host for these triggers): always the first try."""

    retry_count = 0
    max_retry_count = 0
    exception = RpcException()


class Context(func_abc.Context):
    """The worker's invocation context."""

    def __init__(self, function_name: str, function_directory: str, invocation_id: str,
                 trace_context: TraceContext) -> None:
        self._name, self._directory, self._id, self._trace = (function_name, function_directory, invocation_id,
                                                              trace_context)

    @property
    def invocation_id(self) -> str:
        return self._id

    @property
    def thread_local_storage(self) -> threading.local:  # type: ignore[override]
        return _invocation_local

    @property
    def function_name(self) -> str:
        return self._name

    @property
    def function_directory(self) -> str:
        return self._directory

    @property
    def trace_context(self) -> TraceContext:
        return self._trace

    @property
    def retry_context(self) -> RetryContext:
        return RetryContext()


class Out(func.Out[Any]):
    """An output binding's value holder."""

    def __init__(self) -> None:
        self._value: Any = None

    def set(self, val: Any) -> None:
        self._value = val

    def get(self) -> Any:
        return self._value


def trace_context_for(traceparent: str | None, tracestate: str | None) -> TraceContext:
    """The host runs each invocation in a new span: a child of the caller's traceparent when valid."""
    found = _TRACEPARENT.fullmatch((traceparent or "").strip())
    valid = bool(found) and found is not None and found.group(1) != "ff" and set(found.group(2)) != {"0"}
    trace_id = found.group(2) if valid and found else secrets.token_hex(16)
    flags = found.group(4) if valid and found else "00"
    return TraceContext(f"00-{trace_id}-{secrets.token_hex(8)}-{flags}", (tracestate or "") if valid else "", {})


@dataclass(frozen=True)
class ReceivedMessage:
    """A queue message as the trigger sees it: decoded body plus the service's metadata."""

    id: str
    body: bytes
    dequeue_count: int
    inserted_on: datetime.datetime | None
    expires_on: datetime.datetime | None
    next_visible_on: datetime.datetime | None
    pop_receipt: str


def queue_trigger_arg(spec: FunctionSpec, message: ReceivedMessage) -> Any:
    """The trigger argument: func.QueueMessage from the library's converter, or the text for str/bytes."""
    binary = isinstance(spec.trigger, QueueBinding) and spec.trigger.data_type == "binary"
    # The host hands the Python worker the body as a string (UTF-8), or as bytes for dataType binary.
    value: str | bytes = message.body if binary else message.body.decode("utf-8", errors="replace")
    if spec.signature.params[spec.trigger_param].binding == "generic":
        return value
    metadata = {
        "Id": meta.Datum(message.id, "string"),
        "DequeueCount": meta.Datum(message.dequeue_count, "int"),
        "InsertionTime": _time(message.inserted_on),
        "ExpirationTime": _time(message.expires_on),
        "NextVisibleTime": _time(message.next_visible_on),
        "PopReceipt": meta.Datum(message.pop_receipt, "string"),
    }
    datum = meta.Datum(value, "bytes" if binary else "string")
    return QueueMessageInConverter.decode(datum, trigger_metadata={k: v for k, v in metadata.items() if v})


@dataclass(frozen=True)
class Outgoing:
    """Messages one output binding produced, ready for the queue."""

    binding: QueueBinding
    messages: tuple[str | bytes, ...]


def collect_outputs(spec: FunctionSpec, outs: Mapping[str, Out], result: Any) -> list[Outgoing]:
    """Encode every set output (and a queue $return) as the worker does, split as the host does."""
    pending = []
    for binding in spec.outputs:
        value = outs[binding.param].get()
        if value is not None:  # the worker skips unset outputs
            pending.append(Outgoing(binding, _messages(spec.signature.params[binding.param].binding, value)))
    if spec.return_queue is not None:
        pending.append(Outgoing(spec.return_queue, _messages("queue", result)))
    return pending


def _messages(binding: str, value: Any) -> tuple[str | bytes, ...]:
    unsupported = TypeError(f'unable to encode outgoing TypedData: unsupported type "{binding}" for Python type '
                            f'"{type(value).__name__}"')
    if binding == "generic":
        if isinstance(value, str | bytes | bytearray):
            return (value if isinstance(value, str) else bytes(value),)
        raise unsupported
    try:
        datum = QueueMessageOutConverter.encode(value, expected_type=None)
    except NotImplementedError:
        raise unsupported from None
    if datum.type in ("string", "bytes"):
        return (datum.value,)
    # 'json': a list becomes one message per item (the host's collector), anything else one JSON message.
    parsed = json.loads(datum.value)
    items = parsed if isinstance(parsed, list) else [parsed]
    return tuple(i if isinstance(i, str) else json.dumps(i, separators=(",", ":")) for i in items)


def _time(value: datetime.datetime | None) -> meta.Datum | None:
    return meta.Datum(value.isoformat(), "string") if value else None
