"""Jobs through the API and straight from a producer on the Storage queue."""

from __future__ import annotations

import base64
import hashlib
import json
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from azure.cosmos import CosmosClient, PartitionKey
from azure.cosmos.exceptions import CosmosResourceExistsError
from azure.storage.queue import QueueClient

from shared.jobs.service import job_id_for, parse_job_message
from shared.state.cosmos import CONTAINERS
from tests.conftest import LIMITED_KEY, OTHER_KEY
from tests.e2e.conftest import assert_problem
from tools.localenv import LocalStack

pytestmark = pytest.mark.e2e
CHAT_INPUT = {"messages": [{"role": "user", "content": "Summarise the ferry timetable changes"}], "max_tokens": 12}


def wait_for(api: httpx.Client, url: str, timeout_s: float = 45) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        body: dict[str, Any] = api.get(url).json()
        if body.get("status") in ("succeeded", "failed") or time.monotonic() > deadline:
            return body
        time.sleep(0.3)


@pytest.fixture
def producer(stack: LocalStack) -> QueueClient:
    # The stack created the queue, as the Bicep does in Azure.
    return QueueClient.from_connection_string(stack.settings["AzureWebJobsStorage"], stack.settings["JOBS_QUEUE"])


def test_a_job_submitted_over_http_succeeds(api: httpx.Client) -> None:
    response = api.post("/v1/jobs", json={"kind": "summarize", "input": {"text": "Long minutes " * 30}})
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["status_url"] == f"/api/v1/jobs/{body['job_id']}" == response.headers["location"]
    job = wait_for(api, f"/v1/jobs/{body['job_id']}")
    assert job["status"] == "succeeded", job
    assert job["result"]["result"] and job["result"]["usage"]["total_tokens"] > 0


def test_a_producer_message_with_job_id_succeeds(api: httpx.Client, producer: QueueClient) -> None:
    job_id = f"producer-{uuid.uuid4().hex[:12]}"
    producer.send_message(json.dumps({"job_id": job_id, "tenant": "dev", "kind": "chat", "input": CHAT_INPUT}))
    job = wait_for(api, f"/v1/jobs/{job_id}")
    assert job["status"] == "succeeded", job
    assert job["result"]["usage"]["completion_tokens"] == 12


def test_a_base64_producer_message_without_job_id_gets_a_stable_id(api: httpx.Client, producer: QueueClient) -> None:
    text = json.dumps({"tenant": "dev", "kind": "chat", "input": CHAT_INPUT, "correlation_id": uuid.uuid4().hex})
    encoded = base64.b64encode(text.encode()).decode()
    producer.send_message(encoded)
    # Derived from the message text as it sits on the queue, which every redelivery repeats.
    job_id = job_id_for(parse_job_message(encoded), encoded)
    job = wait_for(api, f"/v1/jobs/{job_id}")
    assert job["status"] == "succeeded", job


def test_a_tenant_never_sees_another_tenants_job(api: httpx.Client) -> None:
    job_id = api.post("/v1/jobs", json={"kind": "chat", "input": CHAT_INPUT}).json()["job_id"]
    other = api.get(f"/v1/jobs/{job_id}", headers={"x-api-key": OTHER_KEY})
    assert other.status_code == 404
    assert wait_for(api, f"/v1/jobs/{job_id}")["status"] == "succeeded"


def test_a_job_for_an_unknown_tenant_fails_without_a_model_call(api: httpx.Client, producer: QueueClient,
                                                                stack: LocalStack) -> None:
    job_id = f"ghost-{uuid.uuid4().hex[:12]}"
    producer.send_message(json.dumps({"job_id": job_id, "tenant": "ghost", "kind": "chat", "input": CHAT_INPUT}))
    # No key can read the ghost tenant's job over HTTP, so look in Cosmos as an operator would.
    jobs = jobs_container(stack)
    query = "SELECT * FROM c WHERE c.tenant = 'ghost' AND c.id = @id"
    deadline, docs = time.monotonic() + 30, []
    while time.monotonic() < deadline:
        docs = list(jobs.query_items(query, parameters=[{"name": "@id", "value": job_id}], partition_key="ghost"))
        if docs and docs[0]["status"] == "failed":
            break
        time.sleep(0.3)
    assert docs and docs[0]["status"] == "failed" and docs[0]["error"] == "unknown tenant"


def container(stack: LocalStack, name: str) -> Any:
    """One of the stack's Cosmos containers. The app creates them on its first Cosmos call, which
    may not have come yet when this file is the first a pytest-xdist worker runs: create it too."""
    settings = stack.settings
    client = CosmosClient(settings["COSMOS_ENDPOINT"], settings["COSMOS_KEY"], enable_endpoint_discovery=False)
    with suppress(CosmosResourceExistsError):  # the app created it between our read and our create
        client.create_database_if_not_exists(settings["COSMOS_DATABASE"])
    database = client.get_database_client(settings["COSMOS_DATABASE"])
    with suppress(CosmosResourceExistsError):
        database.create_container_if_not_exists(name, partition_key=PartitionKey(path=CONTAINERS[name]))
    return database.get_container_client(name)


def jobs_container(stack: LocalStack) -> Any:
    return container(stack, "jobs")


