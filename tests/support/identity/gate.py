"""An Azure OpenAI front door for the simulator (which accepts any key): checks `api-key` against
the keys a test allows, or a Bearer token against the local issuer, then forwards; counts calls."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import httpx
import jwt
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.support.identity.issuer import Issuer

COGNITIVE_RESOURCE = "https://cognitiveservices.azure.com"


@dataclass
class Gate:
    upstream: str
    issuer: Issuer
    keys: set[str] = field(default_factory=set)  # api-key values accepted; empty: none
    statuses: Counter[int] = field(default_factory=Counter)
    tokens_seen: set[str] = field(default_factory=set)
    url: str = ""

    @property
    def calls(self) -> int:
        return sum(self.statuses.values())

    def reset(self) -> None:
        self.statuses.clear()
        self.tokens_seen.clear()

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/{path:path}", self._handle, methods=["GET", "POST"])])

    def _authorized(self, request: Request) -> bool:
        key = request.headers.get("api-key")
        if key is not None:
            return key in self.keys
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer":
            return False
        try:
            self.issuer.verify(token, COGNITIVE_RESOURCE)
        except jwt.PyJWTError:
            return False
        self.tokens_seen.add(token)
        return True

    async def _handle(self, request: Request) -> Response:
        if not self._authorized(request):
            self.statuses[401] += 1
            return JSONResponse({"error": {"code": "401", "message": "Access denied due to invalid subscription "
                                           "key or wrong API endpoint."}}, status_code=401)
        client = httpx.AsyncClient(base_url=self.upstream, timeout=60)
        upstream = await client.send(
            client.build_request(request.method, request.url.path, params=request.query_params,
                                 content=await request.body(),
                                 headers={"content-type": request.headers.get("content-type", "application/json"),
                                          "api-key": "forwarded"}),
            stream=True,
        )
        self.statuses[upstream.status_code] += 1

        async def close() -> None:
            await upstream.aclose()
            await client.aclose()

        headers = {k: v for k, v in upstream.headers.items() if k.lower() in ("content-type", "retry-after")}
        return StreamingResponse(upstream.aiter_raw(), status_code=upstream.status_code, headers=headers,
                                 background=BackgroundTask(close))
