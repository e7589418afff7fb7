"""A small app the devhost tests serve: HTTP streams (FastAPI types), queue triggers and queue outputs."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import threading
import typing
from pathlib import Path

import azure.functions as func
from azurefunctions.extensions.http.fastapi import JSONResponse, Request, Response, StreamingResponse

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)

_release = asyncio.Event()  # lets a test decide when the streamed response may finish
_in_flight = 0
_batch_full = asyncio.Event()


def _record(name: str, **fields: object) -> None:
    """One JSON line per invocation, for the test to read (output bindings are not written on failure)."""
    with (Path(os.environ["RESULTS_DIR"]) / f"{name}.jsonl").open("a") as out:
        out.write(json.dumps(fields) + "\n")


@app.route(route="health", methods=["GET"])
async def health(req: Request) -> JSONResponse:
    return JSONResponse({"status": "healthy", "greeting": os.environ.get("GREETING")})


@app.route(route="items/{id:int}", methods=["GET"])
async def item(req: Request) -> JSONResponse:
    return JSONResponse({"path_params": dict(req.path_params), "host": req.headers.get("host"),
                         "forwarded_host": req.headers.get("x-forwarded-host"),
                         "invocation_header": req.headers.get("x-ms-invocation-id")})


# The worker accepts plain `dict` here but refuses `dict[str, bool]` as a non-type annotation.
@app.route(route="v1/ping", methods=["GET"])
async def ping(req: Request) -> dict:  # type: ignore[type-arg]
    return {"pong": True}  # FastAPI in the worker turns a dict into JSON


@app.function_name("zz_fallback")
@app.route(route="v1/{*rest}")
async def fallback(req: Request) -> JSONResponse:
    return JSONResponse({"fallback": req.path_params.get("rest")}, status_code=404)


@app.route(route="legacy/{*rest}")
async def a_legacy(req: Request) -> JSONResponse:
    return JSONResponse({"handled_by": "a_legacy", "rest": req.path_params.get("rest")})


@app.route(route="legacy/exact", methods=["GET"])
async def b_legacy_exact(req: Request) -> JSONResponse:
    return JSONResponse({"handled_by": "b_legacy_exact"})


@app.route(route="stream", methods=["GET"])
async def stream(req: Request) -> StreamingResponse:
    async def chunks() -> typing.AsyncIterator[str]:
        yield "first\n"
        await asyncio.wait_for(_release.wait(), 15)
        _release.clear()
        yield "second\n"

    return StreamingResponse(chunks(), media_type="text/plain")


@app.route(route="stream/release", methods=["POST"])
async def stream_release(req: Request) -> JSONResponse:
    _release.set()
    return JSONResponse({"released": True})


@app.route(route="boom", methods=["GET"])
async def boom(req: Request) -> Response:
    raise RuntimeError("secret-detail-123")


@app.route(route="sync", methods=["GET"])
def sync_info(req: Request, context: func.Context) -> JSONResponse:
    return JSONResponse({"thread": threading.current_thread().name, "invocation_id": context.invocation_id,
                         "function_name": context.function_name, "function_directory": context.function_directory,
                         "traceparent": context.trace_context.trace_parent,
                         "thread_local_invocation_id": getattr(context.thread_local_storage, "invocation_id", None)})


@app.route(route="enqueue", methods=["POST"])
@app.queue_output(arg_name="msg", queue_name="%OUT_QUEUE%", connection="AzureWebJobsStorage")
@app.queue_output(arg_name="many", queue_name="%OUT_QUEUE%", connection="AzureWebJobsStorage")
async def enqueue(req: Request, msg: func.Out[str], many: func.Out[typing.List[str]]) -> JSONResponse:  # noqa: UP006  the worker rejects list[str]
    body = (await req.body()).decode()
    msg.set(body)
    many.set([f"{body}-1", f"{body}-2"])
    return JSONResponse({"queued": 3}, status_code=202)


@app.queue_trigger(arg_name="msg", queue_name="%WORK_QUEUE%", connection="AzureWebJobsStorage")
@app.queue_output(arg_name="done", queue_name="%DONE_QUEUE%", connection="AzureWebJobsStorage")
async def work(msg: func.QueueMessage, done: func.Out[str]) -> None:
    body = msg.get_body().decode()
    _record("work", id=msg.id, body=body, dequeue_count=msg.dequeue_count, type=type(msg).__name__,
            has_times=all([msg.insertion_time, msg.expiration_time, msg.time_next_visible]),
            pop_receipt=bool(msg.pop_receipt))
    done.set(f"done:{body}")


@app.queue_trigger(arg_name="msg", queue_name="%FAIL_QUEUE%", connection="AzureWebJobsStorage")
def flaky(msg: func.QueueMessage) -> None:
    _record("flaky", id=msg.id, dequeue_count=msg.dequeue_count, body=msg.get_body().decode())
    raise RuntimeError("this job always fails")


@app.queue_trigger(arg_name="msg", queue_name="%SLOW_QUEUE%", connection="AzureWebJobsStorage")
async def slow(msg: func.QueueMessage) -> None:
    global _in_flight  # noqa: PLW0603  the test reads how many ran at once
    _in_flight += 1
    if _in_flight >= 4:
        _batch_full.set()
    with contextlib.suppress(TimeoutError):  # wait for a full batch of four (or give up)
        await asyncio.wait_for(_batch_full.wait(), 3)
    _record("slow", id=msg.id, in_flight=_in_flight)
    await asyncio.sleep(0.2)
    _in_flight -= 1
    if _in_flight == 0:
        _batch_full.clear()


@app.timer_trigger(arg_name="timer", schedule="%TICK_SCHEDULE%")
async def tick(timer: func.TimerRequest) -> None:
    # func.TimerRequest (the ABC) declares only past_due; the worker's azure.functions.timer.TimerRequest, what
    # every timer function receives, also has schedule_status and schedule.
    _record("tick", type=type(timer).__name__, past_due=timer.past_due,
            status=timer.schedule_status,  # type: ignore[attr-defined]
            schedule=timer.schedule)  # type: ignore[attr-defined]
