"""Jobs that lost their message, and throttled jobs, on an app of their own (own queue, sweeper every 2 s)."""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from azure.core.exceptions import ResourceExistsError
from azure.storage.queue import QueueServiceClient

from shared.core.settings import hash_api_key
from tests.conftest import DEV_KEY
from tests.e2e.test_jobs import CHAT_INPUT, jobs_container, wait_for
from tools.localenv import LocalStack

pytestmark = pytest.mark.e2e
TIGHT_KEY, BROKE_KEY = "tight-tenant-key", "broke-tenant-key"
TENANTS = json.dumps([
    {"tenant": "dev", "keys": [{"id": "dev-local", "sha256": hash_api_key(DEV_KEY)}]},
    # One request a window: the second job is refused with rate-limited and a Retry-After.
    {"tenant": "tight", "keys": [{"id": "tight-1", "sha256": hash_api_key(TIGHT_KEY)}], "limits": {"rpm": 1}},
    # A daily budget no request fits: budget-exhausted.
    {"tenant": "broke", "keys": [{"id": "broke-1", "sha256": hash_api_key(BROKE_KEY)}],
     "limits": {"daily_tokens": 5}},
])
# The app's rate windows are this long instead of a minute (RATE_WINDOW_S), so the throttled job's
# Retry-After is seconds, not up to a minute.
RATE_WINDOW_S = 6


@pytest.fixture(scope="module")
def recovery_app(stack: LocalStack) -> Iterator[str]:
    queue = f"jobs-recovery-{uuid.uuid4().hex[:8]}"
    service = QueueServiceClient.from_connection_string(stack.settings["AzureWebJobsStorage"])
    for name in (queue, f"{queue}-poison"):  # as the Bicep creates them in Azure
        with contextlib.suppress(ResourceExistsError):
            service.create_queue(name)
    env = {"TENANTS": TENANTS, "JOBS_QUEUE": queue, "JOBS_SWEEP_SCHEDULE": "*/2 * * * * *",
           "JOBS_STALE_AFTER_S": "2", "SEMANTIC_CACHE_MODE": "off", "RATE_WINDOW_S": str(RATE_WINDOW_S)}
    with stack.app_on_free_port("recovery-app", env, jobs=True) as url:
        yield url


def client(url: str, key: str) -> httpx.Client:
    return httpx.Client(base_url=f"{url}/api", headers={"x-api-key": key}, timeout=30)


def test_a_job_left_queued_without_a_message_is_picked_up_by_the_sweeper(recovery_app: str,
                                                                          stack: LocalStack) -> None:
    job_id = f"orphan-{uuid.uuid4().hex[:12]}"
    now = time.time()
    # What a failed output binding after the 202 leaves behind: a queued record and no message.
    jobs_container(stack).upsert_item({
        "id": job_id, "tenant": "dev", "kind": "chat", "status": "queued", "input": CHAT_INPUT,
        "correlation_id": "orphan-test", "created_at": now - 60, "updated_at": now - 60, "enqueued_at": now - 60,
        "attempts": 0})
    with client(recovery_app, DEV_KEY) as api:
        job = wait_for(api, f"/v1/jobs/{job_id}", timeout_s=60)
    assert job["status"] == "succeeded", job
    assert job["result"]["usage"]["completion_tokens"] == 12


def test_a_rate_limited_job_waits_out_its_retry_after_and_then_succeeds(recovery_app: str,
                                                                         stack: LocalStack) -> None:
    # Both jobs must be run in one window for one to be refused: begin at a window's start (windows
    # are aligned on the clock, which the app shares with this test), not in its last second.
    if (into := time.time() % RATE_WINDOW_S) > 1:
        time.sleep(RATE_WINDOW_S - into)
    with client(recovery_app, TIGHT_KEY) as api:
        first = api.post("/v1/jobs", json={"kind": "chat", "input": CHAT_INPUT}).json()["job_id"]
        second = api.post("/v1/jobs", json={"kind": "chat", "input": CHAT_INPUT}).json()["job_id"]
        results: dict[str, dict[str, Any]] = {j: wait_for(api, f"/v1/jobs/{j}", timeout_s=120) for j in (first, second)}
    assert {r["status"] for r in results.values()} == {"succeeded"}, results
    docs = {d["id"]: d for d in jobs_container(stack).query_items(
        "SELECT * FROM c WHERE c.tenant = 'tight'", partition_key="tight") if d["id"] in results}
    # One of the two was refused and re-queued with its delay, not retried by the host until poisoned.
    assert sorted(int(d.get("throttled", 0)) for d in docs.values()) == [0, 1], docs
    assert all(d["attempts"] <= 2 for d in docs.values())


def test_a_budget_exhausted_job_fails_at_once_saying_so(recovery_app: str) -> None:
    with client(recovery_app, BROKE_KEY) as api:
        job_id = api.post("/v1/jobs", json={"kind": "chat", "input": CHAT_INPUT}).json()["job_id"]
        job = wait_for(api, f"/v1/jobs/{job_id}", timeout_s=30)
    assert job["status"] == "failed" and job["error"].startswith("budget-exhausted"), job
