"""The matrix for queue jobs and for the semantic cache's embedding, whose endings read differently.

A job has no client: what its submitter notices is the job's record (succeeded, failed with a
reason, queued again with a delay) or the host retrying the delivery (a raised 5xx). The semantic
cache's embedding is a model call made during admission: its failures are a miss, never an error.

Cells that do not apply:
- client gone x jobs: nobody reads a job's answer as it comes; the host ending an invocation is
  the cancel cell;
- client gone x the semantic embedding: it is made before any answer is read, so a client gone
  then is the request cancelled (the cancel cell).
"""

from __future__ import annotations

import asyncio
import json

import pytest

from shared.core.background import drain
from shared.core.errors import BudgetExhausted, RateLimited, ServiceUnavailable
from shared.core.models import JobRequest
from shared.core.tokens import prompt_tokens
from shared.identity.auth import Principal
from shared.jobs.service import JobService, parse_job_message
from shared.observability import tracing
from shared.observability.record import Record
from tests.unit.pipeline.operations import OPERATIONS, collect, ctx, under_way
from tests.unit.pipeline.provider import ANSWER, EMBEDDING_TOKENS, MODEL, USAGE
from tests.unit.pipeline.rig import Rig, reserved
from tests.unit.resilience.helpers import FakeClock

TENANT = Principal("tenant-a", "queue")
JOBS = {
    "chat": {"messages": [{"role": "user", "content": "hello there"}], "max_tokens": 50},
    "summarize": {"text": "The harbour board met at noon.", "max_words": 20},
}
NATIVE_CHAT = next(op for op in OPERATIONS if op.name == "native.chat")  # the semantic cells' operation


def message(kind: str) -> str:
    return json.dumps({"tenant": TENANT.tenant, "kind": kind, "input": JOBS[kind]})


async def run_job(rig: Rig, kind: str, job_id: str) -> dict[str, object]:
    """One delivery of the job's message; its record after."""
    text = message(kind)
    await rig.jobs.run(parse_job_message(text), job_id, TENANT, text)
    return rig.job_store.docs[(TENANT.tenant, job_id)]


def answer_of(doc: dict[str, object]) -> object:
    result = doc.get("result")
    assert isinstance(result, dict)
    return result.get("content", result.get("result"))


# --- Queue jobs: the same Gateway.chat and Gateway.summarize, read by the job runner -----------------

@pytest.mark.parametrize("kind", list(JOBS))
async def test_job_hit_succeeds_from_the_cache_calls_nothing_and_charges_nothing(rig: Rig, kind: str) -> None:
    await run_job(rig, kind, "job-1")
    await drain(5)
    calls, events = len(rig.provider.calls), list(rig.budget.events)
    doc = await run_job(rig, kind, "job-2")
    await drain(5)
    assert doc["status"] == "succeeded" and answer_of(doc) == ANSWER and doc["result"]["cached"]  # type: ignore[index]
    assert len(rig.provider.calls) == calls and rig.budget.events == events


@pytest.mark.parametrize("kind", list(JOBS))
async def test_job_miss_succeeds_and_is_charged_the_providers_usage_once(rig: Rig, kind: str) -> None:
    doc = await run_job(rig, kind, "job-1")
    await drain(5)
    assert doc["status"] == "succeeded" and answer_of(doc) == ANSWER and not doc["result"]["cached"]  # type: ignore[index]
    assert rig.provider.seen() == 1
    assert rig.budget.events == [("reserve", reserved(rig)), ("settle", USAGE.total_tokens)]


async def test_job_refused_by_the_rate_limit_is_queued_again_after_its_retry_after(rig: Rig) -> None:
    rig.limiter.refusal = RateLimited("The key's rpm is used up.", retry_after_s=30)
    doc = await run_job(rig, "chat", "job-1")
    await drain(5)
    assert doc["status"] == "queued" and rig.queue.sent == [(message("chat"), 30)]
    assert rig.provider.calls == [] and rig.budget.events == []


async def test_job_refused_by_the_budget_fails_at_once_saying_why(rig: Rig) -> None:
    rig.budget.refusal = BudgetExhausted("The daily budget is used up.", retry_after_s=3600)
    doc = await run_job(rig, "chat", "job-1")
    await drain(5)
    assert doc["status"] == "failed" and str(doc["error"]).startswith("budget-exhausted")
    assert rig.provider.calls == [] and rig.budget.events == [] and rig.queue.sent == []


async def test_job_upstream_503_is_left_to_the_host_to_retry_and_charges_nothing(rig: Rig) -> None:
    rig.provider.mode("503")
    with pytest.raises(ServiceUnavailable):
        await run_job(rig, "chat", "job-1")
    await drain(5)
    doc = rig.job_store.docs[(TENANT.tenant, "job-1")]
    assert doc["status"] == "running" and doc["lease_until"] == 0, "the next delivery may claim it at once"
    assert rig.budget.events == [("reserve", reserved(rig)), ("settle", 0)]


async def test_job_upstream_429_is_queued_again_and_charges_nothing(rig: Rig) -> None:
    rig.provider.mode("429")
    doc = await run_job(rig, "chat", "job-1")
    await drain(5)
    assert doc["status"] == "queued" and len(rig.queue.sent) == 1 and rig.queue.sent[0][1] >= 1
    assert rig.budget.events == [("reserve", reserved(rig)), ("settle", 0)]


async def test_job_cut_is_retried_by_the_host_and_charged_each_attempts_worst_case(rig: Rig) -> None:
    rig.provider.mode("cut")
    with pytest.raises(ServiceUnavailable):
        await run_job(rig, "chat", "job-1")
    await drain(5)
    attempts, worst = rig.provider.seen(), reserved(rig)
    assert rig.budget.events[attempts:] == [("settle", attempts * worst)] + [("settle", 0)] * (attempts - 1)


