"""Queue and timer triggers: run jobs from the jobs queue, fail the ones the host gave up on, and
re-enqueue jobs left queued without a message."""

from __future__ import annotations

import logging

import azure.functions as func

from shared.container import get_container, loaded
from shared.core.correlation import safe_correlation_id
from shared.observability import names as n
from shared.observability import tracing
from shared.observability.record import Record

log = logging.getLogger(__name__)
bp = func.Blueprint()


@bp.function_name("jobs_worker")
@bp.queue_trigger(arg_name="msg", queue_name="%JOBS_QUEUE%", connection="AzureWebJobsStorage")
async def jobs_worker(msg: func.QueueMessage) -> None:
    """Transient failures propagate, so the host retries and finally moves the message to poison."""
    text = msg.get_body().decode("utf-8", errors="replace")
    await loaded()
    from shared.jobs.deadletter import NAMES_RESERVED, reserved  # noqa: PLC0415  loaded by the loader thread
    from shared.jobs.service import job_id_for, parse_job_message  # noqa: PLC0415
    try:
        message = parse_job_message(text)
    except ValueError:
        # Raised so the message is kept: after maxDequeueCount it lands in the poison queue.
        log.error("queue message %s is not a job message (dequeue %s)", msg.id, msg.dequeue_count)
        raise
    container = await get_container()
    queue = container.settings.jobs_queue
    if reserved(message.tenant):
        # Never run and never retried: a job there would read or overwrite the app's own records.
        await _dead_letter(msg, queue, NAMES_RESERVED)
        return
    job_id = job_id_for(message, text)
    record = Record(route=f"{n.JOB_SPAN_PREFIX} {queue}", job=True, tenant=message.tenant, key_id="queue")
    principal = await container.auth.principal_for_tenant(message.tenant)
    record.log_content = principal is not None and principal.log_content
    # The job's span continues the trace of the request that submitted it (the message's traceparent).
    trace_id = tracing.server_span(record, record.route, message.traceparent,
                                   {n.JOB_ID: job_id, n.QUEUE: queue, n.TENANT: message.tenant})
    record.correlation_id = safe_correlation_id(message.correlation_id) or trace_id or job_id
    log.info("job %s: delivery %s (correlation_id=%s)", job_id, msg.dequeue_count, record.correlation_id)
    status = 200
    try:
        with tracing.active(record):
            await container.jobs.run(message, job_id, principal, text)
    except BaseException:
        status, record.outcome = 500, record.outcome or "retry"
        raise
    finally:
        # A job has no HTTP status: 500 for a delivery the host retries, 422 for a failed job.
        tracing.finish(record, 422 if record.outcome == "failed" else status)


@bp.function_name("jobs_poison")
@bp.queue_trigger(arg_name="msg", queue_name="%JOBS_QUEUE%-poison", connection="AzureWebJobsStorage")
async def jobs_poison(msg: func.QueueMessage) -> None:
    """Marks the job failed. A message that is not a job, or names a reserved partition, is kept as a
    dead letter in Cosmos and removed: the extension makes no poison queue for a poison queue, so
    raising would only have it retried until its time to live ran out, with nobody told."""
    body = msg.get_body()
    container = await get_container()
    from shared.jobs.deadletter import NAMES_RESERVED, NOT_A_JOB, reserved  # noqa: PLC0415  loaded with the container
    from shared.jobs.service import job_id_for, parse_job_message  # noqa: PLC0415
    text = body.decode("utf-8", errors="replace")
    try:
        message = parse_job_message(text)
        reason = NAMES_RESERVED if reserved(message.tenant) else None
    except ValueError:
        reason = NOT_A_JOB
    if reason is not None:
        await _dead_letter(msg, f"{container.settings.jobs_queue}-poison", reason)
        return
    job_id = job_id_for(message, text)
    log.warning("job %s: the host gave up after repeated failures; marking it failed", job_id)
    await container.jobs.fail_poisoned(message, job_id)


async def _dead_letter(msg: func.QueueMessage, queue: str, reason: str) -> None:
    """Kept in Cosmos and logged once by size and hash (never its text); the message is then removed."""
    container = await get_container()
    await container.deadletters.record(msg.get_body(), queue=queue, message_id=str(msg.id),
                                       dequeue_count=int(msg.dequeue_count or 0), reason=reason)


@bp.function_name("jobs_sweep")
@bp.timer_trigger(arg_name="timer", schedule="%JOBS_SWEEP_SCHEDULE%", run_on_startup=False)
async def jobs_sweep(timer: func.TimerRequest) -> None:
    """Jobs still queued JOBS_STALE_AFTER_S after they were enqueued have lost their message."""
    container = await get_container()
    settings = container.settings
    await container.jobs.sweep(settings.jobs_stale_after_s, settings.jobs_sweep_max_requeues)
