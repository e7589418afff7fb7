"""Job messages and the job runner: idempotent per job id, transient failures left to the host."""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass, field
from typing import Any

import pytest

from shared.core.errors import (
    BudgetBusy,
    BudgetExhausted,
    DependencyFailed,
    RateLimited,
    ServiceUnavailable,
    UpstreamThrottled,
)
from shared.core.models import JobRequest
from shared.identity.auth import Principal
from shared.jobs.deadletter import DEADLETTER_PARTITION, dead_letter
from shared.jobs.service import JobReference, JobService, job_id_for, parse_job_message
from shared.pipeline.gateway import Gateway
from tests.unit.shared.fakes import CountingLimiter, FakeBudget, FakeCache, FakeEngine

BODY = '{"tenant": "dev", "kind": "chat", "input": {"messages": [{"role": "user", "content": "hi"}]}}'


@dataclass
class MemoryJobStore:
    docs: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)

    async def create(self, tenant: str, job_id: str, doc: dict[str, Any]) -> None:
        self.docs[(tenant, job_id)] = {**doc, "id": job_id, "tenant": tenant}

    async def get(self, tenant: str, job_id: str) -> dict[str, Any] | None:
        doc = self.docs.get((tenant, job_id))
        return dict(doc) if doc else None

    async def claim(self, tenant: str, job_id: str, doc: dict[str, Any] | None,
                    lease_s: float) -> dict[str, Any] | None:
        if doc is None and (tenant, job_id) not in self.docs:
            return None
        current = self.docs.setdefault((tenant, job_id), {**(doc or {}), "status": "queued"})
        if current["status"] in ("succeeded", "failed"):
            return None
        if current["status"] == "running" and current.get("lease_until", 0) > time.time():
            raise DependencyFailed("held", retry_after_s=lease_s)
        current.update(status="running", lease_until=time.time() + lease_s)
        return dict(current)

    async def update(self, tenant: str, job_id: str, changes: dict[str, Any]) -> None:
        self.docs[(tenant, job_id)].update(changes)

    async def stale_queued(self, before: float, limit: int) -> list[dict[str, Any]]:
        return [dict(d) for d in self.docs.values()
                if d["status"] == "queued" and d.get("enqueued_at", before) < before][:limit]


@dataclass
class FakeQueue:
    sent: list[tuple[str, float]] = field(default_factory=list)

    async def send(self, text: str, delay_s: float = 0) -> None:
        self.sent.append((text, delay_s))

    async def close(self) -> None:
        return None


def service(engine: FakeEngine, queue: FakeQueue | None = None) -> tuple[JobService, MemoryJobStore]:
    store = MemoryJobStore()
    gateway = Gateway(engine, CountingLimiter(), FakeBudget(), FakeCache())  # type: ignore[arg-type]
    return JobService(store, gateway, lease_s=60, queue=queue or FakeQueue()), store


def test_messages_are_read_plain_or_base64() -> None:
    plain = parse_job_message(BODY)
    encoded = parse_job_message(base64.b64encode(BODY.encode()).decode())
    assert plain == encoded and plain.kind == "chat"
    with pytest.raises(ValueError, match="not a job"):
        parse_job_message("hello")


def test_a_message_without_job_id_gets_the_same_id_on_every_delivery() -> None:
    message = parse_job_message(BODY)
    assert job_id_for(message, BODY) == job_id_for(message, BODY + "\n")
    other = BODY.replace("hi", "hello")
    assert job_id_for(parse_job_message(other), other) != job_id_for(message, BODY)


async def test_a_finished_job_is_never_run_twice() -> None:
    engine = FakeEngine()
    jobs, _ = service(engine)
    message = parse_job_message(BODY)
    principal = Principal("dev", "queue")
    await jobs.run(message, "job-1", principal)
    await jobs.run(message, "job-1", principal)
    assert engine.calls == 1
    view = await jobs.view(principal, "job-1")
    assert view.status == "succeeded" and view.result is not None and view.result["content"] == "a short answer"


async def test_transient_failures_propagate_and_leave_the_job_retryable() -> None:
    engine = FakeEngine(error=ServiceUnavailable("down"))
    jobs, store = service(engine)
    message = parse_job_message(BODY)
    with pytest.raises(ServiceUnavailable):
        await jobs.run(message, "job-2", Principal("dev", "queue"))
    assert store.docs[("dev", "job-2")]["status"] == "running"
    engine.error = None
    await jobs.run(message, "job-2", Principal("dev", "queue"))
    assert store.docs[("dev", "job-2")]["status"] == "succeeded"


async def test_invalid_input_and_unknown_tenants_fail_the_job_without_a_model_call() -> None:
    engine = FakeEngine()
    jobs, store = service(engine)
    bad = parse_job_message('{"tenant": "dev", "kind": "summarize", "input": {"text": ""}}')
    await jobs.run(bad, "job-3", Principal("dev", "queue"))
    assert store.docs[("dev", "job-3")]["status"] == "failed"
    assert "text" in store.docs[("dev", "job-3")]["error"]
    await jobs.run(parse_job_message(BODY), "job-4", None)
    assert store.docs[("dev", "job-4")]["status"] == "failed"
    assert engine.calls == 0


