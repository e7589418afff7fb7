"""The HTTP front door: the host's routing and body limit, then the classic or the HTTP-streams model."""

from __future__ import annotations

import importlib
import logging
import urllib.parse
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any

from azure.functions.http import HttpRequest, HttpResponseConverter

from tools.devhost.bindings import Out, collect_outputs
from tools.devhost.invoke import Invoker
from tools.devhost.loader import FunctionSpec, LoadedApp
from tools.devhost.queue_io import QueueClients
from tools.devhost.settings import lookup_setting

log = logging.getLogger("devhost")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

DEFAULT_BODY_LIMIT = 104857600  # the host's Kestrel limit unless FUNCTIONS_REQUEST_BODY_SIZE_LIMIT says otherwise
REASON = "This function was programmatically called via the host APIs."
HOMEPAGE = (b"<!DOCTYPE html><html><head><title>Your Functions app is up and running</title></head>"
            b"<body><h1>Your Functions app is up and running</h1><p>Served by devhost.</p></body></html>")
_HANDLER = "devhost.invocation"  # scope key carrying the invocation into the worker-side FastAPI route
_HOP_BY_HOP = {b"connection", b"keep-alive", b"proxy-connection", b"te", b"trailer", b"upgrade", b"host"}


class HttpHost:
    """ASGI app standing in for the host's HTTP pipeline and, for HTTP streams, the worker's web server."""

    def __init__(self, app: LoadedApp, invoker: Invoker, clients: QueueClients, environ: Mapping[str, str],
                 *, message_encoding: str, worker_port: int) -> None:
        self.app, self.invoker, self.clients = app, invoker, clients
        self.encoding, self.worker_port = message_encoding, worker_port
        limit = environ.get("FUNCTIONS_REQUEST_BODY_SIZE_LIMIT", "")
        self.body_limit = int(limit) if limit.strip().isdigit() else DEFAULT_BODY_LIMIT
        # The host compares with bool.TrueString ignoring case: only "true" turns the page off.
        self.homepage_disabled = (lookup_setting(environ, "AzureWebJobsDisableHomepage") or "").lower() == "true"
        self._worker_app = _worker_web_app() if app.http_streams else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1000})
            return
        raw_path = scope.get("raw_path") or urllib.parse.quote(scope["path"]).encode()
        found = self.app.routes.match(raw_path.decode("latin-1"), scope["method"])
        if found is None or found[0].target.disabled:
            if scope["path"] == "/":
                await self._homepage(send)
            else:
                await _empty(send, 404)  # no route for this path and method: the host's bare 404
            return
        body = await _read_body(scope, receive, send, self.body_limit)
        if body is None:
            return
        route, values = found
        if self._worker_app is not None:
            await self._serve_streams(route.target, values, scope, body, receive=receive, send=send)
        else:
            await self._serve_classic(route.target, values, scope, body, send)

    async def _homepage(self, send: Send) -> None:
        """'/' when no function took it (HomepageMiddleware): 204 with AzureWebJobsDisableHomepage, else a page."""
        if self.homepage_disabled:
            await _empty(send, 204)
            return
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/html"), (b"content-length", str(len(HOMEPAGE)).encode())]})
        await send({"type": "http.response.body", "body": HOMEPAGE})

    async def _serve_classic(self, spec: FunctionSpec, values: dict[str, str], scope: Scope, body: bytes,
                             send: Send) -> None:
        headers = _joined_headers(scope)
        context = self.invoker.new_context(spec, headers.get("traceparent"), headers.get("tracestate"))
        outs = {b.param: Out() for b in spec.outputs}
        if spec.signature.params[spec.trigger_param].binding == "generic":
            # The worker's generic binding (a str/bytes annotation) cannot decode an HTTP request.
            log.error("Function '%s': unexpected type of data received for the \"generic\" binding: 'http'", spec.name)
            await _empty(send, 500)
            return
        try:
            args = {**outs, spec.trigger_param: _classic_request(scope, headers, body, values)}
            result = await self.invoker.run(spec, args, context, reason=REASON)
        except Exception:  # noqa: BLE001  logged by the invoker; the host answers a bare 500
            await _empty(send, 500)
            return
        try:
            status, response_headers, content = _classic_response(result)
            # Outputs are written before the host sends the response, so a failed write fails the request.
            await self.clients.send_outputs(collect_outputs(spec, outs, None), self.encoding)
        except Exception:
            log.exception("Function '%s' (Id=%s) failed after it returned", spec.name, context.invocation_id)
            await _empty(send, 500)
            return
        await send({"type": "http.response.start", "status": status, "headers": response_headers})
        await send({"type": "http.response.body", "body": content})

    async def _serve_streams(self, spec: FunctionSpec, values: dict[str, str], scope: Scope, body: bytes,
                             *, receive: Receive, send: Send) -> None:
        headers = _joined_headers(scope)
        context = self.invoker.new_context(spec, headers.get("traceparent"), headers.get("tracestate"))
        outs = {b.param: Out() for b in spec.outputs}
        returned = False

        async def invoke(request: Any) -> Any:
            nonlocal returned
            from azurefunctions.extensions.base import RequestTrackerMeta

            RequestTrackerMeta.get_synchronizer().sync_route_params(request, values)
            result = await self.invoker.run(spec, {**outs, spec.trigger_param: request}, context, reason=REASON)
            returned = True
            return result

        inner = self._forwarded_scope(scope, context.invocation_id)
        inner[_HANDLER] = invoke
        assert self._worker_app is not None  # noqa: S101  set whenever HTTP streams are on
        try:
            await self._worker_app(inner, _replay(body, receive), send)
        except Exception:  # the worker's FastAPI already answered 500
            if returned:
                log.exception("The response of function '%s' (Id=%s) failed while it was sent", spec.name,
                              context.invocation_id)
            return
        if returned:
            # With HTTP streams the host writes outputs only after the proxied response completed.
            try:
                await self.clients.send_outputs(collect_outputs(spec, outs, None), self.encoding)
            except Exception:
                log.exception("Function '%s' (Id=%s): writing its output bindings failed after its response was sent",
                              spec.name, context.invocation_id)

    def _forwarded_scope(self, scope: Scope, invocation_id: str) -> Scope:
        """The request as the worker's server sees it after the host's proxy (YARP's default transforms)."""
        original = [(k.lower(), v) for k, v in scope["headers"]]
        host = next((v for k, v in original if k == b"host"), b"")
        client = (scope.get("client") or ("127.0.0.1", 0))[0]
        headers = [(k, v) for k, v in original if k not in _HOP_BY_HOP and not k.startswith(b"x-forwarded-")]
        headers += [(b"host", f"127.0.0.1:{self.worker_port}".encode()), (b"x-forwarded-for", client.encode()),
                    (b"x-forwarded-proto", scope.get("scheme", "http").encode()), (b"x-forwarded-host", host)]
        # The host sets the invocation id itself, replacing any the client sent.
        headers = [(k, v) for k, v in headers if k != b"x-ms-invocation-id"]
        headers.append((b"x-ms-invocation-id", invocation_id.encode()))
        # uvicorn in the worker trusts the loopback proxy: client and scheme come from X-Forwarded-*.
        return {**scope, "headers": headers, "server": ("127.0.0.1", self.worker_port), "client": (client, 0)}


