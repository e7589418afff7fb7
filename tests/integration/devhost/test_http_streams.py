"""HTTP functions on the FastAPI (HTTP streams) model, served by the devhost as the host would."""

from __future__ import annotations

import threading
import time

import httpx

from tests.integration.devhost.conftest import Devhost

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def test_route_parameters_reach_request_path_params_as_strings(streams_host: Devhost) -> None:
    response = httpx.get(f"{streams_host.url}/api/items/42")
    assert response.status_code == 200
    body = response.json()
    assert body["path_params"] == {"id": "42"}
    # Behind the host's proxy the worker sees its own address in Host and the caller's in X-Forwarded-Host.
    assert body["forwarded_host"] == streams_host.url.removeprefix("http://")
    assert body["host"] != body["forwarded_host"]
    assert body["invocation_header"]


def test_a_value_failing_the_route_constraint_gets_a_bare_404(streams_host: Devhost) -> None:
    response = httpx.get(f"{streams_host.url}/api/items/abc")
    assert (response.status_code, response.content) == (404, b"")


def test_a_method_the_function_does_not_accept_gets_a_bare_404(streams_host: Devhost) -> None:
    response = httpx.post(f"{streams_host.url}/api/health")
    assert (response.status_code, response.content) == (404, b"")


def test_a_catch_all_named_to_sort_last_only_gets_unmatched_requests(streams_host: Devhost) -> None:
    assert httpx.get(f"{streams_host.url}/api/v1/ping").json() == {"pong": True}
    unmatched = httpx.get(f"{streams_host.url}/api/v1/no/such/thing")
    assert (unmatched.status_code, unmatched.json()) == (404, {"fallback": "no/such/thing"})
    wrong_method = httpx.delete(f"{streams_host.url}/api/v1/ping")
    assert wrong_method.json() == {"fallback": "ping"}


def test_a_catch_all_that_sorts_first_takes_later_routes_as_on_the_host(streams_host: Devhost) -> None:
    response = httpx.get(f"{streams_host.url}/api/legacy/exact")
    assert response.json()["handled_by"] == "a_legacy"
    log = streams_host.log()
    assert "Function 'a_legacy' (route 'legacy/{*rest}') takes requests meant for 'b_legacy_exact'" in log


def test_streamed_chunks_arrive_as_the_function_produces_them(streams_host: Devhost) -> None:
    with httpx.stream("GET", f"{streams_host.url}/api/stream", timeout=10) as response:
        chunks = response.iter_text()
        started = time.monotonic()
        first = next(chunks)
        # The generator is still waiting for the release below, so this chunk was not buffered.
        assert first == "first\n"
        assert time.monotonic() - started < 5
        assert httpx.post(f"{streams_host.url}/api/stream/release").status_code == 200
        assert "".join(chunks) == "second\n"


def test_an_unhandled_exception_answers_500_without_details_and_logs_the_traceback(streams_host: Devhost) -> None:
    response = httpx.get(f"{streams_host.url}/api/boom")
    assert response.status_code == 500
    assert b"secret-detail" not in response.content  # FastAPI in the worker answers "Internal Server Error"
    log = streams_host.log()
    assert "Executed 'Functions.boom' (Failed" in log
    assert "RuntimeError: secret-detail-123" in log and "Traceback" in log


def test_sync_functions_run_in_the_worker_thread_pool_with_a_context(streams_host: Devhost) -> None:
    body = httpx.get(f"{streams_host.url}/api/sync", headers={"traceparent": TRACEPARENT}).json()
    assert body["thread"].startswith("devhost-sync")
    assert body["function_name"] == "sync_info"
    assert body["function_directory"] == str(streams_host.app_dir)
    assert body["thread_local_invocation_id"] == body["invocation_id"]
    _, trace_id, span_id, flags = body["traceparent"].split("-")
    assert (trace_id, flags) == ("0af7651916cd43dd8448eb211c80319c", "01")
    assert span_id != "b7ad6b7169203331"  # the invocation is a child span of the caller's


def test_concurrent_requests_are_served_concurrently(streams_host: Devhost) -> None:
    results: list[int] = []

    def hold_stream() -> None:
        with httpx.stream("GET", f"{streams_host.url}/api/stream", timeout=10) as response:
            results.append(response.status_code)
            next(response.iter_text())
            time.sleep(0.5)

    holder = threading.Thread(target=hold_stream)
    holder.start()
    time.sleep(0.2)
    assert httpx.get(f"{streams_host.url}/api/health", timeout=2).status_code == 200  # not stuck behind the stream
    httpx.post(f"{streams_host.url}/api/stream/release")
    holder.join(10)
    assert results == [200]


def test_environment_variables_win_over_local_settings_and_secrets_stay_out_of_the_log(streams_host: Devhost) -> None:
    assert httpx.get(f"{streams_host.url}/api/health").json()["greeting"] == "from-environment"
    log = streams_host.log()
    assert "Skipping 'SECRET_TOKEN' from local settings" in log
    assert "secret-value" not in log
