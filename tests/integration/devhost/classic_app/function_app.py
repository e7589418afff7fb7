"""A small app the devhost tests serve with the classic model: func.HttpRequest in, func.HttpResponse out."""

from __future__ import annotations

import asyncio
import json

import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.route(route="health", methods=["GET"])
def health(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse('{"status": "healthy"}', mimetype="application/json")


@app.route(route="orders/{order_id:guid}/lines/{line:int?}", methods=["GET"])
async def order_line(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(json.dumps({"route_params": dict(req.route_params), "params": dict(req.params),
                                         "url": req.url, "method": req.method,
                                         "header": req.headers.get("x-custom")}),
                             mimetype="application/json")


@app.route(route="boom", methods=["GET"])
def boom(req: func.HttpRequest) -> func.HttpResponse:
    raise RuntimeError("secret-detail-456")


@app.route(route="echo", methods=["POST"])
@app.queue_output(arg_name="msg", queue_name="%OUT_QUEUE%", connection="AzureWebJobsStorage")
def echo(req: func.HttpRequest, msg: func.Out[str]) -> func.HttpResponse:
    msg.set(req.get_body().decode())
    return func.HttpResponse(req.get_body(), status_code=201, headers={"x-echo": "yes"})


@app.route(route="broken-output", methods=["POST"])
@app.queue_output(arg_name="msg", queue_name="%OUT_QUEUE%", connection="BadStorage")
def broken_output(req: func.HttpRequest, msg: func.Out[str]) -> func.HttpResponse:
    msg.set("never delivered")
    return func.HttpResponse("the function itself succeeded")


@app.route(route="slow", methods=["GET"])
async def slow(req: func.HttpRequest) -> func.HttpResponse:
    await asyncio.sleep(1.5)
    return func.HttpResponse("finished")
