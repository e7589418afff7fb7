"""One Responses create's model call (whole or streamed) and the tenant-owned record of the response
it makes (docs/responses.md, "State"): written when the response is created, finalised at its
terminal event; a follow-up its origin cannot answer is the typed 503 `response-origin-unavailable`.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from typing import Any

from shared.core.errors import AppError, ResponseOriginUnavailable, ServiceUnavailable, UpstreamThrottled
from shared.core.models import Usage
from shared.core.values import Completion, Delta
from shared.pipeline.exchange import CallContext, DeltaSource
from shared.pipeline.gateway import whole
from shared.state.budget import Estimate
from shared.state.responses import ResponseRecord, ResponseRecords, usage_record
from shared.upstream import responses_calls as calls
from shared.upstream.endpoints import Endpoint
from shared.upstream.resilience.policy import ResiliencePolicy
from shared.upstream.responses_protocol import TERMINAL, event_response, generated_text, output_text, usage_of
from shared.upstream.wire import Receipt

log = logging.getLogger(__name__)


class Turn:
    """One create's model call, and the record of the response it makes: written when the response
    is created (its id known), finalised at its terminal event."""

    def __init__(self, policy: ResiliencePolicy, records: ResponseRecords, ctx: CallContext, *, model: str,
                 body: dict[str, Any], estimate: Estimate, pinned: bool) -> None:
        self.policy, self.records = policy, records
        self.ctx, self.model, self.body, self.estimate = ctx, model, body, estimate
        self.pinned = pinned  # a follow-up: only its origin endpoint can answer

    def streamed(self, endpoints: list[Endpoint]) -> DeltaSource:
        async def source() -> AsyncIterator[Delta]:
            receipt: Receipt = {}
            created: tuple[Endpoint, Mapping[str, Any]] | None = None
            try:
                async for endpoint, event in calls.create_stream(endpoints, self.policy, self.body,
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
                    raise origin_down(self.policy, endpoints, exc) from exc
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
                endpoint, answer = await calls.create(endpoints, self.policy, self.body,
                                                      work_tokens=self.estimate.max_completion_tokens, receipt=receipt)
            except ServiceUnavailable as exc:
                if self._origin_failed(exc):
                    raise origin_down(self.policy, endpoints, exc) from exc
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
                await self.records.put_origin(principal.tenant, item["id"], endpoint.name)
        previous = self.body.get("previous_response_id")
        await self.records.put(ResponseRecord(
            id=response["id"], tenant=principal.tenant, key=principal.key_id, endpoint=endpoint.name,
            model=self.model, status=str(response.get("status") or "in_progress"),
            store=self.body.get("store") is not False,
            previous_response_id=previous if isinstance(previous, str) else None,
            usage=usage_record(raw) if isinstance(raw, dict) else None, context_tokens=context))


def origin_down(policy: ResiliencePolicy, endpoints: list[Endpoint],
                cause: AppError | None) -> ResponseOriginUnavailable:
    """The typed 503 of a follow-up whose origin cannot answer, with the Retry-After its breaker says."""
    wait = (policy.pool.available_in(endpoints) or 0.0) if endpoints else 0.0
    if cause is not None and cause.retry_after_s:
        wait = max(wait, cause.retry_after_s)
    err = ResponseOriginUnavailable("The endpoint that holds this response cannot be reached now; only it knows "
                                    "the response. Retry after the Retry-After.", retry_after_s=max(5.0, wait))
    err.__cause__ = cause
    return err