async def test_a_poisoned_job_is_marked_failed_unless_it_already_succeeded() -> None:
    jobs, store = service(FakeEngine())
    message = parse_job_message(BODY)
    await jobs.fail_poisoned(message, "job-5")
    assert store.docs[("dev", "job-5")]["status"] == "failed"
    await jobs.run(message, "job-6", Principal("dev", "queue"))
    await jobs.fail_poisoned(message, "job-6")
    assert store.docs[("dev", "job-6")]["status"] == "succeeded"


async def test_tenants_see_only_their_own_jobs() -> None:
    jobs, _ = service(FakeEngine())
    await jobs.run(parse_job_message(BODY), "job-7", Principal("dev", "queue"))
    with pytest.raises(Exception, match="no job"):
        await jobs.view(Principal("other", "k"), "job-7")


async def test_an_http_job_sends_a_small_claim_check_and_runs_from_its_record() -> None:
    engine = FakeEngine()
    jobs, store = service(engine)
    principal = Principal("dev", "k")
    text = ("Minutes of the harbour board. " * 3400)[:100_000]  # the longest allowed, and over 64 KiB
    job_id, message = await jobs.submit(principal, JobRequest(kind="summarize", input={"text": text}), "cid-1")
    assert len(message.encode()) < 1024 < 64 * 1024 < len(text)
    parsed = parse_job_message(message)
    assert isinstance(parsed, JobReference) and parsed.job_id == job_id and '"input":' not in message
    await jobs.run(parsed, job_id_for(parsed, message), principal, message)
    assert store.docs[("dev", job_id)]["status"] == "succeeded" and engine.calls == 1


async def test_a_claim_check_without_its_record_runs_nothing() -> None:
    engine = FakeEngine()
    jobs, store = service(engine)
    ref = JobReference(job_id="gone", tenant="dev", kind="chat", input_ref=True)
    await jobs.run(ref, "gone", Principal("dev", "k"), ref.model_dump_json())
    assert engine.calls == 0 and store.docs == {}


@pytest.mark.parametrize("refusal", [RateLimited("rpm", retry_after_s=42), BudgetBusy("busy", retry_after_s=7.2),
                                     UpstreamThrottled("every region at its limit", retry_after_s=3)])
async def test_a_throttled_job_is_requeued_with_its_retry_after_and_stays_queued(refusal: Exception) -> None:
    queue = FakeQueue()
    engine = FakeEngine(error=refusal)  # type: ignore[arg-type]
    jobs, store = service(engine, queue)
    await jobs.run(parse_job_message(BODY), "job-t", Principal("dev", "queue"), BODY)  # returns: message deleted
    assert queue.sent == [(BODY, refusal.retry_after_s)]  # type: ignore[attr-defined]
    doc = store.docs[("dev", "job-t")]
    assert doc["status"] == "queued" and doc["throttled"] == 1 and doc["lease_until"] == 0
    engine.error = None
    await jobs.run(parse_job_message(BODY), "job-t", Principal("dev", "queue"), BODY)
    assert store.docs[("dev", "job-t")]["status"] == "succeeded"


async def test_a_budget_exhausted_job_fails_at_once_with_that_reason() -> None:
    queue = FakeQueue()
    engine = FakeEngine(error=BudgetExhausted("The daily budget is used up.", retry_after_s=3600))
    jobs, store = service(engine, queue)
    await jobs.run(parse_job_message(BODY), "job-x", Principal("dev", "queue"), BODY)
    doc = store.docs[("dev", "job-x")]
    assert doc["status"] == "failed" and doc["error"].startswith("budget-exhausted")
    assert queue.sent == []


async def test_the_sweeper_reenqueues_a_job_left_queued_then_fails_it_after_the_limit() -> None:
    queue = FakeQueue()
    jobs, store = service(FakeEngine(), queue)
    job_id, _ = await jobs.submit(Principal("dev", "k"), JobRequest(kind="chat", input={"messages": []}), "cid")
    store.docs[("dev", job_id)]["enqueued_at"] -= 1000  # its message never reached the queue
    assert await jobs.sweep(stale_after_s=300, max_requeues=1) == (1, 0)
    ref = parse_job_message(queue.sent[0][0])
    assert isinstance(ref, JobReference) and ref.job_id == job_id and ref.correlation_id == "cid"
    assert await jobs.sweep(stale_after_s=300, max_requeues=1) == (0, 0)  # just re-enqueued: not stale yet
    store.docs[("dev", job_id)]["enqueued_at"] -= 1000
    assert await jobs.sweep(stale_after_s=300, max_requeues=1) == (0, 1)
    assert store.docs[("dev", job_id)]["status"] == "failed" and len(queue.sent) == 1


def test_a_dead_letter_keeps_size_hash_and_escaped_bounded_head_only() -> None:
    raw = b"\xff\nforged log line\r\n" + b"x" * 10_000
    doc = dead_letter(raw, queue="ai-jobs-poison", message_id="m1", dequeue_count=1)
    assert doc["tenant"] == DEADLETTER_PARTITION and doc["size_bytes"] == len(raw) and len(doc["sha256"]) == 64
    assert "\n" not in doc["head"] and "\r" not in doc["head"] and doc["head"].startswith("\\xff\\nforged")
    assert len(doc["head"]) <= 1024 and doc["head_truncated"]
