"""The OpenAI-compatible pass-through: a client's body sent as written to an endpoint of the
model group, through the same resilience policy (retry, breakers, failover) as the kernel.

Each endpoint's own SDK client sends it (`client.post`, so the SDK adds the endpoint's auth and,
for Azure, the deployment's URL), and the answer comes back as plain JSON: nothing is modelled,
so fields the SDK or this gateway do not know reach the client unchanged.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from typing import Any, cast

from openai import AsyncStream

from shared.endpoints import Endpoint
from shared.errors import ServiceUnavailable
from shared.metering import current_meter
from shared.openai_wire import billed_text, usage_of
from shared.resilience.policy import ResiliencePolicy
from shared.routing import meter_failed_attempt
from shared.upstream import classify

log = logging.getLogger(__name__)
Chunks = AsyncStream[dict[str, Any]]


def upstream_body(body: Mapping[str, Any], endpoint: Endpoint) -> dict[str, Any]:
    """The client's body with only what the gateway must set: the endpoint's model or deployment,
    and usage in the stream (the tenant is charged what the provider reports)."""
    sent = {**body, "model": endpoint.upstream_model}
    if sent.get("stream"):
        sent["stream_options"] = {**(sent.get("stream_options") or {}), "include_usage": True}
    return sent


async def forward(endpoints: list[Endpoint], policy: ResiliencePolicy, path: str,
                  body: Mapping[str, Any]) -> tuple[Endpoint, dict[str, Any]]:
    """One JSON answer (chat completions or embeddings) and the endpoint that gave it."""

    async def attempt(endpoint: Endpoint) -> tuple[Endpoint, dict[str, Any]]:
        try:
            answer = await endpoint.client.post(path, body=upstream_body(body, endpoint), cast_to=object)
        except BaseException as exc:
            meter_failed_attempt(exc)
            raise
        if not isinstance(answer, dict):
            raise ValueError("the endpoint's answer is not a JSON object")
        return endpoint, answer

    return await policy.call(endpoints, attempt)


async def forward_stream(endpoints: list[Endpoint], policy: ResiliencePolicy,
                         body: Mapping[str, Any]) -> AsyncIterator[tuple[Endpoint, dict[str, Any]]]:
    """The chunks of a streamed answer. An attempt lasts until the first chunk that carries
    anything generated: a failure before it fails over unseen; after it, ServiceUnavailable."""

    async def attempt(endpoint: Endpoint) -> tuple[Endpoint, list[dict[str, Any]], Chunks]:
        held: list[dict[str, Any]] = []
        stream: Chunks | None = None
        try:
            stream = cast(Chunks, await endpoint.client.post(
                "/chat/completions", body=upstream_body(body, endpoint), cast_to=object, stream=True,
                stream_cls=AsyncStream[object]))
            async for chunk in stream:
                held.append(chunk)
                if billed_text(chunk) or _finished(chunk) or usage_of(chunk) is not None:
                    break
        except BaseException as exc:
            # A 200 that broke before content was billed by the provider: the meter charges it.
            meter_failed_attempt(exc, "".join(billed_text(c) for c in held))
            if stream is not None:
                await stream.close()
            raise
        return endpoint, held, stream

    endpoint, held, stream = await policy.call(endpoints, attempt)
    try:
        for chunk in held:
            yield endpoint, chunk
        async for chunk in stream:
            yield endpoint, chunk
    except Exception as exc:
        policy.pool.record_failure(endpoint, classify(exc))
        log.warning("stream cut after content: endpoint=%s error=%s", endpoint.name, type(exc).__name__)
        raise ServiceUnavailable("The model's answer was cut off.") from exc
    finally:
        await stream.close()


def _finished(chunk: Mapping[str, Any]) -> bool:
    choices = chunk.get("choices")
    return isinstance(choices, list) and any(isinstance(c, dict) and c.get("finish_reason") for c in choices)


def meter_usage(payload: Mapping[str, Any]) -> None:
    """Report a response's usage to the request's meter (embeddings: all prompt)."""
    meter, usage = current_meter(), usage_of(payload)
    if meter is not None and usage is not None:
        meter.reported(usage)
