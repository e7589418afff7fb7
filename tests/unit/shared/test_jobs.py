"""Job messages and the job runner: idempotent per job id, transient failures left to the host."""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass, field
from typing import Any

import pytest

from shared.auth import Principal
from shared.errors import DependencyFailed, ServiceUnavailable
from shared.gateway import Gateway
from shared.jobs import JobService, job_id_for, parse_job_message
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

    async def claim(self, tenant: str, job_id: str, doc: dict[str, Any], lease_s: float) -> dict[str, Any] | None:
        current = self.docs.setdefault((tenant, job_id), {**doc, "status": "queued"})
        if current["status"] in ("succeeded", "failed"):
            return None
        if current["status"] == "running" and current.get("lease_until", 0) > time.time():
            raise DependencyFailed("held", retry_after_s=lease_s)
        current.update(status="running", lease_until=time.time() + lease_s)
        return dict(current)

    async def update(self, tenant: str, job_id: str, changes: dict[str, Any]) -> None:
        self.docs[(tenant, job_id)].update(changes)


def service(engine: FakeEngine) -> tuple[JobService, MemoryJobStore]:
    store = MemoryJobStore()
    gateway = Gateway(engine, CountingLimiter(), FakeBudget(), FakeCache())  # type: ignore[arg-type]
    return JobService(store, gateway, lease_s=60), store


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
