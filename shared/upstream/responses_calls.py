"""The Responses API's calls to a model endpoint, through the one resilience policy: a response
created (whole, or streamed and held until its answer begins, so a failure before that fails over
unseen), and the stored response's routes (retrieve, delete, input items) on its origin endpoint."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from typing import Any

from shared.upstream.attempts import held_stream
from shared.upstream.endpoints import Endpoint
from shared.upstream.errors import EndpointRefused, StreamErrorEvent
from shared.upstream.passthrough import forward
from shared.upstream.resilience.policy import ResiliencePolicy
from shared.upstream.responses_protocol import TERMINAL, generated_text
from shared.upstream.wire import Receipt

PATH = "/responses"


async def create(endpoints: list[Endpoint], policy: ResiliencePolicy, body: Mapping[str, Any], *,
                 work_tokens: int, receipt: Receipt) -> tuple[Endpoint, dict[str, Any]]:
    """A whole response and the endpoint that created it (`work_tokens` sets each attempt's time limit)."""
    return await forward(endpoints, policy, PATH, body, work_tokens=work_tokens, receipt=receipt)


async def create_stream(endpoints: list[Endpoint], policy: ResiliencePolicy, body: Mapping[str, Any], *,
                        receipt: Receipt) -> AsyncIterator[tuple[Endpoint, dict[str, Any]]]:
    """The events of a streamed response, failing over until the first that carries generated
    tokens or ends the response (shared/upstream/attempts.held_stream)."""

    def open_stream(endpoint: Endpoint) -> AsyncGenerator[dict[str, Any], None]:
        return _events(endpoint.wire.stream(PATH, {**body, "model": endpoint.upstream_model}, receipt=receipt))

    async for item in held_stream(policy, endpoints, open_stream, text=generated_text,
                                  started=lambda e: bool(generated_text(e)) or e.get("type") in TERMINAL):
        yield item


async def _events(stream: AsyncGenerator[dict[str, Any], None]) -> AsyncGenerator[dict[str, Any], None]:
    """The provider's events; its `error` event raised (the provider failed the stream), never passed on."""
    try:
        async for event in stream:
            if event.get("type") == "error":
                raise StreamErrorEvent(event)
            yield event
    finally:
        await stream.aclose()


async def stored(origin: Endpoint, policy: ResiliencePolicy, method: str, path: str) -> dict[str, Any] | None:
    """A stored response's route on its origin (GET or DELETE); None when the origin does not hold
    it (its 404: deleted, expired, or created with store: false)."""

    async def attempt(endpoint: Endpoint) -> dict[str, Any] | None:
        try:
            return await endpoint.wire.fetch(method, path)
        except EndpointRefused as exc:
            if exc.status == 404:
                return None
            raise

    return await policy.call([origin], attempt)


async def count_input(endpoints: list[Endpoint], policy: ResiliencePolicy,
                      body: Mapping[str, Any]) -> dict[str, Any]:
    """The provider's count of a request's input tokens (free: nothing is generated)."""
    _, answer = await forward(endpoints, policy, f"{PATH}/input_tokens", body)
    return answer
