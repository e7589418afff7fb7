"""The OpenAI-compatible pass-through: a client's body sent as written to an endpoint of the
model group, through the same resilience policy (retry, breakers, failover) as the kernel.

Each endpoint's wire (shared/upstream/wire.py) sends it with the endpoint's auth and, for Azure, the
deployment's URL, and the answer comes back as plain JSON: nothing is modelled, so fields this
gateway does not know reach the client unchanged. Neither the openai SDK nor Semantic Kernel is
loaded on this path.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from typing import Any

from shared.upstream.attempts import held_stream, metered, retry_gate
from shared.upstream.endpoints import Endpoint
from shared.upstream.protocol import billed_text, usage_of
from shared.upstream.resilience.policy import ResiliencePolicy
from shared.upstream.wire import Receipt

log = logging.getLogger(__name__)


def upstream_body(body: Mapping[str, Any], endpoint: Endpoint) -> dict[str, Any]:
    """The client's body with only what the gateway must set: the endpoint's model or deployment,
    and usage in the stream (the tenant is charged what the provider reports)."""
    sent = {**body, "model": endpoint.upstream_model}
    if sent.get("stream"):
        sent["stream_options"] = {**(sent.get("stream_options") or {}), "include_usage": True}
    return sent


async def forward(endpoints: list[Endpoint], policy: ResiliencePolicy, path: str,
                  body: Mapping[str, Any], *, work_tokens: int | None = None,
                  receipt: Receipt | None = None) -> tuple[Endpoint, dict[str, Any]]:
    """One JSON answer (chat completions or embeddings) and the endpoint that gave it;
    `work_tokens` (a generation's completion cap x n) sets each attempt's time limit; `receipt`
    gets the provider's id of the request that answered."""
    long = work_tokens is not None

    async def attempt(endpoint: Endpoint) -> tuple[Endpoint, dict[str, Any]]:
        return endpoint, await metered(endpoint.wire.post(path, upstream_body(body, endpoint), long=long,
                                                          receipt=receipt))

    return await policy.call(endpoints, attempt, work_tokens=work_tokens, before_retry=retry_gate())


async def forward_stream(endpoints: list[Endpoint], policy: ResiliencePolicy, body: Mapping[str, Any], *,
                         receipt: Receipt | None = None) -> AsyncIterator[tuple[Endpoint, dict[str, Any]]]:
    """The chunks of a streamed answer, failing over until the first one that carries anything
    generated (attempts.held_stream)."""

    def open_stream(endpoint: Endpoint) -> AsyncGenerator[dict[str, Any], None]:
        return endpoint.wire.stream("/chat/completions", upstream_body(body, endpoint), receipt=receipt)

    async for item in held_stream(policy, endpoints, open_stream, text=billed_text,
                                  started=lambda c: bool(billed_text(c)) or _finished(c) or usage_of(c) is not None):
        yield item


def _finished(chunk: Mapping[str, Any]) -> bool:
    choices = chunk.get("choices")
    return isinstance(choices, list) and any(isinstance(c, dict) and c.get("finish_reason") for c in choices)
