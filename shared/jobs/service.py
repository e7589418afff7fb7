"""Background jobs: the record in Cosmos `jobs`, and running a queued job through the gateway."""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Annotated, Any, Literal, Protocol

from azure.core import MatchConditions
from azure.cosmos.exceptions import CosmosAccessConditionFailedError, CosmosResourceExistsError
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared.core.correlation import safe_correlation_id
from shared.core.errors import (
    AppError,
    BadRequest,
    BudgetExhausted,
    DependencyFailed,
    NotFound,
    TooManyRequests,
    field_errors,
)
from shared.core.models import ChatRequest, JobKind, JobMessage, JobRequest, JobView, SummarizeRequest
from shared.identity.auth import Principal
from shared.jobs.queue import JobQueue
from shared.observability import tracing
from shared.pipeline.gateway import CallContext, Gateway
from shared.state.cosmos import CosmosState

log = logging.getLogger(__name__)
_JOB_NAMESPACE = uuid.UUID("8f5b7a5e-3c0d-4d5e-9a51-6f4f0d2c9b11")
# A job throttled this many times in a row fails rather than circle the queue for days.
MAX_THROTTLED_REQUEUES = 50


class JobReference(BaseModel):
    """The claim check `POST /api/v1/jobs` sends: the input stays in the job's Cosmos record, so a
    message stays far below Storage's 64 KiB whatever the input's size (docs/queue.md)."""

    model_config = ConfigDict(extra="ignore")

    job_id: Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:-]+$")]
    tenant: Annotated[str, Field(min_length=1, max_length=64)]
    kind: JobKind
    correlation_id: str | None = None
    traceparent: str | None = None  # the submitting request's span: the job's span is in its trace
    input_ref: Literal[True]


QueuedJob = JobMessage | JobReference
# A read-only check a submission must pass (the key's rate limit, the tenant's budget): the refusal, or None.
Refusal = Callable[[Principal], Awaitable[TooManyRequests | None]]


class JobStore(Protocol):
    async def create(self, tenant: str, job_id: str, doc: dict[str, Any]) -> None: ...
    async def get(self, tenant: str, job_id: str) -> dict[str, Any] | None: ...
    async def claim(self, tenant: str, job_id: str, doc: dict[str, Any] | None,
                    lease_s: float) -> dict[str, Any] | None: ...
    async def update(self, tenant: str, job_id: str, changes: dict[str, Any]) -> None: ...
    async def stale_queued(self, before: float, limit: int) -> list[dict[str, Any]]: ...


class CosmosJobStore:
    """Jobs partitioned by tenant, so a tenant can only ever read its own."""

    def __init__(self, state: CosmosState, wall: Callable[[], float] = time.time) -> None:
        self._state = state
        self._wall = wall

    async def create(self, tenant: str, job_id: str, doc: dict[str, Any]) -> None:
        container = await self._state.container("jobs")
        await container.upsert_item({**doc, "id": job_id, "tenant": tenant})

    async def get(self, tenant: str, job_id: str) -> dict[str, Any] | None:
        return await self._state.find("jobs", tenant, job_id)

    async def claim(self, tenant: str, job_id: str, doc: dict[str, Any] | None,
                    lease_s: float) -> dict[str, Any] | None:
        """Mark the job running under a lease, unless it is finished or another run holds it.

        Conditional on the ETag, so two deliveries of one message never both run the model.
        Returns the claimed document, or None when there is nothing to do. A missing record is
        created from `doc` (a producer's whole message), or there is nothing to run (doc None).
        """
        container = await self._state.container("jobs")
        now = self._wall()
        current = await self.get(tenant, job_id)
        if current is None and doc is None:
            return None
        if current is None:
            assert doc is not None  # noqa: S101  narrowed above
            with contextlib.suppress(CosmosResourceExistsError):  # another delivery created it first
                await container.create_item({**doc, "id": job_id, "tenant": tenant, "status": "queued"})
            current = await self.get(tenant, job_id)
            assert current is not None  # noqa: S101
        if current["status"] in ("succeeded", "failed"):
            return None
        if current["status"] == "running" and current.get("lease_until", 0) > now:
            raise DependencyFailed("the job is being run by another delivery", retry_after_s=lease_s)
        claimed = {**current, "status": "running", "lease_until": now + lease_s,
                   "attempts": int(current.get("attempts", 0)) + 1, "updated_at": now}
        try:
            await container.replace_item(job_id, claimed, etag=current["_etag"],
                                         match_condition=MatchConditions.IfNotModified)
        except CosmosAccessConditionFailedError:
            raise DependencyFailed("the job changed while being claimed", retry_after_s=1) from None
        return claimed

    async def update(self, tenant: str, job_id: str, changes: dict[str, Any]) -> None:
        container = await self._state.container("jobs")
        ops = [{"op": "set", "path": f"/{k}", "value": v} for k, v in {**changes, "updated_at": self._wall()}.items()]
        await container.patch_item(job_id, partition_key=tenant, patch_operations=ops)

    async def stale_queued(self, before: float, limit: int) -> list[dict[str, Any]]:
        """Jobs of every tenant still queued and last enqueued before `before` (the sweeper's query)."""
        container = await self._state.container("jobs")
        query = ("SELECT * FROM c WHERE c.status = 'queued' AND IS_DEFINED(c.enqueued_at) "
                 "AND c.enqueued_at < @before")
        found: list[dict[str, Any]] = []
        async for doc in container.query_items(query, parameters=[{"name": "@before", "value": before}]):
            found.append(doc)
            if len(found) >= limit:
                break
        return found


