"""Requests built to hurt (issue 19): a forged bearer, a body of a quarter million arrays, a queue
message aimed at the app's own partition. Each is refused with its documented status and one log line."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import time
import uuid
from typing import Any

import httpx
import pytest
from azure.cosmos.exceptions import CosmosResourceNotFoundError
from azure.storage.queue import QueueClient

from shared.core.safe_json import MAX_NODES
from shared.jobs.deadletter import DEADLETTER_PARTITION
from tests.e2e.conftest import assert_openai_error, assert_problem
from tests.e2e.test_hostile_input import app_log
from tests.e2e.test_jobs import jobs_container, producer  # noqa: F401  producer is a fixture
from tools.localenv import LocalStack

pytestmark = pytest.mark.e2e


def refusal(response: httpx.Response, status: int, path: str) -> str:
    """The refusal's text, in the shape of its route: OpenAI's error object on the OpenAI-compatible
    routes, problem+json on the native ones."""
    if path.endswith("/chat/completions"):
        return str(assert_openai_error(response, status, ...)["message"])
    return str(assert_problem(response, status)["detail"])


def segment(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


# A JWT's shape whose header is 5,000 nested arrays: json.loads alone raises RecursionError on it.
DEEP_BEARER = f"{segment(b'[' * 5000)}.{segment(b'{}')}.c2ln"


@pytest.mark.parametrize(("method", "path"), [("GET", "/ready"), ("POST", "/v1/chat"),
                                              ("POST", "/v1/chat/completions"), ("GET", "/v1/usage")])
def test_a_bearer_with_a_deeply_nested_header_is_a_401_not_a_500(anonymous: httpx.Client, stack: LocalStack,
                                                                 method: str, path: str) -> None:
    response = anonymous.request(method, path, headers={"authorization": f"Bearer {DEEP_BEARER}"},
                                 json={"messages": [{"role": "user", "content": "hi"}]})
    refusal(response, 401, path)
    assert response.headers["www-authenticate"].startswith("Bearer ")
    assert "RecursionError" not in app_log(stack)


def hostile_body(arrays: int) -> bytes:
    return b'{"messages": [' + b",".join([b"[]"] * arrays) + b"]}"


@pytest.mark.parametrize("path", ["/v1/chat", "/v1/chat/completions", "/v1/jobs"])
def test_a_body_of_a_quarter_million_arrays_is_refused_naming_the_limit(api: httpx.Client, path: str) -> None:
    response = api.post(path, content=hostile_body(250_000), headers={"content-type": "application/json"})
    assert f"more than {MAX_NODES} JSON values" in refusal(response, 400, path)


def test_a_body_just_within_the_limit_is_parsed_and_validated(api: httpx.Client) -> None:
    response = api.post("/v1/chat", content=hostile_body(MAX_NODES - 3), headers={"content-type": "application/json"})
    body = assert_problem(response, 400)
    assert "JSON values" not in body["detail"] and body["type"].endswith("/validation")


# The emulator wants the partition key in the query's text, as a literal.
DEAD_LETTER_BY_ID = "SELECT * FROM c WHERE c.tenant = '!deadletter' AND c.id = @id"


@pytest.mark.parametrize("body", [b"null", b"1", b"true", b'"text"', b"[]"])
def test_a_body_that_is_not_an_object_is_a_400_not_a_500(api: httpx.Client, body: bytes) -> None:
    response = api.post("/v1/jobs", content=body, headers={"content-type": "application/json"})
    assert assert_problem(response, 400)["detail"] == "The body must be a JSON object."


def dead_letters(stack: LocalStack, digest: str) -> list[dict[str, Any]]:
    with contextlib.suppress(CosmosResourceNotFoundError):  # the app creates the container on first use
        return list(jobs_container(stack).query_items(DEAD_LETTER_BY_ID,
                                                      parameters=[{"name": "@id", "value": digest}],
                                                      partition_key=DEADLETTER_PARTITION))
    return []


def wait_for_dead_letter(stack: LocalStack, digest: str, timeout_s: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while not (docs := dead_letters(stack, digest)) and time.monotonic() < deadline:
        time.sleep(0.3)
    assert docs, "no dead-letter record"
    return docs[0]


def test_a_message_naming_the_dead_letter_partition_is_a_dead_letter_and_never_crashes_the_worker(
        app_url: str, stack: LocalStack, producer: QueueClient) -> None:  # noqa: F811
    settings = stack.settings
    # A dead letter to aim at: a poison message that is not a job.
    poison = QueueClient.from_connection_string(settings["AzureWebJobsStorage"], f"{settings['JOBS_QUEUE']}-poison")
    target_raw = f"not a job {uuid.uuid4().hex}"
    poison.send_message(target_raw)
    target = hashlib.sha256(target_raw.encode()).hexdigest()
    before = wait_for_dead_letter(stack, target)
    # A claim check naming that record as a job of the reserved partition.
    marker = f"attack-{uuid.uuid4().hex}"
    raw = json.dumps({"job_id": target, "tenant": DEADLETTER_PARTITION, "kind": "chat", "input_ref": True,
                      "correlation_id": marker})
    producer.send_message(raw)
    doc = wait_for_dead_letter(stack, hashlib.sha256(raw.encode()).hexdigest())
    assert doc["reason"].startswith("names a reserved partition") and doc["queue"] == settings["JOBS_QUEUE"]
    assert doc["dequeue_count"] == 1, "refused on its first delivery, not retried into the poison queue"
    after = dead_letters(stack, target)[0]
    assert {k: v for k, v in after.items() if not k.startswith("_")} == \
        {k: v for k, v in before.items() if not k.startswith("_")}, "the record aimed at is untouched"
    log = app_log(stack)
    assert "KeyError" not in log and marker not in log
    assert log.count(f"sha256={doc['sha256']}") == 1, "logged once, by hash"
