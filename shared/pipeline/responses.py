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

import contextlib
import functools
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from typing import Any

from shared.core.errors import (
    AppError,
    BadRequest,
    ResponseNotFound,
    ResponseOriginUnavailable,
    ServiceUnavailable,
    UpstreamThrottled,
)
from shared.core.models import Usage
from shared.core.routes import RouteDecision
from shared.core.settings import RESPONSE_LIMIT_S
from shared.core.values import Completion, Delta
from shared.pipeline.exchange import CallContext, DeltaSource, Exchange
from shared.pipeline.gateway import Answer, Gateway, whole
from shared.pipeline.openai_path import Streaming
from shared.pipeline.prompt import ResponsesPrompt
from shared.pipeline.responses_checks import check_request, not_found, output_cap, response_id
from shared.pipeline.responses_redaction import ResponsesSource
from shared.pipeline.routes import stream_or_fallback, whole_or_fallback
from shared.state.budget import Estimate
from shared.state.cosmos import CosmosState
from shared.state.responses import CosmosResponseRecords, ResponseRecord, ResponseRecords, usage_record
from shared.upstream import responses_calls as calls
from shared.upstream.endpoints import Endpoint
from shared.upstream.responses_protocol import (
    TERMINAL,
    event_response,
    generated_text,
    output_text,
    prompt_estimate,
    sealed_items,
    usage_of,
)
from shared.upstream.wire import Receipt

log = logging.getLogger(__name__)
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

        return await whole_or_fallback(run, self.decide(ctx, requested, body),
                                       functools.partial(self.gateway.router.fallback, ctx.principal))

    async def stream(self, ctx: CallContext, requested: str | None, body: dict[str, Any]) -> Streaming:
        """The events, and the headers the exchange sets (by the other tier's exchange when the route
        fell back to it). A fallback happens only while no event went out: the events before the first
        generated token are held upstream (held_stream), and what redaction holds back is let out
        before an error, so a client never sees two responses begin."""
        first = self.decide(ctx, requested, body)
        ex = await self.exchange(ctx, requested, body, first)

        async def on(other: RouteDecision) -> AsyncGenerator[Delta, None]:
            fallback = await self.exchange(ctx, requested, body, other)
            ex.headers.clear()  # the first exchange's allowance: the fallback's own comes in its place
            fallback.headers = ex.headers
            async with contextlib.aclosing(self.gateway.streamed(fallback)) as deltas:
                async for delta in deltas:
                    yield delta

        def again() -> AsyncGenerator[Delta, None] | None:
            other = self.gateway.router.fallback(ctx.principal, first)
            return None if other is None else on(other)

        return Streaming(ex.headers, stream_or_fallback(self.gateway.streamed(ex), again))

    def decide(self, ctx: CallContext, requested: str | None, body: dict[str, Any]) -> RouteDecision | None:
        """The request refused or allowed, and, for a first turn that asks for a route, where it goes
        (a follow-up is never routed: it continues on the model of what it continues)."""
        check_request(body, ctx.principal.responses)
        return None if _follows(body) else self._routed(ctx, requested, body)[1]

    def _routed(self, ctx: CallContext, requested: str | None,
                body: dict[str, Any]) -> tuple[str, RouteDecision | None]:
        """The model a first turn runs on, scored on its instructions and input as chat messages."""
        text, tools = body.get("text"), body.get("tools")
        format_ = text.get("format") if isinstance(text, dict) else None
        return self.gateway.route(ctx.principal, requested, ResponsesPrompt(body).messages(),
                                  tools=len(tools) if isinstance(tools, list) else 0,
                                  response_format=isinstance(format_, dict) and format_.get("type") != "text")

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
        cap = output_cap(body, prompt, endpoints, ctx.principal.limits.max_request_tokens)
        estimate = Estimate(prompt, cap)
        turn = _Turn(self, ctx, model, body, estimate, pinned=pinned)
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
        if requested is not None and requested in self.gateway.router.routes(ctx.principal):
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
        else:  # a route counts on the model it would send this input to
            endpoints = self.groups.group(self._routed(ctx, requested, body)[0])
        try:
            return await calls.count_input(endpoints, self.groups.policy, body)
        except ServiceUnavailable as exc:
            if "previous_response_id" not in body:
                raise
            raise self.origin_down(endpoints, exc) from exc

    async def _stored(self, ctx: CallContext, value: str, method: str, path: str) -> dict[str, Any]:
        """A stored response's route: the caller's own record first (else 404, no upstream call),
        then its origin endpoint."""
        origin = self._usable((await self._owned(ctx, response_id(value))).endpoint)
        try:
            answer = await calls.stored(origin, self.groups.policy, method, calls.PATH + path)
        except ServiceUnavailable as exc:
            raise self.origin_down([origin], exc) from exc
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
            raise self.origin_down([origin] if origin is not None else [], None)
        return origin

    def origin_down(self, endpoints: list[Endpoint], cause: AppError | None) -> ResponseOriginUnavailable:
        wait = (self.groups.policy.pool.available_in(endpoints) or 0.0) if endpoints else 0.0
        if cause is not None and cause.retry_after_s:
            wait = max(wait, cause.retry_after_s)
        err = ResponseOriginUnavailable("The endpoint that holds this response cannot be reached now; only it knows "
                                        "the response. Retry after the Retry-After.", retry_after_s=max(5.0, wait))
        err.__cause__ = cause
        return err


