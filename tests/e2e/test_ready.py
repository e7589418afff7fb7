"""/api/ready is not an amplifier: probes per refresh period, not per call; details only for admins."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from tests.conftest import ADMIN_KEY, DEV_KEY, TEST_TENANTS
from tests.e2e.conftest import assert_problem
from tools.localenv import LocalStack, free_port

pytestmark = pytest.mark.e2e


class CountingServer(ThreadingHTTPServer):
    """A stand-in model endpoint that counts the GETs readiness sends it."""

    def __init__(self) -> None:
        self.gets = 0
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: CountingServer

    def do_GET(self) -> None:
        with self.server.lock:
            self.server.gets += 1
        self.send_response(404)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def counter() -> Iterator[CountingServer]:
    server = CountingServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def start(stack: LocalStack, name: str, env: dict[str, str]) -> str:
    port = free_port()
    stack.start_app(extra_env={"TENANTS": TEST_TENANTS, **env}, name=name, port=port)
    return f"http://127.0.0.1:{port}/api"


def test_many_ready_calls_cause_one_probe_per_period(stack: LocalStack, counter: CountingServer) -> None:
    endpoints = json.loads(stack.settings["AI_ENDPOINTS"])
    endpoints.append({"name": "counted", "kind": "openai", "endpoint": f"http://127.0.0.1:{counter.server_port}",
                      "model": "gpt-4o-mini", "priority": 9, "api_key_secret": "sim-api-key"})
    # A period far longer than the test: every call after the first is served from its result.
    url = start(stack, "ready-app", {"AI_ENDPOINTS": json.dumps(endpoints), "READY_REFRESH_S": "3600"})
    try:
        with httpx.Client(base_url=url, timeout=30) as client:
            def call(i: int) -> httpx.Response:
                return client.get("/ready", headers={"x-api-key": ADMIN_KEY} if i % 2 else {})

            with ThreadPoolExecutor(8) as pool:
                responses = list(pool.map(call, range(60)))
    finally:
        stack.stop("ready-app")
    assert all(r.status_code == 200 for r in responses), responses[0].text
    assert counter.gets == 1, f"{counter.gets} probes for {len(responses)} calls"
    anonymous, admin = responses[0].json(), responses[1].json()
    assert anonymous == {"status": "ready"}
    assert admin["checks"]["model:counted"] == "ok" and admin["checks"]["cosmos"] == "ok"


def test_bad_settings_are_named_to_everyone_without_their_values(stack: LocalStack) -> None:
    secret_looking = "https://do-not-echo.example.invalid/?sig=not-for-clients"
    bad = json.dumps([{"name": "x", "kind": "bogus", "endpoint": secret_looking, "model": "m"}])
    url = start(stack, "misconfigured-app", {"AI_ENDPOINTS": bad, "READY_REFRESH_S": "zero"})
    try:
        for headers in ({}, {"x-api-key": DEV_KEY}, {"x-api-key": ADMIN_KEY}):
            response = httpx.get(f"{url}/ready", headers=headers, timeout=30)
            body = assert_problem(response, 503)
            assert body["invalid_settings"] == ["AI_ENDPOINTS", "READY_REFRESH_S"]
            assert "AI_ENDPOINTS" in body["detail"] and "do-not-echo" not in response.text
            assert "zero" not in response.text and response.headers["retry-after"]
        chat = httpx.post(f"{url}/v1/chat", headers={"x-api-key": DEV_KEY}, timeout=30,
                          json={"messages": [{"role": "user", "content": "x"}]})
        assert "do-not-echo" not in assert_problem(chat, 503)["detail"]
    finally:
        stack.stop("misconfigured-app")


def test_a_setting_that_is_not_json_is_named_too(stack: LocalStack) -> None:
    url = start(stack, "not-json-app", {"AI_ENDPOINTS": "[{not json, key=s3cr3t"})
    try:
        response = httpx.get(f"{url}/ready", timeout=30)
    finally:
        stack.stop("not-json-app")
    body = assert_problem(response, 503)
    assert body["invalid_settings"] == ["AI_ENDPOINTS"] and "s3cr3t" not in response.text
