"""A route's second opinion through the gateway (shared/pipeline/gateway.py): the judging model's
call is an exchange of its own, charged and cached like any, and the score decides when it cannot."""

from __future__ import annotations

import pytest

from shared.core.background import drain
from shared.core.errors import BudgetExhausted
from shared.observability import tracing
from shared.observability.record import Record
from shared.routing.second_opinion import INSTRUCTION
from tests.unit.pipeline.operations import ctx
from tests.unit.pipeline.provider import MODEL, USAGE
from tests.unit.pipeline.rig import Rig

ASKED = [{"role": "system", "content": "You are Acme's assistant."},
         {"role": "user", "content": "Why does our nightly job deadlock only on Sundays?"}]


async def test_a_second_opinion_is_a_charged_exchange_of_its_own_and_cached(rig: Rig) -> None:
    rig.provider.answer = "Complex."

    assert await rig.gateway.second_opinion(ctx(), MODEL, ASKED) == "complex"

    (_, body), = rig.provider.calls
    assert body["messages"][0] == {"role": "system", "content": INSTRUCTION}
    assert "User: Why does our nightly job deadlock only on Sundays?" in body["messages"][1]["content"]
    assert "Acme" not in body["messages"][1]["content"], "the application's system prompt is not judged"
    assert (body["temperature"], body["seed"]) == (0.0, 0)
    await drain(5)  # the settlement and the cache's store run after the answer
    assert rig.budget.settled == [USAGE], "reserved and settled as any call: the tenant is charged"
    assert await rig.gateway.second_opinion(ctx(), MODEL, ASKED) == "complex"
    assert rig.provider.seen() == 1, "the same conversation again: the cached verdict, not another call"


@pytest.mark.parametrize("failure", ["503", "an answer naming no tier"])
async def test_when_the_judge_cannot_say_the_score_decides(rig: Rig, failure: str) -> None:
    if failure == "503":
        rig.provider.mode("503")
    else:
        rig.provider.answer = "It depends."

    assert await rig.gateway.second_opinion(ctx(), MODEL, ASKED) is None


async def test_a_refusal_of_the_tenants_own_is_the_requests(rig: Rig) -> None:
    rig.budget.refusal = BudgetExhausted("The tenant's daily budget is spent.", retry_after_s=60)

    with pytest.raises(BudgetExhausted):
        await rig.gateway.second_opinion(ctx(), MODEL, ASKED)
    assert rig.provider.seen() == 0


async def test_the_request_record_keeps_the_requests_own_fields(rig: Rig) -> None:
    rig.provider.answer = "simple"
    record = Record(route="v1/chat/completions", log_content=True)
    with tracing.active(record):
        assert await rig.gateway.second_opinion(ctx(), MODEL, ASKED) == "simple"
        await drain(5)

    # (Its charge counts in the record through the budget's hook: the e2e test reads it in the audit.)
    assert (record.model, record.cache_result, record.prompt, record.answer) == ("", "", "", []), \
        "what the record logs and reports is the request's, not the judge's"



async def test_a_second_opinion_never_looks_up_the_semantic_cache(semantic: Rig) -> None:
    semantic.provider.answer = "simple"

    assert await semantic.gateway.second_opinion(ctx(), MODEL, ASKED) == "simple"

    assert semantic.provider.seen("/embeddings") == 0, "no embedding charged to save a 3-token answer"