def parse_job_message(text: str) -> QueuedJob:
    """A queue message as producers send it (JSON, plain or base64-encoded), or our own claim check."""
    for candidate in (text, _b64(text)):
        if candidate is None:
            continue
        for model in (JobMessage, JobReference):
            try:
                return model.model_validate_json(candidate)
            except ValidationError:
                continue
    raise ValueError("the message is not a job: expected JSON {tenant, kind, input}, plain or base64")


def _b64(text: str) -> str | None:
    try:
        return base64.b64decode(text.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None


def job_id_for(message: QueuedJob, raw_text: str) -> str:
    """The producer's job_id, else one derived from the message text: every delivery of the same
    message (retries, the poison copy) maps to the same job."""
    return message.job_id or str(uuid.uuid5(_JOB_NAMESPACE, raw_text.strip()))


class JobService:
    def __init__(self, store: JobStore, gateway: Gateway, lease_s: float, queue: JobQueue | None = None,
                 refusals: Sequence[Refusal] = (), *, wall: Callable[[], float] = time.time) -> None:
        self._wall = wall  # seconds since the epoch: stored in job records, compared across instances
        self.store = store
        self.gateway = gateway
        self.lease_s = lease_s
        self.queue = queue  # None only in tests that never re-queue
        self.refusals = refusals

    async def submit(self, principal: Principal, req: JobRequest, correlation_id: str) -> tuple[str, str]:
        """Record the job, its input included, as queued; returns its id and the claim check to send.

        A key over its rate limit or a tenant whose budget is spent is refused first (429, as the
        sync routes answer): its job could only be throttled or fail, after a worker run and Cosmos
        writes. The checks count and hold nothing; the job's model call is admitted when it runs.
        """
        for refusal in await asyncio.gather(*(check(principal) for check in self.refusals)):
            if refusal is not None:
                raise refusal
        job_id = uuid.uuid4().hex
        now = self._wall()
        parent = tracing.traceparent()
        await self.store.create(principal.tenant, job_id, {
            "kind": req.kind, "status": "queued", "correlation_id": correlation_id, "input": req.input,
            "created_at": now, "updated_at": now, "enqueued_at": now, "attempts": 0, "traceparent": parent,
        })
        message = JobReference(job_id=job_id, tenant=principal.tenant, kind=req.kind,
                               correlation_id=correlation_id, traceparent=parent, input_ref=True)
        return job_id, message.model_dump_json()

    async def view(self, principal: Principal, job_id: str) -> JobView:
        doc = await self.store.get(principal.tenant, job_id)
        if doc is None:
            raise NotFound("There is no job with that id.")
        return JobView(job_id=job_id, status=doc["status"], result=doc.get("result"), error=doc.get("error"))

    async def run(self, message: QueuedJob, job_id: str, principal: Principal | None, raw_text: str = "") -> None:
        """Run one delivery. Transient failures raise (the host retries); a throttled job is put back
        with its Retry-After as delay; a job that can never succeed is marked failed and returns."""
        doc = None if isinstance(message, JobReference) else {
            "kind": message.kind, "correlation_id": safe_correlation_id(message.correlation_id),
            "created_at": self._wall(), "attempts": 0}
        claimed = await self.store.claim(message.tenant, job_id, doc, self.lease_s)
        if claimed is None:
            log.info("job %s: finished, or no record for its claim check; delivery ignored", job_id)
            tracing.job_done("ignored", None)
            return
        created_at = claimed.get("created_at")
        if principal is None:
            await self._fail(message.tenant, job_id, "unknown tenant", created_at)
            return
        job_input = message.input if isinstance(message, JobMessage) else claimed.get("input")
        if not isinstance(job_input, dict):
            await self._fail(message.tenant, job_id, "The job's input is missing.", created_at)
            return
        ctx = CallContext(principal, safe_correlation_id(message.correlation_id) or job_id)
        try:
            result = await self._invoke(ctx, message.kind, job_input)
        except BudgetExhausted as exc:
            # No retry helps before the window resets: fail now, saying why.
            tracing.refused(exc.type_slug)
            await self._fail(message.tenant, job_id, f"{exc.type_slug}: {exc.detail}", created_at)
            return
        except TooManyRequests as exc:
            tracing.refused(exc.type_slug)
            await self._requeue(message, job_id, claimed, raw_text, exc)
            return
        except AppError as exc:
            if exc.status >= 500:
                await self.store.update(message.tenant, job_id, {"lease_until": 0})
                tracing.job_done("retry", None)
                raise
            await self._fail(message.tenant, job_id, exc.detail, created_at)
            return
        await self.store.update(message.tenant, job_id, {"status": "succeeded", "result": result, "error": None})
        tracing.job_done("succeeded", self._age(created_at))

    def _age(self, created_at: object) -> float | None:
        """How long ago the job was accepted, on the service's wall clock (the one it stamped it with)."""
        return max(0.0, self._wall() - float(created_at)) if isinstance(created_at, int | float) else None

    async def _fail(self, tenant: str, job_id: str, error: str, created_at: object = None) -> None:
        await self.store.update(tenant, job_id, {"status": "failed", "error": error})
        tracing.job_done("failed", self._age(created_at))

    async def _requeue(self, message: QueuedJob, job_id: str, claimed: dict[str, Any], raw_text: str,
                       exc: TooManyRequests) -> None:
        """Back on the queue, invisible for the Retry-After, instead of burning the host's dequeues."""
        throttled = int(claimed.get("throttled", 0)) + 1
        if self.queue is None or throttled > MAX_THROTTLED_REQUEUES:
            await self._fail(message.tenant, job_id, f"{exc.type_slug}: refused {throttled} times in a row.",
                             claimed.get("created_at"))
            return
        delay = max(1.0, exc.retry_after_s or 1.0)
        # The record first: if the send fails, the host retries this delivery, which finds it queued.
        await self.store.update(message.tenant, job_id, {
            "status": "queued", "lease_until": 0, "throttled": throttled, "enqueued_at": self._wall() + delay})
        # The same text again, so a producer's message without job_id still maps to the same job.
        await self.queue.send(raw_text or _reference(message, job_id), delay_s=delay)
        log.info("job %s: %s; re-queued with a delay of %.0f s", job_id, exc.type_slug, delay)
        tracing.job_done("requeued", None)

    async def sweep(self, stale_after_s: float, max_requeues: int, limit: int = 100) -> tuple[int, int]:
        """Jobs left queued with no message (the send failed after the 202, or anything else): each is
        enqueued again, or failed after `max_requeues`. Returns (re-enqueued, failed)."""
        now = self._wall()
        requeued = failed = 0
        for doc in await self.store.stale_queued(now - stale_after_s, limit):
            tenant, job_id, sweeps = doc["tenant"], doc["id"], int(doc.get("sweeps", 0))
            if sweeps >= max_requeues:
                await self._fail(tenant, job_id, "The job could not be queued. Submit it again.")
                failed += 1
                continue
            await self.store.update(tenant, job_id, {"sweeps": sweeps + 1, "enqueued_at": now})
            if self.queue is None:
                raise DependencyFailed("no jobs queue is configured")
            reference = JobReference(job_id=job_id, tenant=tenant, kind=doc["kind"],
                                     correlation_id=doc.get("correlation_id"), traceparent=doc.get("traceparent"),
                                     input_ref=True)
            await self.queue.send(reference.model_dump_json())
            requeued += 1
        if requeued or failed:
            log.warning("job sweeper: %d job(s) had no message: %d re-enqueued, %d failed", requeued + failed,
                        requeued, failed)
        return requeued, failed

    async def fail_poisoned(self, message: QueuedJob, job_id: str) -> None:
        """The host gave up on the message: the job is marked failed so its caller learns it."""
        current = await self.store.get(message.tenant, job_id)
        if current is not None and current["status"] == "succeeded":
            return
        if current is None:
            await self.store.create(message.tenant, job_id, {"kind": message.kind, "created_at": self._wall()})
        await self.store.update(message.tenant, job_id, {
            "status": "failed", "error": "The job failed after repeated attempts. Submit it again later.",
        })

    async def _invoke(self, ctx: CallContext, kind: str, job_input: dict[str, Any]) -> dict[str, Any]:
        try:
            if kind == "summarize":
                return (await self.gateway.summarize(ctx, SummarizeRequest.model_validate(job_input))).body.model_dump()
            return (await self.gateway.chat(ctx, ChatRequest.model_validate(job_input))).body.model_dump()
        except ValidationError as exc:
            fields = ", ".join(e["field"] for e in field_errors(exc, whole="input"))
            raise BadRequest(f"The job's input is invalid ({fields}).") from None


def _reference(message: QueuedJob, job_id: str) -> str:
    if isinstance(message, JobMessage):
        return message.model_copy(update={"job_id": job_id}).model_dump_json()
    return message.model_dump_json()
