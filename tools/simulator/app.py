"""The simulator's ASGI app: model routes, the /_sim control surface, and per-request logging."""

from __future__ import annotations

import dataclasses
import logging
import time
import uuid

from pydantic import BaseModel, Field
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tools.simulator.azure import refusal
from tools.simulator.config import SimulatorConfig
from tools.simulator.faults import Fault
from tools.simulator.responses import openai_error
from tools.simulator.responses_api import ResponsesService
from tools.simulator.schemas import InvalidRequest, parse
from tools.simulator.service import Simulator

log = logging.getLogger("tools.simulator")


def create_app(config: SimulatorConfig | None = None, *, simulator: Simulator | None = None) -> Starlette:
    """Build the app; pass a Simulator to inject its sleep or to reach its state from a test."""
    sim = simulator or Simulator(config or SimulatorConfig())
    control = _Control(sim)
    routes = [
        Route("/openai/deployments/{deployment}/chat/completions", sim.chat, methods=["POST"]),
        Route("/v1/chat/completions", sim.chat, methods=["POST"]),
        Route("/openai/deployments/{deployment}/embeddings", sim.embeddings, methods=["POST"]),
        Route("/v1/embeddings", sim.embeddings, methods=["POST"]),
        *_responses_routes(ResponsesService(sim)),
        Route("/v1/models", sim.models, methods=["GET"]),
        Route("/openai/models", sim.models, methods=["GET"]),
        Route("/_sim/prompt_cache", control.prompt_cache, methods=["DELETE"]),
        Route("/_sim/faults", control.faults, methods=["GET", "POST", "DELETE"]),
        Route("/_sim/stats", control.stats, methods=["GET", "DELETE"]),
        Route("/_sim/pace", control.pace, methods=["GET", "POST", "DELETE"]),
    ]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(RegionAndLog, region=sim.config.region)],
        exception_handlers={HTTPException: _http_error},
    )
    app.state.simulator = sim
    return app


def _responses_routes(service: ResponsesService) -> list[Route]:
    """The Responses API under OpenAI's /v1, Azure's v1 API (/openai/v1) and Azure's preview
    (/openai, with api-version): one region's responses behind all three."""
    routes = []
    for base in ("/v1/responses", "/openai/v1/responses", "/openai/responses"):
        routes += [
            Route(base, service.create, methods=["POST"]),
            Route(f"{base}/input_tokens", service.input_tokens, methods=["POST"]),
            Route(f"{base}/{{response_id}}", service.retrieve, methods=["GET"]),
            Route(f"{base}/{{response_id}}", service.delete, methods=["DELETE"]),
            Route(f"{base}/{{response_id}}/input_items", service.input_items, methods=["GET"]),
        ]
    return routes


class Pace(BaseModel):
    """POST /_sim/pace: the generation speed from now on (absent: unchanged)."""

    model_config = {"extra": "forbid"}

    ms_per_token: float | None = Field(default=None, ge=0, le=10_000)
    base_latency_ms: float | None = Field(default=None, ge=0, le=600_000)


class _Control:
    """The /_sim routes; unauthenticated, since only tests and operators on localhost reach them."""

    def __init__(self, sim: Simulator) -> None:
        self._sim = sim

    async def faults(self, request: Request) -> Response:
        injector = self._sim.faults
        if request.method == "POST":
            try:
                injector.set(parse(Fault, await request.body()))
            except InvalidRequest as exc:
                return openai_error(400, str(exc))
        elif request.method == "DELETE":
            injector.set(None)
        active = injector.active.model_dump(exclude_none=True) if injector.active else None
        request.state.sim_outcome = f"fault={active}"
        return JSONResponse({"fault": active})

    async def pace(self, request: Request) -> Response:
        # How fast the model generates, changed at run time (a test of a slow model needs no restart).
        sim = self._sim
        if request.method == "POST":
            try:
                pace = parse(Pace, await request.body())
                sim.config = dataclasses.replace(sim.config, **pace.model_dump(exclude_none=True))
            except (InvalidRequest, ValueError) as exc:
                return openai_error(400, str(exc))
        elif request.method == "DELETE":
            sim.config = dataclasses.replace(sim.config, ms_per_token=sim.started.ms_per_token,
                                             base_latency_ms=sim.started.base_latency_ms)
        return JSONResponse({"ms_per_token": sim.config.ms_per_token, "base_latency_ms": sim.config.base_latency_ms})

    async def prompt_cache(self, request: Request) -> Response:
        # Forgets every cached prompt prefix, so a test can start from a cold cache.
        self._sim.prefix_cache.clear()
        return JSONResponse({"cleared": True})

    async def stats(self, request: Request) -> Response:
        if request.method == "DELETE":
            self._sim.stats.reset()
        return JSONResponse(self._sim.stats.snapshot())


async def _http_error(request: Request, exc: Exception) -> Response:
    # 404 and 405 in the API's error shape, so SDKs report them as API errors, not parse failures.
    if isinstance(exc, HTTPException):
        return refusal(request, exc.status_code, exc.detail, exc.headers)
    return refusal(request, 500, "Simulator error.")


class RegionAndLog:
    """Stamps x-sim-region and Azure's request ids (x-request-id, apim-request-id) on every
    response and logs one line per request when it ends.

    Pure ASGI rather than BaseHTTPMiddleware, which would buffer streams and hide drops.
    """

    def __init__(self, app: ASGIApp, region: str) -> None:
        self.app = app
        self.region = region
        self._header = (b"x-sim-region", region.encode("latin-1"))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = "-"
        request_id = str(uuid.uuid4()).encode("ascii")
        state = scope.setdefault("state", {})

        async def stamped(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = str(message["status"])
                ids = [(name, request_id) for name in (b"x-request-id", b"apim-request-id")]
                message["headers"] = [*message.get("headers", []), self._header, *ids]
            await send(message)

        try:
            await self.app(scope, receive, stamped)
        finally:
            # Handlers leave the real outcome (dropped, timeout, tokens) in the request state.
            outcome = state.get("sim_outcome", status)
            elapsed_ms = (time.perf_counter() - started) * 1000
            log.info("%s %s %s -> %s (%.0f ms)", self.region, scope["method"], scope["path"], outcome, elapsed_ms)
