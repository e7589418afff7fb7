"""The native API over HTTP: the contract's answers, and the documented 4xx for every bad input."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.conftest import ADMIN_KEY, DEV_KEY, OTHER_KEY
from tests.e2e.conftest import assert_openai_error, assert_problem

pytestmark = pytest.mark.e2e

def test_health_needs_no_key(anonymous: httpx.Client) -> None:
    response = anonymous.get("/health")
    assert response.status_code == 200 and response.json() == {"status": "healthy"}
    assert response.headers["x-correlation-id"]


def test_ready_without_a_key_says_only_ready(anonymous: httpx.Client) -> None:
    response = anonymous.get("/ready")
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "ready"}


@pytest.mark.parametrize("key", [DEV_KEY, OTHER_KEY])
def test_ready_with_a_tenant_key_without_the_admin_role_says_only_ready(anonymous: httpx.Client, key: str) -> None:
    assert anonymous.get("/ready", headers={"x-api-key": key}).json() == {"status": "ready"}


def test_ready_with_an_admin_key_reports_each_dependency(anonymous: httpx.Client) -> None:
    response = anonymous.get("/ready", headers={"api-key": ADMIN_KEY})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "ready"
    assert body["checks"]["cosmos"] == "ok"
    assert body["checks"]["model:primary"] == body["checks"]["model:secondary"] == "ok"
    assert body["checks"]["breaker:primary"] == "closed"


def test_ready_with_a_wrong_key_is_401(anonymous: httpx.Client) -> None:
    assert_problem(anonymous.get("/ready", headers={"x-api-key": "guess"}), 401)


def test_summarize(api: httpx.Client) -> None:
    response = api.post("/v1/summarize", json={"text": "The harbour town woke slowly. " * 20, "max_words": 30},
                        headers={"x-correlation-id": "order-77"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["result"] and body["model"].startswith("simulator-") and body["cached"] is False
    assert body["correlation_id"] == response.headers["x-correlation-id"] == "order-77"
    usage = body["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"] > 0


def test_chat(api: httpx.Client) -> None:
    response = api.post("/v1/chat", json={"messages": [{"role": "user", "content": "Hello there, harbour master"}],
                                          "max_tokens": 5})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["finish_reason"] == "length" and body["usage"]["completion_tokens"] == 5
    assert body["content"] and body["cached"] is False


def test_the_correlation_id_comes_from_traceparent_when_none_is_sent(api: httpx.Client) -> None:
    trace = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    response = api.post("/v1/chat", json={"messages": [{"role": "user", "content": "hi"}]},
                        headers={"traceparent": trace})
    assert response.headers["x-correlation-id"] == "0af7651916cd43dd8448eb211c80319c"


@pytest.mark.parametrize(("path", "kwargs", "status", "mentions"), [
    ("/v1/chat", {"content": b"{not json", "headers": {"content-type": "application/json"}}, 400, "not valid JSON"),
    ("/v1/chat", {"content": b"[1, 2]", "headers": {"content-type": "application/json"}}, 400, "JSON object"),
    ("/v1/chat", {"json": {"messages": "hello"}}, 400, "messages"),
    ("/v1/chat", {"json": {"messages": [{"role": "user", "content": "x"}], "max_tokens": "ten"}}, 400, "max_tokens"),
    ("/v1/chat", {"json": {"messages": [{"role": "wizard", "content": "x"}]}}, 400, "messages.0.role"),
    ("/v1/summarize", {"json": {}}, 400, "text"),
    ("/v1/summarize", {"json": {"text": "x", "max_words": 5000}}, 400, "max_words"),
    ("/v1/summarize", {"content": b"text=hello", "headers": {"content-type": "text/plain"}}, 415, "application/json"),
    ("/v1/summarize", {"content": b'{"text": "x"}'}, 415, "application/json"),
    ("/v1/jobs", {"json": {"kind": "summarize", "input": {"text": ""}}}, 400, "input.text"),
    ("/v1/jobs", {"json": {"kind": "translate", "input": {}}}, 400, "kind"),
])
def test_bad_input_gets_a_problem_naming_what_is_wrong(api: httpx.Client, path: str, kwargs: dict[str, Any],
                                                       status: int, mentions: str) -> None:
    body = assert_problem(api.post(path, **kwargs), status)
    assert mentions in body["detail"]


def test_validation_errors_list_each_field(api: httpx.Client) -> None:
    body = assert_problem(api.post("/v1/chat", json={"messages": [], "temperature": 9}), 400)
    assert {e["field"] for e in body["errors"]} == {"messages", "temperature"}


def test_an_oversize_body_is_413_and_not_read(api: httpx.Client) -> None:
    huge = json.dumps({"text": "x" * 1_100_000}).encode()
    assert_problem(api.post("/v1/summarize", content=huge, headers={"content-type": "application/json"}), 413)


def test_an_oversize_chunked_body_is_413_too(api: httpx.Client) -> None:
    def chunks() -> Any:
        yield b'{"text": "'
        for _ in range(40):
            yield b"y" * 32_768
        yield b'"}'

    assert_problem(api.post("/v1/summarize", content=chunks(), headers={"content-type": "application/json"}), 413)


@pytest.mark.parametrize("headers", [{}, {"x-api-key": "wrong"}, {"authorization": "Bearer wrong"},
                                     {"authorization": "Basic bG9jYWwtZGV2LWtleQ=="}])
def test_missing_or_wrong_keys_are_401(anonymous: httpx.Client, headers: dict[str, str]) -> None:
    response = anonymous.post("/v1/chat", json={"messages": [{"role": "user", "content": "x"}]}, headers=headers)
    assert_problem(response, 401)


def test_unknown_paths_are_404_and_wrong_methods_405_with_allow(api: httpx.Client) -> None:
    assert_problem(api.get("/v2/nothing"), 404)
    body = assert_problem(api.get("/v1/chat"), 405)
    assert "POST" in body["detail"]
    response = api.delete("/v1/jobs/abc")
    assert_problem(response, 405)
    assert response.headers["allow"] == "GET"


def test_an_unknown_model_is_404(api: httpx.Client) -> None:
    response = api.post("/v1/chat/completions", json={"model": "gpt-9", "messages": [{"role": "user", "content": "x"}]})
    assert "gpt-9" in assert_openai_error(response, 404, "model_not_found")["message"]
