"""The Responses API's own rules over the real pipeline (issue 24): each response id recorded as the
tenant's, a follow-up sent only to its origin, and refusals that reach no model and charge nothing."""

from __future__ import annotations

import pytest

from shared.core.background import drain
from shared.core.errors import BadRequest, ResponseNotFound, ResponseOriginUnavailable
from shared.identity.auth import Principal
from shared.state.responses import ResponseRecord
from tests.unit.pipeline.operations import OPERATIONS, collect, ctx, response_body
from tests.unit.pipeline.provider import USAGE
from tests.unit.pipeline.rig import ENDPOINT, Rig

OTHER = Principal("tenant-z", "kz")
STREAMED = next(op for op in OPERATIONS if op.name == "openai.responses.stream")


def open_breaker(rig: Rig) -> None:
    pool = rig.gateway.engine.groups.policy.pool
    origin = rig.gateway.engine.groups.group("gpt-4o-mini")[0]
    while pool.usable(origin):
        pool.breakers[ENDPOINT].record_failure()


async def test_a_streamed_response_is_recorded_as_the_tenants_with_its_usage_and_origin(rig: Rig) -> None:
    await collect(STREAMED, rig, ctx())
    await drain(5)
    record = rig.records.records[("tenant-a", "resp_1")]
    assert (record.endpoint, record.status, record.key) == (ENDPOINT, "completed", "k1")
    assert record.usage == {"input_tokens": USAGE.prompt_tokens, "cached_tokens": 0,
                            "output_tokens": USAGE.completion_tokens, "reasoning_tokens": 0}
    assert record.context_tokens == USAGE.total_tokens, "what a follow-up carries"


async def test_another_tenants_id_is_not_found_before_any_model_call(rig: Rig) -> None:
    await collect(STREAMED, rig, ctx())
    await drain(5)
    calls, events = len(rig.provider.calls), list(rig.budget.events)
    with pytest.raises(ResponseNotFound):
        await rig.responses.create(ctx(OTHER), None, {**response_body(), "previous_response_id": "resp_1"})
    for route in (rig.responses.retrieve, rig.responses.input_items, rig.responses.delete):
        with pytest.raises(ResponseNotFound):
            await route(ctx(OTHER), "resp_1")
    assert len(rig.provider.calls) == calls and rig.budget.events == events, "nothing called, nothing reserved"
    assert ("tenant-a", "resp_1") in rig.records.records, "the owner's record is untouched"


async def test_a_follow_up_reserves_the_context_it_carries_and_goes_to_its_origin(rig: Rig) -> None:
    await rig.records.put(ResponseRecord("resp_0", "tenant-a", "k1", ENDPOINT, "gpt-4o-mini", "completed", True,
                                         None, None, context_tokens=1000))
    await rig.responses.create(ctx(), None, {**response_body(), "previous_response_id": "resp_0"})
    await drain(5)
    alone = rig.budget.estimates[0].prompt_tokens
    assert alone > 1000, "the previous response's recorded context is reserved as input"
    assert rig.provider.calls[-1][1]["previous_response_id"] == "resp_0"


async def test_a_follow_up_whose_origin_is_open_is_the_typed_503_with_no_call(rig: Rig) -> None:
    await rig.records.put(ResponseRecord("resp_0", "tenant-a", "k1", ENDPOINT, "gpt-4o-mini", "completed", True,
                                         None, None, context_tokens=10))
    open_breaker(rig)  # the origin is down
    with pytest.raises(ResponseOriginUnavailable) as refused:
        await rig.responses.create(ctx(), None, {**response_body(), "previous_response_id": "resp_0"})
    assert refused.value.status == 503 and refused.value.retry_after_s
    assert rig.provider.calls == [] and rig.budget.events == []


async def test_a_delete_its_origin_cannot_take_keeps_the_record(rig: Rig) -> None:
    await collect(STREAMED, rig, ctx())
    await drain(5)
    open_breaker(rig)
    with pytest.raises(ResponseOriginUnavailable):
        await rig.responses.delete(ctx(), "resp_1")
    assert ("tenant-a", "resp_1") in rig.records.records, "still the tenant's, to delete once the origin is back"


async def test_a_follow_up_must_ask_the_model_it_continues(rig: Rig) -> None:
    await rig.records.put(ResponseRecord("resp_0", "tenant-a", "k1", ENDPOINT, "gpt-4o", "completed", True,
                                         None, None, context_tokens=10))
    with pytest.raises(BadRequest) as refused:
        await rig.responses.create(ctx(), None, {**response_body(), "previous_response_id": "resp_0"})
    assert refused.value.param == "previous_response_id" and rig.provider.calls == []