class _Turn:
    """One create's model call, and the record of the response it makes: written when the response
    is created (its id known), finalised at its terminal event."""

    def __init__(self, api: ResponsesApi, ctx: CallContext, model: str, body: dict[str, Any],
                 estimate: Estimate, *, pinned: bool) -> None:
        self.api, self.ctx, self.model, self.body, self.estimate = api, ctx, model, body, estimate
        self.pinned = pinned  # a follow-up: only its origin endpoint can answer

    def streamed(self, endpoints: list[Endpoint]) -> DeltaSource:
        async def source() -> AsyncIterator[Delta]:
            receipt: Receipt = {}
            created: tuple[Endpoint, Mapping[str, Any]] | None = None
            try:
                async for endpoint, event in calls.create_stream(endpoints, self.api.groups.policy, self.body,
                                                                 receipt=receipt):
                    kind, response = event.get("type"), event_response(event)
                    if kind == "response.created":
                        created = endpoint, response
                        await self._record(endpoint, response)  # before the client can know the id
                    terminal = kind in TERMINAL
                    yield Delta(content=generated_text(event), usage=usage_of(response) if terminal else None,
                                finish_reason=str(response.get("status")) if terminal else None,
                                model=response.get("model"), request_id=receipt.get("request_id"), raw=event)
                    if terminal:
                        await self._settled(endpoint, response)
                        created = None
            except ServiceUnavailable as exc:
                if created is None and self._origin_failed(exc):  # a follow-up whose origin could not answer
                    raise self.api.origin_down(endpoints, exc) from exc
                if created is not None:
                    await self._settled(created[0], {**created[1], "status": "failed"})  # no terminal event will come
                raise
            if created is not None:  # the provider's stream ended without its terminal event
                await self._settled(created[0], {**created[1], "status": "failed"})
                raise ServiceUnavailable("The response ended without its terminal event.")

        return source

    def whole(self, endpoints: list[Endpoint]) -> DeltaSource:
        async def invoke() -> Completion:
            receipt: Receipt = {}
            try:
                endpoint, answer = await calls.create(endpoints, self.api.groups.policy, self.body,
                                                      work_tokens=self.estimate.max_completion_tokens, receipt=receipt)
            except ServiceUnavailable as exc:
                if self._origin_failed(exc):
                    raise self.api.origin_down(endpoints, exc) from exc
                raise
            await self._settled(endpoint, answer)
            return Completion(output_text(answer), str(answer.get("status") or ""), str(answer.get("model") or ""),
                              usage_of(answer) or Usage(), endpoint.name, raw=answer,
                              request_id=receipt.get("request_id"))

        return whole(invoke)

    def _origin_failed(self, exc: ServiceUnavailable) -> bool:
        """A follow-up its origin could not answer (throttled aside): the typed 503, not a plain one."""
        return self.pinned and not isinstance(exc, UpstreamThrottled)

    async def _settled(self, endpoint: Endpoint, response: Mapping[str, Any]) -> None:
        """The record once the response has ended: a write that fails is logged, never the answer's
        failure (the provider has billed it, and the meter charges it only if the answer goes on)."""
        try:
            await self._record(endpoint, response)
        except Exception as exc:  # noqa: BLE001  a record not finalised must not lose a billed answer
            log.warning("response record not written: %s", type(exc).__name__)

    async def _record(self, endpoint: Endpoint, response: Mapping[str, Any]) -> None:
        """The response's record in the caller's partition (created, then finalised: one upsert each)."""
        if not isinstance(response.get("id"), str):
            return
        usage = usage_of(response)
        context = usage.total_tokens if usage is not None else self.estimate.prompt_tokens + \
            self.estimate.max_completion_tokens
        raw = response.get("usage")
        principal = self.ctx.principal
        output = response.get("output")
        for item in output if isinstance(output, list) else []:
            if isinstance(item, dict) and item.get("encrypted_content") and isinstance(item.get("id"), str):
                await self.api.records.put_origin(principal.tenant, item["id"], endpoint.name)
        previous = self.body.get("previous_response_id")
        await self.api.records.put(ResponseRecord(
            id=response["id"], tenant=principal.tenant, key=principal.key_id, endpoint=endpoint.name,
            model=self.model, status=str(response.get("status") or "in_progress"),
            store=self.body.get("store") is not False,
            previous_response_id=previous if isinstance(previous, str) else None,
            usage=usage_record(raw) if isinstance(raw, dict) else None, context_tokens=context))


def _follows(body: Mapping[str, Any]) -> bool:
    """A follow-up: it continues an earlier response (its id, or its encrypted reasoning items)."""
    return isinstance(body.get("previous_response_id"), str) or bool(sealed_items(body.get("input")))
