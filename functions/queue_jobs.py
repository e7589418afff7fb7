"""Queue triggers: run jobs dropped on the jobs queue, and fail the ones the host gave up on."""

from __future__ import annotations

import logging

import azure.functions as func

from shared.container import get_container
from shared.correlation import safe_correlation_id
from shared.jobs import job_id_for, parse_job_message

log = logging.getLogger(__name__)
bp = func.Blueprint()


@bp.function_name("jobs_worker")
@bp.queue_trigger(arg_name="msg", queue_name="%JOBS_QUEUE%", connection="AzureWebJobsStorage")
async def jobs_worker(msg: func.QueueMessage) -> None:
    """Transient failures propagate, so the host retries and finally moves the message to poison."""
    text = msg.get_body().decode("utf-8", errors="replace")
    try:
        message = parse_job_message(text)
    except ValueError:
        # Raised so the message is kept: after maxDequeueCount it lands in the poison queue.
        log.error("queue message %s is not a job message (dequeue %s)", msg.id, msg.dequeue_count)
        raise
    container = await get_container()
    job_id = job_id_for(message, text)
    log.info("job %s: delivery %s (correlation_id=%s)", job_id, msg.dequeue_count,
             safe_correlation_id(message.correlation_id))
    await container.jobs.run(message, job_id, container.auth.principal_for_tenant(message.tenant))


@bp.function_name("jobs_poison")
@bp.queue_trigger(arg_name="msg", queue_name="%JOBS_QUEUE%-poison", connection="AzureWebJobsStorage")
async def jobs_poison(msg: func.QueueMessage) -> None:
    """Marks the job failed. A message that is not a job is raised again, so the host keeps it
    (in `<queue>-poison-poison`) for an operator instead of dropping it."""
    text = msg.get_body().decode("utf-8", errors="replace")
    message = parse_job_message(text)
    container = await get_container()
    job_id = job_id_for(message, text)
    log.warning("job %s: the host gave up after repeated failures; marking it failed", job_id)
    await container.jobs.fail_poisoned(message, job_id)
