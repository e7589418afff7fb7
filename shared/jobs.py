"""Background jobs: the record in Cosmos `jobs`, and running a queued job through the gateway."""

from __future__ import annotations

import base64
import binascii
import contextlib
import logging
import time
import uuid
from typing import Any, Protocol

from azure.core import MatchConditions
from azure.cosmos.exceptions import CosmosAccessConditionFailedError, CosmosResourceExistsError
from pydantic import ValidationError

from shared.auth import Principal
from shared.cosmos import CosmosState
from shared.errors import AppError, BadRequest, DependencyFailed, NotFound, field_errors
from shared.gateway import CallContext, Gateway
from shared.models import ChatRequest, JobMessage, JobRequest, JobView, SummarizeRequest

log = logging.getLogger(__name__)
_JOB_NAMESPACE = uuid.UUID("8f5b7a5e-3c0d-4d5e-9a51-6f4f0d2c9b11")


class JobStore(Protocol):
    async def create(self, tenant: str, job_id: str, doc: dict[str, Any]) -> None: ...
    async def get(self, tenant: str, job_id: str) -> dict[str, Any] | None: ...
    async def claim(self, tenant: str, job_id: str, doc: dict[str, Any], lease_s: float) -> dict[str, Any] | None: ...
    async def update(self, tenant: str, job_id: str, changes: dict[str, Any]) -> None: ...


class CosmosJobStore:
    """Jobs partitioned by tenant, so a tenant can only ever read its own."""

    def __init__(self, state: CosmosState) -> None:
        self._state = state

    async def create(self, tenant: str, job_id: str, doc: dict[str, Any]) -> None:
        container = await self._state.container("jobs")
        await container.upsert_item({**doc, "id": job_id, "tenant": tenant})

    async def get(self, tenant: str, job_id: str) -> dict[str, Any] | None:
        return await self._state.find("jobs", tenant, job_id)

    async def claim(self, tenant: str, job_id: str, doc: dict[str, Any], lease_s: float) -> dict[str, Any] | None:
        """Mark the job running under a lease, unless it is finished or another run holds it.

        Conditional on the ETag, so two deliveries of one message never both run the model.
        Returns the claimed document, or None when there is nothing to do.
        """
        container = await self._state.container("jobs")
        now = time.time()
        current = await self.get(tenant, job_id)
        if current is None:
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
        ops = [{"op": "set", "path": f"/{k}", "value": v} for k, v in {**changes, "updated_at": time.time()}.items()]
        await container.patch_item(job_id, partition_key=tenant, patch_operations=ops)


def parse_job_message(text: str) -> JobMessage:
    """A queue message as producers send it: JSON, plain or base64-encoded."""
    for candidate in (text, _b64(text)):
        if candidate is None:
            continue
        try:
            return JobMessage.model_validate_json(candidate)
        except ValidationError:
            continue
    raise ValueError("the message is not a job: expected JSON {tenant, kind, input}, plain or base64")


def _b64(text: str) -> str | None:
    try:
        return base64.b64decode(text.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None


def job_id_for(message: JobMessage, raw_text: str) -> str:
    """The producer's job_id, else one derived from the message text: every delivery of the same
    message (retries, the poison copy) maps to the same job."""
    return message.job_id or str(uuid.uuid5(_JOB_NAMESPACE, raw_text.strip()))


class JobService:
    def __init__(self, store: JobStore, gateway: Gateway, lease_s: float) -> None:
        self.store = store
        self.gateway = gateway
        self.lease_s = lease_s

    async def submit(self, principal: Principal, req: JobRequest, correlation_id: str) -> tuple[str, str]:
        """Record the job as queued; returns its id and the queue message to send."""
        job_id = uuid.uuid4().hex
        now = time.time()
        await self.store.create(principal.tenant, job_id, {
            "kind": req.kind, "status": "queued", "correlation_id": correlation_id,
            "created_at": now, "updated_at": now, "attempts": 0,
        })
        message = JobMessage(job_id=job_id, tenant=principal.tenant, kind=req.kind, input=req.input,
                             correlation_id=correlation_id)
        return job_id, message.model_dump_json()

    async def view(self, principal: Principal, job_id: str) -> JobView:
        doc = await self.store.get(principal.tenant, job_id)
        if doc is None:
            raise NotFound("There is no job with that id.")
        return JobView(job_id=job_id, status=doc["status"], result=doc.get("result"), error=doc.get("error"))

    async def run(self, message: JobMessage, job_id: str, principal: Principal | None) -> None:
        """Run one delivery. Transient failures raise (the host retries); a job that can never
        succeed is marked failed and returns."""
        doc = {"kind": message.kind, "correlation_id": message.correlation_id, "created_at": time.time(),
               "attempts": 0}
        claimed = await self.store.claim(message.tenant, job_id, doc, self.lease_s)
        if claimed is None:
            log.info("job %s is already finished; delivery ignored", job_id)
            return
        if principal is None:
            await self.store.update(message.tenant, job_id, {"status": "failed", "error": "unknown tenant"})
            return
        ctx = CallContext(principal, message.correlation_id or job_id)
        try:
            result = await self._invoke(ctx, message)
        except AppError as exc:
            if exc.status >= 500 or exc.status == 429:
                await self.store.update(message.tenant, job_id, {"lease_until": 0})
                raise
            await self.store.update(message.tenant, job_id, {"status": "failed", "error": exc.detail})
            return
        await self.store.update(message.tenant, job_id, {"status": "succeeded", "result": result, "error": None})

    async def fail_poisoned(self, message: JobMessage, job_id: str) -> None:
        """The host gave up on the message: the job is marked failed so its caller learns it."""
        current = await self.store.get(message.tenant, job_id)
        if current is not None and current["status"] == "succeeded":
            return
        if current is None:
            await self.store.create(message.tenant, job_id, {"kind": message.kind, "created_at": time.time()})
        await self.store.update(message.tenant, job_id, {
            "status": "failed", "error": "The job failed after repeated attempts. Submit it again later.",
        })

    async def _invoke(self, ctx: CallContext, message: JobMessage) -> dict[str, Any]:
        try:
            if message.kind == "summarize":
                return (await self.gateway.summarize(ctx, SummarizeRequest.model_validate(message.input))).model_dump()
            return (await self.gateway.chat(ctx, ChatRequest.model_validate(message.input))).model_dump()
        except ValidationError as exc:
            fields = ", ".join(e["field"] for e in field_errors(exc, whole="input"))
            raise BadRequest(f"The job's input is invalid ({fields}).") from None
