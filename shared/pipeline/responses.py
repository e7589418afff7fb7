"""The Responses API as an operation of the pipeline (docs/responses.md): a create goes through the
stages like a chat (rate limit, budget, the detached drain and its settlement), with tenant-owned
records of every response id and affinity to the endpoint that created the response it continues.

A first turn fails over across its model group like a chat, and a route asked for as its model
(`auto`) is scored on its instructions and input and falls back across tiers like a chat. A
follow-up (previous_response_id) can only be answered by the endpoint holding the response it
continues: it goes there, or is refused with a 503 `response-origin-unavailable` (never sent to an
endpoint that cannot know the response); a route name on it continues on that response's model.
The guard screens the input (ResponsesPrompt) and redacts the answer in its own shape
(shared/pipeline/responses_redaction.py).
The exact cache does not apply: a stateful request must reach the provider, and a stateless one
is not cached either (its events are not replayable from a chat answer).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from shared.core.errors import BadRequest, ContextLengthExceeded, ResponseNotFound, ServiceUnavailable
from shared.core.routes import RouteDecision
from shared.core.settings import RESPONSE_LIMIT_S
from shared.pipeline.exchange import CallContext, Exchange
from shared.pipeline.gateway import Answer, Gateway
from shared.pipeline.openai_path import Streaming, group_limits, routed_streaming
from shared.pipeline.prompt import ResponsesPrompt
from shared.pipeline.responses_checks import check_request, not_found, response_id
from shared.pipeline.responses_redaction import ResponsesSource
from shared.pipeline.responses_turn import Turn, origin_down
from shared.pipeline.routes import whole_or_fallback
from shared.state.budget import Estimate
from shared.state.cosmos import CosmosState
from shared.state.responses import CosmosResponseRecords, ResponseRecord, ResponseRecords
from shared.upstream import responses_calls as calls
from shared.upstream.endpoints import Endpoint
from shared.upstream.responses_protocol import prompt_estimate, sealed_items

# What replaying a previous response costs beyond its recorded input + output: the framing of its
# output items as input (a message's role and 3 tokens, a call's 3 more), a few per chained turn.
CONTEXT_SLACK = 16


class ResponsesApi:
    """Create (whole or streamed), retrieve, delete, input items and input token counts."""

    def __init__(self, gateway: Gateway, records: ResponseRecords) -> None:
        self.gateway = gateway
        self.groups = gateway.engine.groups
        self.records = records

    @classmethod
    def over(cls, gateway: Gateway, cosmos: CosmosState) -> ResponsesApi:
        """The operation over the container's gateway, its records in Cosmos."""
        return cls(gateway, CosmosResponseRecords(cosmos))

    async def create(self, ctx: CallContext, requested: str | None, body: dict[str, Any]) -> Answer:
        async def run(route: RouteDecision | None) -> Answer:
            return await self.gateway.answer(await self.exchange(ctx, requested, body, route))

        return await whole_or_fallback(run, await self.decide(ctx, requested, body),
                                       functools.partial(self.gateway.router.fallback, ctx.principal))

    async def stream(self, ctx: CallContext, requested: str | None, body: dict[str, Any]) -> Streaming:
        """The events, and the headers the exchange sets (by the other tier's exchange when the route
        fell back to it). A fallback happens only while no event went out: the events before the first
        generated token are held upstream (held_stream), and what redaction holds back is let out
        before an error, so a client never sees two responses begin."""
        first = await self.decide(ctx, requested, body)

        async def build(route: RouteDecision | None) -> Exchange:
            return await self.exchange(ctx, requested, body, route)

        return routed_streaming(self.gateway, ctx.principal, first, await build(first), build)

    async def decide(self, ctx: CallContext, requested: str | None, body: dict[str, Any]) -> RouteDecision | None:
        """The request refused or allowed, and, for a first turn that asks for a route, where it goes
        (a follow-up is never routed: it continues on the model of what it continues)."""
        check_request(body, ctx.principal.responses)
        return None if _follows(body) else await self._routed(ctx, requested, body)

    async def _routed(self, ctx: CallContext, requested: str | None, body: dict[str, Any], *,
                      with_second_opinion: bool = True) -> RouteDecision | None:
        """Where a first turn's route sends it, scored on its instructions and input as chat messages."""
        text, tools = body.get("text"), body.get("tools")
        format_ = text.get("format") if isinstance(text, dict) else None
        return await self.gateway.route(ctx, requested, ResponsesPrompt(body).messages(),
                                        tools=len(tools) if isinstance(tools, list) else 0,
                                        response_format=isinstance(format_, dict) and format_.get("type") != "text",
                                        with_second_opinion=with_second_opinion)

    async def exchange(self, ctx: CallContext, requested: str | None, body: dict[str, Any],
                       route: RouteDecision | None = None) -> Exchange:
        """The request (allowed by `decide`) as an exchange: owned and placed before anything is reserved."""
        context, previous, pinned = 0, body.get("previous_response_id"), _follows(body)
        if isinstance(previous, str):
            record = await self._owned(ctx, previous)
            model = self._continuing(ctx, requested, record.model)
            if record.model != model:
                raise BadRequest(f"previous_response_id continues a response of model {record.model!r}: ask that "
                                 "model, or start a new response.", param="previous_response_id")
            endpoints, context = [self._usable(record.endpoint)], record.context_tokens + CONTEXT_SLACK
        elif pinned:
            origin = self._usable(await self._sealed_by(ctx, sealed_items(body.get("input"))))
            model, endpoints = self._continuing(ctx, requested, origin.config.model), [origin]
        else:
            model = self.gateway.routed_model(ctx.principal, route, requested)
            endpoints = self.groups.group(model)
        prompt = prompt_estimate(model, body) + context
        cap = self._cap(body, prompt, endpoints, ctx)
        estimate = Estimate(prompt, cap)
        turn = Turn(self.groups.policy, self.records, ctx, model=model, body=body, estimate=estimate, pinned=pinned)
        texts = ResponsesPrompt(body)  # screened, and masked in place under redact_input: the call reads `body`
        if body.get("stream"):
            return Exchange(ctx, "openai.responses", model, None, estimate, ResponsesSource(turn.streamed(endpoints)),
                            route=route, prompt=texts)
        time_limit = self.groups.policy.call_limit_s(endpoints, cap) or 0.0
        if time_limit > RESPONSE_LIMIT_S and body.get("max_output_tokens") is not None:
            raise BadRequest(f"max_output_tokens ({cap}) could take this model up to {time_limit:.0f} s, longer than a "
                             f"non-streamed answer may take ({RESPONSE_LIMIT_S:.0f} s). Send stream: true, or a "
                             "smaller max_output_tokens.", param="max_output_tokens")
        return Exchange(ctx, "openai.responses", model, None, estimate, ResponsesSource(turn.whole(endpoints)),
                        long_after_s=self.groups.long_after_s(model, cap), route=route, prompt=texts)

    def _continuing(self, ctx: CallContext, requested: str | None, continued: str) -> str:
        """The model a follow-up asks for: a route name (`auto`) continues on the model of the response
        it continues (the origin endpoint's, for encrypted items), never re-scored onto another tier."""
        if self.gateway.router.decide(ctx.principal, requested, ()) is not None:  # a route (403 if barred)
            return self.gateway.model_for(ctx.principal, continued)
        return self.gateway.model_for(ctx.principal, requested)

    async def retrieve(self, ctx: CallContext, value: str, query: str = "") -> dict[str, Any]:
        return await self._stored(ctx, value, "GET", f"/{response_id(value)}{query}")

    async def input_items(self, ctx: CallContext, value: str, query: str = "") -> dict[str, Any]:
        return await self._stored(ctx, value, "GET", f"/{response_id(value)}/input_items{query}")

    async def delete(self, ctx: CallContext, value: str) -> dict[str, Any]:
        """Deleted at its origin, then its record here; an origin that cannot be reached keeps the
        record, so the tenant can still delete the response later."""
        try:
            answer = await self._stored(ctx, value, "DELETE", f"/{response_id(value)}")
        except ResponseNotFound:
            await self.records.delete(ctx.principal.tenant, value)  # gone at the origin too (or never ours)
            raise
        await self.records.delete(ctx.principal.tenant, value)
        return answer

    async def input_tokens(self, ctx: CallContext, requested: str | None, body: dict[str, Any]) -> dict[str, Any]:
        """The provider's count of the input (nothing generated, nothing charged), on the origin
        endpoint for a follow-up."""
        if isinstance(previous := body.get("previous_response_id"), str):
            record = await self._owned(ctx, previous)
            self._continuing(ctx, requested, record.model)  # a model (or route) this tenant may use
            endpoints = [self._usable(record.endpoint)]
        else:  # a route counts on the model its score sends this input to (a second opinion is charged: none)
            route = await self._routed(ctx, requested, body, with_second_opinion=False)
            endpoints = self.groups.group(self.gateway.routed_model(ctx.principal, route, requested))
        try:
            return await calls.count_input(endpoints, self.groups.policy, body)
        except ServiceUnavailable as exc:
            if "previous_response_id" not in body:
                raise
            raise origin_down(self.groups.policy, endpoints, exc) from exc

    async def _stored(self, ctx: CallContext, value: str, method: str, path: str) -> dict[str, Any]:
        """A stored response's route: the caller's own record first (else 404, no upstream call),
        then its origin endpoint."""
        origin = self._usable((await self._owned(ctx, response_id(value))).endpoint)
        try:
            answer = await calls.stored(origin, self.groups.policy, method, calls.PATH + path)
        except ServiceUnavailable as exc:
            raise origin_down(self.groups.policy, [origin], exc) from exc
        if answer is None:
            raise not_found(value)
        return answer

    async def _owned(self, ctx: CallContext, value: str) -> ResponseRecord:
        record = await self.records.get(ctx.principal.tenant, response_id(value))
        if record is None:
            raise not_found(value)
        return record

    async def _sealed_by(self, ctx: CallContext, sealed: list[tuple[int, object]]) -> str:
        """The one endpoint that sealed the input's encrypted reasoning items: each must come from a
        response of the caller's tenant (else the same 404 as a foreign response id)."""
        origins: set[str] = set()
        for index, item_id in sealed:
            if not isinstance(item_id, str) or not item_id:
                raise BadRequest("A reasoning item with encrypted_content needs its id.", param=f"input[{index}].id")
            origin = await self.records.origin_of(ctx.principal.tenant, response_id(item_id))
            if origin is None:
                raise not_found(item_id)
            origins.add(origin)
        if len(origins) > 1:
            raise BadRequest("The input's encrypted reasoning items come from responses of different endpoints; "
                             "one request can continue only one.", param="input")
        return origins.pop()

    def _usable(self, name: str) -> Endpoint:
        """The endpoint that created the response, when it can take a call now."""
        origin = next((e for e in self.groups.endpoints() if e.name == name), None)
        if origin is None or not self.groups.policy.pool.usable(origin):
            raise origin_down(self.groups.policy, [origin] if origin is not None else [], None)
        return origin

    def _cap(self, body: Mapping[str, Any], prompt: int, endpoints: list[Endpoint], ctx: CallContext) -> int:
        """The output tokens to reserve: max_output_tokens, else what the model may still generate."""
        limits = group_limits(endpoints)
        cap = body.get("max_output_tokens")
        if cap is not None and cap > limits.max_output_tokens:
            raise BadRequest(f"max_output_tokens ({cap}) is above the model's max_output_tokens "
                             f"({limits.max_output_tokens}).", param="max_output_tokens")
        if prompt + (cap or 1) > limits.context_window:
            raise ContextLengthExceeded(f"The request (about {prompt} input tokens, with the responses it continues, "
                                        f"+ {cap or 1} output tokens) does not fit the model's context_window of "
                                        f"{limits.context_window} tokens.", param="input")
        cap = cap if cap is not None else min(limits.max_output_tokens, limits.context_window - prompt)
        most = ctx.principal.limits.max_request_tokens
        if most is not None and prompt + cap > most:
            raise BadRequest(f"The request (about {prompt} input tokens + {cap} output tokens) is above this "
                             f"tenant's max_request_tokens of {most}; set a smaller max_output_tokens.",
                             param="max_output_tokens")
        return int(cap)



def _follows(body: Mapping[str, Any]) -> bool:
    """A follow-up: it continues an earlier response (its id, or its encrypted reasoning items)."""
    return isinstance(body.get("previous_response_id"), str) or bool(sealed_items(body.get("input")))
