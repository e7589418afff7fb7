"""The OpenAI-compatible API as a service: chat completions passed through, embeddings, models.

A chat body goes through the gateway's one request path (rate limit, cache, budget, the detached
call and its settlement) with the pass-through as its model call. Limits come from the model
group's endpoints (`context_window`, `max_output_tokens`) and the tenant (`max_request_tokens`).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from shared.core.errors import BadRequest, ContextLengthExceeded, Forbidden, ModelNotFound
from shared.core.models import Usage
from shared.core.routes import RouteDecision
from shared.core.settings import RESPONSE_LIMIT_S
from shared.core.tokens import counter_for, request_prompt_tokens
from shared.core.values import Completion, Delta
from shared.identity.auth import Principal
from shared.pipeline.exchange import CallContext, DeltaSource, Exchange
from shared.pipeline.gateway import Answer, Gateway, whole
from shared.pipeline.prompt import BodyPrompt, EmbeddingPrompt
from shared.pipeline.routes import stream_or_fallback, whole_or_fallback
from shared.state.budget import Estimate
from shared.state.cache import CacheKey, openai_view
from shared.upstream.endpoints import Endpoint, embedding_endpoint
from shared.upstream.passthrough import forward, forward_stream
from shared.upstream.protocol import billed_text, cache_key, completion_of, usage_of
from shared.upstream.wire import Receipt

# The most answer one request may ask for, in tokens: n x the completion cap x (1 + top_logprobs),
# each logprob alternative weighing as much as a token. It bounds the memory one answer takes
# (parsed, stored, replayed), and lets a request without max_tokens (its cap is the model's whole
# max_output_tokens) ask for n=4 with 3 alternatives on a 16k-output model; a single plain answer
# at the model's own max_output_tokens always fits (docs/api-limits.md).
MAX_ANSWER_TOKENS = 262_144


class Streaming(NamedTuple):
    headers: Mapping[str, str]
    deltas: AsyncGenerator[Delta, None]


def routed_streaming(gateway: Gateway, principal: Principal, first: RouteDecision | None, ex: Exchange,
                     build: Callable[[RouteDecision], Awaitable[Exchange]]) -> Streaming:
    """`ex`'s deltas and the headers it sets; when its tier could not answer before the answer began,
    those of the other tier's exchange (`build`), its headers in place of the first's."""

    async def on(other: RouteDecision) -> AsyncGenerator[Delta, None]:
        fallback = await build(other)
        ex.headers.clear()  # the first exchange's allowance: the fallback's own comes in its place
        fallback.headers = ex.headers
        async with contextlib.aclosing(gateway.streamed(fallback)) as deltas:
            async for delta in deltas:
                yield delta

    def again() -> AsyncGenerator[Delta, None] | None:
        other = gateway.router.fallback(principal, first)
        return None if other is None else on(other)

    return Streaming(ex.headers, stream_or_fallback(gateway.streamed(ex), again))


@dataclass(frozen=True)
class Limits:
    context_window: int
    max_output_tokens: int


def group_limits(endpoints: list[Endpoint]) -> Limits:
    """The tightest limits of a model group: a request must fit whichever endpoint serves it."""
    return Limits(min(e.config.limits[0] for e in endpoints), min(e.config.limits[1] for e in endpoints))


def completion_cap(body: Mapping[str, Any], prompt: int, limits: Limits, max_request_tokens: int | None) -> int:
    """The completion tokens to reserve: the cap the client set (else what the model may still
    generate) times `n`. A 400 naming the limit when the request cannot fit."""
    field, cap = cap_field(body)
    if cap is not None and cap > limits.max_output_tokens:
        raise BadRequest(f"{field} ({cap}) is above the model's max_output_tokens ({limits.max_output_tokens}).",
                         param=field)
    if prompt + (cap or 1) > limits.context_window:
        raise ContextLengthExceeded(f"The request (about {prompt} prompt tokens + {cap or 1} completion tokens) "
                                    f"does not fit the model's context_window of {limits.context_window} tokens.",
                                    param="messages")
    if cap is None:
        cap = min(limits.max_output_tokens, limits.context_window - prompt)
    n = int(body.get("n") or 1)
    if max_request_tokens is not None and prompt + cap * n > max_request_tokens:
        raise BadRequest(f"The request (about {prompt} prompt tokens + {cap} x {n} completion tokens) is above this "
                         f"tenant's max_request_tokens of {max_request_tokens}; set a smaller max_tokens.", param=field)
    return cap * n


def cap_field(body: Mapping[str, Any]) -> tuple[str, int | None]:
    """The field that sets the completion cap (the smaller of the two when both are sent), and the
    cap; ("max_tokens", None) when the client set none."""
    asked = {k: body[k] for k in ("max_completion_tokens", "max_tokens") if body.get(k) is not None}
    field = min(asked, key=asked.__getitem__) if asked else "max_tokens"
    return field, asked.get(field)


def check_answer_size(body: Mapping[str, Any], work_tokens: int, limits: Limits) -> None:
    """A 400 naming the fields when the worst-case answer is larger than MAX_ANSWER_TOKENS."""
    top = body.get("top_logprobs") if body.get("logprobs") else None
    alternatives = top if isinstance(top, int) and top > 0 else 0
    size = work_tokens * (1 + alternatives)
    if size > max(MAX_ANSWER_TOKENS, limits.max_output_tokens):
        fields = [f for f, used in (("n", (body.get("n") or 1) != 1), (cap_field(body)[0], True),
                                    ("top_logprobs", alternatives > 0)) if used]
        raise BadRequest(f"The answer this asks for could reach {size} tokens (n x max_tokens x (1 + top_logprobs)), "
                         f"above the limit of {MAX_ANSWER_TOKENS}; lower {', '.join(fields)}.", param=fields[0])


class OpenAIPath:
    """Chat completions and embeddings as the client wrote them; the tenant's model list."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.groups = gateway.engine.groups  # the pass-through needs no Semantic Kernel

    async def decide(self, ctx: CallContext, requested: str | None, body: Mapping[str, Any]) -> RouteDecision | None:
        """Where a route asked for as the model sends this body (None: no route was asked for)."""
        format_ = body.get("response_format")
        structured = isinstance(format_, dict) and format_.get("type") != "text"
        return await self.gateway.route(ctx, requested, body.get("messages") or [],
                                        tools=len(body.get("tools") or []), response_format=structured)

    def exchange(self, ctx: CallContext, requested: str | None, body: dict[str, Any],
                 route: RouteDecision | None = None) -> Exchange:
        """A chat body as an exchange on the model asked for, or on the route decision's: its
        limits checked, its estimate, its pass-through call (streamed or whole, as the body asks)."""
        model = self.gateway.routed_model(ctx.principal, route, requested)
        endpoints = self.groups.group(model)
        prompt = request_prompt_tokens(model, body)
        limits = group_limits(endpoints)
        cap = completion_cap(body, prompt, limits, ctx.principal.limits.max_request_tokens)
        check_answer_size(body, cap, limits)
        key = CacheKey(ctx.principal.tenant, model, lambda: cache_key(body), lambda: openai_view(body))
        estimate = Estimate(prompt, cap)
        texts = BodyPrompt(body)  # masked in place under redact_input: the call and the key read `body`
        if body.get("stream"):
            return Exchange(ctx, "openai.chat", model, key, estimate, self._streamed(endpoints, body), route=route,
                            prompt=texts)
        # A whole answer sends nothing until it is done; the HTTP front end waits at most 230 s.
        time_limit = self.groups.time_limit_s(model, cap)
        field, asked = cap_field(body)
        if time_limit > RESPONSE_LIMIT_S and asked is not None:
            raise BadRequest(f"{field} ({asked}) x n could take this model up to {time_limit:.0f} s, longer than "
                             f"a non-streamed answer may take ({RESPONSE_LIMIT_S:.0f} s). Send stream: true, or "
                             f"a smaller {field}.", param=field)

        async def invoke() -> Completion:
            receipt: Receipt = {}
            endpoint, answer = await forward(endpoints, self.groups.policy, "/chat/completions", body,
                                             work_tokens=cap, receipt=receipt)
            return completion_of(answer, endpoint.name, request_id=receipt.get("request_id"))

        return Exchange(ctx, "openai.chat", model, key, estimate, whole(invoke),
                        long_after_s=self.groups.long_after_s(model, cap), route=route, prompt=texts)

    def _streamed(self, endpoints: list[Endpoint], body: dict[str, Any]) -> DeltaSource:
        async def source() -> AsyncIterator[Delta]:
            receipt: Receipt = {}
            async for _, chunk in forward_stream(endpoints, self.groups.policy, body, receipt=receipt):
                finish = next((c.get("finish_reason") for c in chunk.get("choices") or [] if c.get("finish_reason")),
                              None)
                yield Delta(content=billed_text(chunk), finish_reason=finish, usage=usage_of(chunk),
                            request_id=receipt.get("request_id"), model=chunk.get("model"), raw=chunk)

        return source

    async def complete(self, ctx: CallContext, requested: str | None, body: dict[str, Any]) -> Answer:
        async def run(route: RouteDecision | None) -> Answer:
            return await self.gateway.answer(self.exchange(ctx, requested, body, route))

        return await whole_or_fallback(run, await self.decide(ctx, requested, body),
                                       functools.partial(self.gateway.router.fallback, ctx.principal))

    async def stream(self, ctx: CallContext, requested: str | None, body: dict[str, Any]) -> Streaming:
        """The answer as deltas, and the headers the exchange sets for the response (filled once the
        first delta has come; by the other tier's exchange when the route fell back to it)."""
        first = await self.decide(ctx, requested, body)

        async def build(route: RouteDecision | None) -> Exchange:
            return self.exchange(ctx, requested, body, route)

        return routed_streaming(self.gateway, ctx.principal, first, self.exchange(ctx, requested, body, first), build)

    def models(self, principal: Principal) -> list[str]:
        """The model groups, model routes and embedding deployments this tenant may use."""
        allowed = principal.limits.allowed_models
        chat = sorted({e.config.model for e in self.groups.endpoints()})
        chat = [m for m in chat if allowed is None or m in allowed]
        routes = sorted(self.gateway.router.routes(principal))
        # An embedding deployment is listed under its deployment name and its model's (both address it).
        embedding = sorted({name for e in self.groups.endpoints() if e.config.embedding_deployment
                            and e.config.model in chat
                            for name in (e.config.embedding_deployment, e.config.embedding_model) if name})
        return chat + routes + [m for m in embedding if m not in chat]

    async def embeddings(self, ctx: CallContext, requested: str | None, body: dict[str, Any]) -> Answer:
        """Embeddings through the pipeline (rate limit, budget: charged like a chat, the input is the
        prompt; never cached) over the endpoints whose `embedding_deployment` (or `embedding_model`, the
        name OpenAI clients send) is the one asked for."""
        owners = [e for e in self.groups.endpoints() if requested and e.config.embedding_deployment
                  and requested in (e.config.embedding_deployment, e.config.embedding_model)]
        if not owners:
            raise ModelNotFound(f"The embedding model or deployment {requested!r} is not available here.")
        allowed = ctx.principal.limits.allowed_models
        if allowed is not None and not any(e.config.model in allowed for e in owners):
            raise Forbidden(f"The embedding model {requested!r} is not enabled for this tenant.")
        model = owners[0].config.model  # priced and counted as its chat model (documented)
        prompt = embedding_tokens(model, body.get("input"))

        async def invoke() -> Completion:
            receipt: Receipt = {}
            endpoint, answer = await forward([embedding_endpoint(e) for e in owners], self.groups.policy,
                                             "/embeddings", body, receipt=receipt)
            usage = usage_of(answer) or Usage(prompt_tokens=prompt, completion_tokens=0, total_tokens=prompt)
            return Completion("", "stop", str(answer.get("model") or ""), usage, endpoint.name, raw=answer,
                              request_id=receipt.get("request_id"))

        return await self.gateway.answer(Exchange(ctx, "openai.embeddings", model, None, Estimate(prompt, 0),
                                                  whole(invoke), prompt=EmbeddingPrompt(body)))


def embedding_tokens(model: str, value: object) -> int:
    """The input's tokens: texts counted, token ids one each (what providers bill)."""
    if isinstance(value, str):
        return max(1, counter_for(model)(value))
    if isinstance(value, list) and value and all(isinstance(v, int) for v in value):
        return len(value)
    if isinstance(value, list):
        return sum(embedding_tokens(model, v) for v in value)
    return 1