async def test_job_cancelled_by_the_host_mid_call_settles_once_when_the_call_ends(rig: Rig) -> None:
    rig.provider.mode("slow")
    run = asyncio.ensure_future(run_job(rig, "chat", "job-1"))
    await under_way(rig.provider, run)
    run.cancel()  # the host ends the invocation (its timeout, a shutdown)
    with pytest.raises(asyncio.CancelledError):
        await run
    assert rig.budget.events == [("reserve", reserved(rig))]
    rig.provider.gate.set()
    await drain(5)
    assert rig.budget.events == [("reserve", reserved(rig)), ("settle", USAGE.total_tokens)]
    assert rig.job_store.docs[(TENANT.tenant, "job-1")]["status"] == "running", "its lease hands it to a redelivery"


# --- The semantic cache's embedding (admission's `similar`), over the real EndpointEmbedder ---------

def semantic_prompt() -> int:
    """The chat's prompt as counted: also the worst case of the lookup's embedding."""
    return prompt_tokens(MODEL, (("user", "hello there"),))


def semantic_estimate() -> int:
    """What a semantic tenant's chat reserves: the prompt twice (the chat and the lookup's embedding) + cap."""
    return 2 * semantic_prompt() + 50


async def test_semantic_hit_is_charged_its_embedding_only(semantic: Rig) -> None:
    await collect(NATIVE_CHAT, semantic, ctx())
    await drain(5)
    events = len(semantic.budget.events)
    seen = await collect(NATIVE_CHAT, semantic, ctx())
    await drain(5)
    assert (seen.text, seen.cached) == (ANSWER, True)
    assert semantic.provider.seen("/embeddings") == 2 and semantic.provider.seen() == 1, "no second chat call"
    assert semantic.budget.events[events:] == [("reserve", semantic_estimate()), ("settle", EMBEDDING_TOKENS)]


async def test_semantic_miss_is_charged_its_embedding_and_the_answer(semantic: Rig) -> None:
    seen = await collect(NATIVE_CHAT, semantic, ctx())
    await drain(5)
    assert (seen.text, seen.cached) == (ANSWER, False)
    assert semantic.limiter.admitted == [semantic_estimate()], "TPM counts the embedding too"
    assert semantic.budget.events == [("reserve", semantic_estimate()),
                                      ("settle", USAGE.total_tokens + EMBEDDING_TOKENS)]


async def test_semantic_refusal_embeds_nothing_and_gives_the_reservation_back(semantic: Rig) -> None:
    semantic.limiter.refusal = RateLimited("The key's rpm is used up.", retry_after_s=30)
    with pytest.raises(RateLimited):
        await collect(NATIVE_CHAT, semantic, ctx())
    await drain(5)
    assert semantic.provider.calls == []
    assert semantic.budget.events == [("reserve", semantic_estimate()), ("settle", 0)]


@pytest.mark.parametrize("failure", ["503", "429", "cut"])
async def test_semantic_embedding_failure_is_a_miss_charged_what_may_have_been_billed(semantic: Rig,
                                                                                     failure: str) -> None:
    # An error status was never billed; an embedding cut after it was sent may have been, and
    # reported no usage: it is charged its worst case, the prompt as counted (docs/accounting.md).
    semantic.provider.mode(failure, "/embeddings")  # type: ignore[arg-type]
    seen = await collect(NATIVE_CHAT, semantic, ctx())
    await drain(5)
    assert (seen.text, seen.cached) == (ANSWER, False), "the lookup failing never fails the request"
    assert semantic.provider.seen("/embeddings") == 1, "no retry: a lookup never waits on a failing embedding"
    embedding = semantic_prompt() if failure == "cut" else 0
    assert semantic.budget.events == [("reserve", semantic_estimate()), ("settle", USAGE.total_tokens + embedding)]


async def test_semantic_cancel_during_the_embedding_charges_only_its_worst_case(semantic: Rig) -> None:
    semantic.provider.mode("slow", "/embeddings")
    request = asyncio.ensure_future(collect(NATIVE_CHAT, semantic, ctx()))
    await under_way(semantic.provider, request)
    request.cancel()
    with pytest.raises(asyncio.CancelledError):
        await request
    semantic.provider.gate.set()
    await drain(5)
    assert semantic.provider.seen() == 0, "no chat call after the request was cancelled in admission"
    # The embedding was sent and may have been billed: its worst case; the rest of the room is back.
    assert semantic.budget.events == [("reserve", semantic_estimate()), ("settle", semantic_prompt())]



async def test_a_jobs_age_is_read_on_the_services_clock_from_submission_to_its_end(rig: Rig) -> None:
    # The age metric (aigw.job.age) is the job service's wall clock minus the created_at it stamped:
    # moved 42 s between submit and run, the record says 42 s, whatever the system clock says.
    clock = FakeClock()
    jobs = JobService(rig.job_store, rig.gateway, lease_s=60, queue=rig.queue, wall=clock.wall)
    job_id, text = await jobs.submit(TENANT, JobRequest(kind="chat", input=JOBS["chat"]), "corr-1")
    clock.t += 42
    record = Record(route="jobs")
    with tracing.active(record):
        await jobs.run(parse_job_message(text), job_id, TENANT, text)
    await drain(5)
    assert rig.job_store.docs[(TENANT.tenant, job_id)]["status"] == "succeeded"
    assert (record.outcome, record.job_age_s) == ("succeeded", 42.0)
