"""What a function receives (Context, QueueMessage, Out) and how its outputs and failures are handled."""

from __future__ import annotations

import asyncio
import datetime
import threading
import time
from collections.abc import Callable
from typing import Any

import azure.functions as func
import pytest

from tools.devhost.bindings import Out, ReceivedMessage, collect_outputs, queue_trigger_arg, trace_context_for
from tools.devhost.invoke import FunctionTimeoutError, Invoker
from tools.devhost.loader import FunctionSpec, QueueBinding
from tools.devhost.signature import ParamInfo, Signature

OUT = QueueBinding("out", "results", "AzureWebJobsStorage", "UseDevelopmentStorage=true")
NOW = datetime.datetime(2025, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)


def spec(fn: Callable[..., Any], *, trigger_binding: str = "queueTrigger", out_binding: str = "queue",
         has_return: bool = False, context: bool = False, return_queue: bool = False) -> FunctionSpec:
    params = {"msg": ParamInfo(trigger_binding, None, False), "out": ParamInfo(out_binding, None, True)}
    signature = Signature(params, context, has_return or return_queue, "queue" if return_queue else None,
                          asyncio.iscoroutinefunction(fn))
    trigger = QueueBinding("msg", "jobs", "AzureWebJobsStorage", "UseDevelopmentStorage=true")
    return FunctionSpec("job", fn, "/app", trigger, "msg", signature, (OUT,),
                        OUT if return_queue else None, disabled=False)


def message(body: bytes = b'{"job": 1}') -> ReceivedMessage:
    return ReceivedMessage("m-1", body, 2, NOW, NOW, NOW, "receipt")


def test_queue_trigger_gets_the_librarys_queue_message_with_metadata() -> None:
    arg = queue_trigger_arg(spec(lambda msg, out: None), message())
    assert isinstance(arg, func.QueueMessage)
    assert (arg.id, arg.get_json(), arg.dequeue_count, arg.pop_receipt) == ("m-1", {"job": 1}, 2, "receipt")
    assert arg.insertion_time == arg.expiration_time == arg.time_next_visible == NOW


def test_str_annotated_trigger_gets_the_text() -> None:
    assert queue_trigger_arg(spec(lambda msg, out: None, trigger_binding="generic"), message(b"hi")) == "hi"


def test_outputs_become_one_message_per_value_or_list_item() -> None:
    text, listing = Out(), Out()
    text.set("one")
    listing.set(["a", "b"])
    assert [o.messages for o in collect_outputs(spec(lambda msg, out: None, out_binding="generic"),
                                                {"out": text}, None)] == [("one",)]
    assert [o.messages for o in collect_outputs(spec(lambda msg, out: None), {"out": listing}, None)] == [("a", "b")]
    assert collect_outputs(spec(lambda msg, out: None), {"out": Out()}, None) == []  # unset: nothing sent


def test_a_queue_return_value_is_an_output_and_none_is_refused() -> None:
    returning = spec(lambda msg, out: None, return_queue=True)
    assert [o.messages for o in collect_outputs(returning, {"out": Out()}, "result")] == [("result",)]
    with pytest.raises(TypeError, match="unsupported type"):
        collect_outputs(returning, {"out": Out()}, None)


def test_traceparent_continues_the_callers_trace_in_a_new_span() -> None:
    caller = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    child = trace_context_for(caller, "vendor=1").trace_parent
    assert child.startswith("00-0af7651916cd43dd8448eb211c80319c-") and child.endswith("-01")
    assert child != caller
    fresh = trace_context_for("garbage", "vendor=1")
    assert fresh.trace_parent.split("-")[1] != "0af7651916cd43dd8448eb211c80319c"
    assert fresh.trace_state == ""


async def test_sync_functions_run_in_the_pool_with_a_context() -> None:
    seen: dict[str, Any] = {}

    def job(msg: str, out: Out, context: func.Context) -> None:
        local = getattr(context.thread_local_storage, "invocation_id", None)
        seen.update(thread=threading.current_thread().name, name=context.function_name,
                    directory=context.function_directory, local=local, invocation=context.invocation_id)

    invoker = Invoker(timeout_s=5)
    target = spec(job, context=True)
    await invoker.run(target, {"msg": "x", "out": Out()}, invoker.new_context(target), reason="test")
    invoker.close()
    assert seen["thread"].startswith("devhost-sync")
    assert (seen["name"], seen["directory"]) == ("job", "/app")
    assert seen["local"] == seen["invocation"]


async def test_an_invocation_over_the_function_timeout_fails() -> None:
    async def job(msg: str, out: Out) -> None:
        await asyncio.sleep(5)

    invoker = Invoker(timeout_s=0.05)
    target = spec(job)
    started = time.monotonic()
    with pytest.raises(FunctionTimeoutError, match="Timeout value"):
        await invoker.run(target, {"msg": "x", "out": Out()}, invoker.new_context(target), reason="test")
    invoker.close()
    assert time.monotonic() - started < 1


async def test_returning_a_value_without_a_return_binding_fails_like_the_worker() -> None:
    invoker = Invoker(timeout_s=None)
    target = spec(lambda msg, out: "surprise")
    with pytest.raises(RuntimeError, match="without a \\$return binding"):
        await invoker.run(target, {"msg": "x", "out": Out()}, invoker.new_context(target), reason="test")
    invoker.close()