def _worker_web_app() -> ASGIApp:
    """The FastAPI app the worker builds from the app's web extension, with the worker's catch-all route."""
    from azurefunctions.extensions.base import ModuleTrackerMeta, RequestTrackerMeta

    web_app = importlib.import_module(str(ModuleTrackerMeta.get_module())).WebApp()

    async def catch_all(request: Any) -> Any:
        return await request.scope[_HANDLER](request)

    catch_all.__annotations__ = {"request": RequestTrackerMeta.get_request_type()}
    web_app.route(catch_all)
    app: ASGIApp = web_app.get_app()
    return app


def _classic_request(scope: Scope, headers: dict[str, str], body: bytes, values: dict[str, str]) -> HttpRequest:
    """func.HttpRequest as the worker builds it from the host's RpcHttp."""
    server = scope.get("server") or ("127.0.0.1", 80)
    host = headers.get("host") or f"{server[0]}:{server[1]}"
    query = scope.get("query_string", b"").decode("latin-1")
    path = (scope.get("raw_path") or urllib.parse.quote(scope["path"]).encode()).decode("latin-1")
    params: dict[str, str] = {}
    for key, value in urllib.parse.parse_qsl(query, keep_blank_values=True):
        params[key] = f"{params[key]},{value}" if key in params else value
    return HttpRequest(method=scope["method"], url=f"{scope.get('scheme', 'http')}://{host}{path}"
                       + (f"?{query}" if query else ""), headers=headers,
                       params={k: v for k, v in params.items() if v}, route_params=values,
                       body_type="bytes", body=body)


def _classic_response(result: Any) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """Status, headers and body the host sends for a classic function's return value."""
    try:
        datum = HttpResponseConverter.encode(result, expected_type=None)
    except NotImplementedError:
        raise TypeError(f'unable to encode outgoing TypedData: unsupported type "http" for Python type '
                        f'"{type(result).__name__}"') from None
    if datum.type == "string":
        text = str(datum.value).encode()
        length = str(len(text)).encode()
        return 200, [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", length)], text
    value = datum.value
    status = int(value["status_code"].value)
    headers = [(str(n).encode("latin-1"), str(h.value).encode("latin-1")) for n, h in value["headers"].items()]
    for cookie in value.get("cookies") or []:
        headers += [(b"set-cookie", morsel.OutputString().encode("latin-1")) for morsel in cookie.values()]
    content = b"" if status in (204, 304) else bytes(value["body"].value or b"")
    if not any(name.lower() == b"content-length" for name, _ in headers):
        headers.append((b"content-length", str(len(content)).encode()))  # the host buffers, so it knows the length
    return status, headers, content


def _joined_headers(scope: Scope) -> dict[str, str]:
    """Lower-cased names, repeated headers joined with ',' (ASP.NET Core's StringValues)."""
    joined: dict[str, str] = {}
    for key, value in scope["headers"]:
        name, text = key.decode("latin-1").lower(), value.decode("latin-1")
        joined[name] = f"{joined[name]},{text}" if name in joined else text
    return joined


async def _read_body(scope: Scope, receive: Receive, send: Send, limit: int) -> bytes | None:
    """The whole body, or None after answering 413 (over the limit) or on disconnect."""
    declared = next((v for k, v in scope["headers"] if k.lower() == b"content-length"), None)
    if declared is not None and declared.strip().isdigit() and int(declared) > limit:
        await _empty(send, 413)
        return None
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            await _empty(send, 413)
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """Hand the buffered body to the worker's app once, then pass through (disconnects)."""
    delivered = False

    async def replay() -> Message:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _empty(send: Send, status: int) -> None:
    await send({"type": "http.response.start", "status": status, "headers": [(b"content-length", b"0")]})
    await send({"type": "http.response.body", "body": b""})