def test_the_longest_summarize_allowed_runs_as_a_job(api: httpx.Client) -> None:
    # 100,000 characters: over Storage's 64 KiB message limit, so only the claim check travels.
    text = ("The committee reviewed the harbour dredging budget and the ferry timetable. " * 1400)[:100_000]
    response = api.post("/v1/jobs", json={"kind": "summarize", "input": {"text": text, "max_words": 20}})
    assert response.status_code == 202, response.text
    job = wait_for(api, response.json()["status_url"].removeprefix("/api"), timeout_s=90)
    assert job["status"] == "succeeded", job
    assert job["result"]["usage"]["prompt_tokens"] > 10_000


def test_a_poison_message_that_is_not_a_job_becomes_a_dead_letter(stack: LocalStack) -> None:
    settings = stack.settings
    poison = QueueClient.from_connection_string(settings["AzureWebJobsStorage"], f"{settings['JOBS_QUEUE']}-poison")
    raw = f"not a job {uuid.uuid4().hex}\nforged: line" + "z" * 1000
    poison.send_message(raw)
    digest = hashlib.sha256(raw.encode()).hexdigest()
    jobs = jobs_container(stack)
    query = "SELECT * FROM c WHERE c.tenant = '!deadletter' AND c.id = @id"
    deadline, docs = time.monotonic() + 30, list[dict[str, Any]]()
    while time.monotonic() < deadline and not docs:
        docs = list(jobs.query_items(query, parameters=[{"name": "@id", "value": digest}],
                                     partition_key="!deadletter"))
        time.sleep(0.3)
    assert docs, "no dead-letter record"
    doc = docs[0]
    assert doc["size_bytes"] == len(raw.encode()) and doc["sha256"] == digest and doc["head_truncated"]
    assert doc["head"].startswith("not a job") and "\\n" in doc["head"] and "\n" not in doc["head"]
    assert len(doc["head"]) <= 1024
    # Handled, so removed: not left to be retried until its time to live runs out.
    def still_queued() -> bool:
        return any(raw == str(m.content) for m in poison.peek_messages(max_messages=32))

    deadline = time.monotonic() + 15
    while still_queued() and time.monotonic() < deadline:
        time.sleep(0.3)
    assert not still_queued()


@contextmanager
def spent(docs: Any, doc_id: str, partition: str, *, field: str, limit: int) -> Iterator[None]:
    """A budget or rate window's `field` raised to `limit` for the test, then lowered by as much
    again (an increment both ways, so what other requests add meanwhile stays counted)."""
    delta = limit - int(docs.read_item(doc_id, partition_key=partition).get(field, 0))
    docs.patch_item(doc_id, partition_key=partition, patch_operations=[{"op": "incr", "path": f"/{field}",
                                                                         "value": delta}])
    try:
        yield
    finally:
        docs.patch_item(doc_id, partition_key=partition,
                        patch_operations=[{"op": "incr", "path": f"/{field}", "value": -delta}])


def limited_chat(limited: httpx.Client) -> None:
    chat = limited.post("/v1/chat", json={"messages": [{"role": "user", "content": "hi"}], "max_tokens": 1})
    assert chat.status_code == 200, chat.text


def test_a_job_of_a_tenant_whose_budget_is_spent_is_refused_at_once(app_url: str, stack: LocalStack) -> None:
    with httpx.Client(base_url=f"{app_url}/api", headers={"x-api-key": LIMITED_KEY}, timeout=30) as limited:
        limited_chat(limited)  # today's window document exists; its use is then raised to the limit
        day = limited.get("/v1/usage").json()["daily"]
        window = f"limited:day:{datetime.now(UTC):%Y-%m-%d}"
        with spent(container(stack, "budgets"), window, "limited", field="tokens_used", limit=day["token_limit"]):
            assert limited.get("/v1/usage").json()["daily"]["tokens_used"] == day["token_limit"]
            response = limited.post("/v1/jobs", json={"kind": "chat", "input": CHAT_INPUT})
        body = assert_problem(response, 429)
        assert body["type"].endswith("/budget-exhausted") and "daily budget" in body["detail"]
        assert response.headers["x-should-retry"] == "false" and int(response.headers["retry-after"]) >= 1
        # The refusal held nothing: the next job is accepted (and runs) once the budget has room.
        accepted = limited.post("/v1/jobs", json={"kind": "chat", "input": CHAT_INPUT})
        assert accepted.status_code == 202, accepted.text
        assert wait_for(limited, accepted.json()["status_url"].removeprefix("/api"))["status"] == "succeeded"


def test_a_job_of_a_key_over_its_rate_limit_is_refused_at_once(app_url: str, stack: LocalStack) -> None:
    key = "limited:limited-1"  # the rate key: tenant and key id
    with httpx.Client(base_url=f"{app_url}/api", headers={"x-api-key": LIMITED_KEY}, timeout=30) as limited:
        minute = f"{datetime.now(UTC):%Y%m%d%H%M}"
        limited_chat(limited)  # this minute's document exists (a second chat if the minute turned meanwhile)
        if f"{datetime.now(UTC):%Y%m%d%H%M}" != minute:
            minute = f"{datetime.now(UTC):%Y%m%d%H%M}"
            limited_chat(limited)
        rpm = 1000  # TEST_TENANTS
        with spent(container(stack, "ratelimits"), f"{key}:{minute}", key, field="requests", limit=rpm):
            response = limited.post("/v1/jobs", json={"kind": "chat", "input": CHAT_INPUT})
    if f"{datetime.now(UTC):%Y%m%d%H%M}" == minute:  # else a new minute began before the check: nothing to tell
        body = assert_problem(response, 429)
        assert body["type"].endswith("/rate-limited") and 1 <= int(response.headers["retry-after"]) <= 60
        assert response.headers["x-ratelimit-remaining-requests"] == "0"
