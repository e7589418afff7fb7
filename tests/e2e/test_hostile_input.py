"""Hostile input over HTTP and the queue: a 400 naming the problem, no 500, no input or forged line in the log."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

import httpx
import pytest
from azure.storage.queue import QueueClient

from tests.e2e.conftest import assert_openai_error, assert_problem
from tests.e2e.test_jobs import CHAT_INPUT, producer, wait_for  # noqa: F401  producer is a fixture
from tools.localenv import LocalStack

pytestmark = pytest.mark.e2e


def app_log(stack: LocalStack) -> str:
    """What the app process wrote (the stack sends each process's output to a file)."""
    return Path(stack.data_dir, "logs", "app.log").read_text(errors="replace")


def error_text(path: str, response: httpx.Response) -> str:
    """A 400's text: OpenAI's error object on the OpenAI-compatible routes, problem+json elsewhere."""
    if path.endswith("/chat/completions"):
        return str(assert_openai_error(response, 400, ...)["message"])
    return str(assert_problem(response, 400)["detail"])


def chat_with(content: str) -> bytes:
    return json.dumps({"messages": [{"role": "user", "content": content}]}, ensure_ascii=True).encode()


HOSTILE = [
    ("/v1/chat", b"[" * 10_000 + b"]" * 10_000, "deeper than 64 levels"),
    ("/v1/chat/completions", b'{"messages": ' + b"[" * 10_000 + b"]" * 10_000 + b"}", "deeper than 64 levels"),
    ("/v1/summarize", b'{"text": "x", "max_words": ' + b"9" * 5000 + b"}", "more than 40 digits"),
    ("/v1/jobs", b'{"kind": "chat", "input": {"max_tokens": ' + b"7" * 5000 + b"}}", "more than 40 digits"),
    ("/v1/chat/completions", b'{"messages": [{"role": "user", "content": "x"}], "temperature": 1e999}', "too large"),
]


@pytest.mark.parametrize(("path", "body", "mentions"), HOSTILE)
def test_hostile_json_is_a_400_naming_the_problem(api: httpx.Client, path: str, body: bytes, mentions: str) -> None:
    response = api.post(path, content=body, headers={"content-type": "application/json"})
    assert mentions in error_text(path, response)


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/chat", "/v1/jobs",
                                  "/openai/deployments/gpt-4o-mini/chat/completions"])
def test_a_lone_surrogate_is_a_400_and_the_prompt_never_reaches_the_log(api: httpx.Client, stack: LocalStack,
                                                                        path: str) -> None:
    marker = f"confidential-prompt-{uuid.uuid4().hex}"
    body = chat_with(f"{marker} \ud800")
    if path == "/v1/jobs":
        body = b'{"kind": "chat", "input": ' + body + b"}"
    response = api.post(path, content=body, headers={"content-type": "application/json"},
                        params={"api-version": "2024-10-21"})
    detail = error_text(path, response)
    assert "lone UTF-16 surrogate" in detail and "content" in detail and marker not in response.text
    assert marker not in app_log(stack)


def test_unsafe_correlation_headers_are_replaced_not_echoed(api: httpx.Client) -> None:
    for sent in (b"abc\x1b[2Kforged", b"id with spaces", "ünïcode".encode("latin-1"), b"%0d%0aforged", b"x" * 200):
        response = api.post("/v1/chat", json={"messages": [{"role": "user", "content": "hi"}], "max_tokens": 1},
                            headers={b"x-correlation-id": sent, b"traceparent": b"00-" + sent + b"-01"})
        assert response.status_code == 200, response.text
        cid = response.headers["x-correlation-id"]
        assert re.fullmatch(r"[0-9a-f]{32}", cid) and response.json()["correlation_id"] == cid


def test_a_queue_message_cannot_forge_a_log_line(api: httpx.Client, producer: QueueClient,  # noqa: F811
                                                 stack: LocalStack) -> None:
    job_id = f"forge-{uuid.uuid4().hex[:12]}"
    forged = f"ERROR forged-{uuid.uuid4().hex}: the admin key was rotated"
    producer.send_message(json.dumps({"job_id": job_id, "tenant": "dev", "kind": "chat", "input": CHAT_INPUT,
                                      "correlation_id": f"order-1\r\n{forged}"}))
    assert wait_for(api, f"/v1/jobs/{job_id}")["status"] == "succeeded"
    log = app_log(stack)
    assert f"job {job_id}: delivery 1" in log  # the delivery line was written ...
    assert forged not in log  # ... without the producer's text, on its line or any other
