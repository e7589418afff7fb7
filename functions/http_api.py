"""The native JSON API: health, readiness, its OpenAPI document, summarize, chat, usage and jobs."""

from __future__ import annotations

import azure.functions as func
from azurefunctions.extensions.http.fastapi import JSONResponse, Request, Response

from functions.http_common import (
    Scope,
    authenticate_if_sent,
    http_function,
    ok,
    problem,
    read_model,
    respond,
    unexpected,
    validate,
)
from shared.api.openapi import openapi_document
from shared.container import get_container
from shared.core.correlation import correlation_id
from shared.core.errors import AppError, NotConfigured, NotFound, ServiceUnavailable
from shared.core.models import JOB_INPUTS, ChatRequest, JobRequest, SummarizeRequest
from shared.identity.auth import ADMIN_ROLE
from shared.readiness import verdict, with_breakers

bp = func.Blueprint(http_auth_level=func.AuthLevel.ANONYMOUS)


@http_function(bp, "health", "health", ["GET"])
async def health(req: Request) -> Response:
    """Liveness: no auth and no dependency call, so it answers even when Cosmos is down."""
    cid = correlation_id(req.headers)
    return JSONResponse({"status": "healthy"}, headers={"x-correlation-id": cid, "x-request-id": cid})


@http_function(bp, "ready", "ready", ["GET"])
async def ready(req: Request) -> Response:
    """Readiness from the last background probe (never a probe per call). Without credentials only
    ready or not; a key of a tenant with the `admin` role also gets each dependency's state. Bad
    settings are named (never their values) to everyone: no key can be checked then."""
    cid = correlation_id(req.headers)
    try:
        response = await _ready(req, cid)
    except Exception as exc:  # noqa: BLE001  logged by unexpected(); the caller gets a generic 500
        response = unexpected(exc, cid)
    response.headers["x-request-id"] = cid
    return response


async def _ready(req: Request, cid: str) -> Response:
    try:
        container = await get_container()
        principal = await authenticate_if_sent(container, req.headers)
    except NotConfigured as err:
        return problem(err, cid, {"invalid_settings": list(err.settings)})
    except AppError as err:
        return problem(err, cid)
    checks = with_breakers(await container.readiness.checks(), container.groups.policy.pool.states())
    failing = verdict(checks)
    details = principal is not None and ADMIN_ROLE in principal.roles
    if not failing:
        body = {"status": "ready", "checks": checks} if details else {"status": "ready"}
        return JSONResponse(body, headers={"x-correlation-id": cid})
    if not details:
        return problem(ServiceUnavailable("Not ready.", retry_after_s=5), cid)
    return problem(ServiceUnavailable("Not ready: " + ", ".join(failing) + ".", retry_after_s=5), cid,
                   {"checks": checks})


@http_function(bp, "openapi", "openapi.json", ["GET"])
async def openapi(req: Request) -> Response:
    """The OpenAPI 3.1 document of this API; no auth, no dependency call."""
    cid = correlation_id(req.headers)
    return JSONResponse(openapi_document(), headers={"x-correlation-id": cid, "x-request-id": cid})


@http_function(bp, "summarize", "v1/summarize", ["POST"])
async def summarize(req: Request) -> Response:
    async def work(scope: Scope) -> Response:
        body = await read_model(scope, SummarizeRequest)
        served = await scope.container.gateway.summarize(scope.context, body)
        return ok(served.body, headers=dict(served.headers))

    return await respond(req, work)


@http_function(bp, "chat", "v1/chat", ["POST"])
async def chat(req: Request) -> Response:
    async def work(scope: Scope) -> Response:
        body = await read_model(scope, ChatRequest)
        served = await scope.container.gateway.chat(scope.context, body)
        return ok(served.body, headers=dict(served.headers))

    return await respond(req, work)


@http_function(bp, "usage", "v1/usage", ["GET"])
async def usage(req: Request) -> Response:
    """The caller's tenant: settled use of today's and this month's windows, and their limits."""

    async def work(scope: Scope) -> Response:
        return ok(await scope.container.budget.usage(scope.principal))

    return await respond(req, work)


@http_function(bp, "jobs_submit", "v1/jobs", ["POST"])
@bp.queue_output(arg_name="outbox", queue_name="%JOBS_QUEUE%", connection="AzureWebJobsStorage")
async def jobs_submit(req: Request, outbox: func.Out[str]) -> Response:
    """Records the job with its input, then the host puts the claim check on the queue after the
    response; if that write fails, the job sweeper (jobs_sweep) enqueues it again."""

    async def work(scope: Scope) -> Response:
        body = await read_model(scope, JobRequest)
        validate(JOB_INPUTS[body.kind], body.input, prefix="input")
        job_id, message = await scope.container.jobs.submit(scope.principal, body, scope.correlation_id)
        outbox.set(message)
        # Relative: behind the Functions host the request's own URL names the worker, not the caller's host.
        status_url = f"/api/v1/jobs/{job_id}"
        return ok({"job_id": job_id, "status_url": status_url}, status=202, headers={"Location": status_url})

    return await respond(req, work)


@http_function(bp, "jobs_status", "v1/jobs/{job_id}", ["GET"])
async def jobs_status(req: Request) -> Response:
    async def work(scope: Scope) -> Response:
        job_id = str(scope.request.path_params.get("job_id", ""))
        if not job_id or len(job_id) > 128:
            raise NotFound("There is no job with that id.")
        return ok(await scope.container.jobs.view(scope.principal, job_id))

    return await respond(req, work)
