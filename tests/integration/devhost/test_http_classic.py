"""HTTP functions on the classic model: func.HttpRequest in, func.HttpResponse out."""

from __future__ import annotations

import uuid

import httpx

from tests.integration.devhost.conftest import Devhost, eventually, texts


def test_route_query_and_headers_reach_func_http_request(classic_host: Devhost) -> None:
    order = str(uuid.uuid4())
    response = httpx.get(f"{classic_host.url}/api/orders/{order}/lines/3?expand=1&expand=2&empty=",
                         headers={"x-custom": "yes"})
    assert response.status_code == 200
    body = response.json()
    assert body["route_params"] == {"order_id": order, "line": "3"}
    assert body["params"] == {"expand": "1,2"}  # repeated keys joined, empty values dropped, as the host does
    assert body["url"] == f"{classic_host.url}/api/orders/{order}/lines/3?expand=1&expand=2&empty="
    assert (body["method"], body["header"]) == ("GET", "yes")


def test_an_optional_route_parameter_may_be_missing(classic_host: Devhost) -> None:
    order = str(uuid.uuid4())
    assert httpx.get(f"{classic_host.url}/api/orders/{order}/lines").json()["route_params"] == {"order_id": order}
    assert httpx.get(f"{classic_host.url}/api/orders/not-a-guid/lines").status_code == 404


def test_an_unhandled_exception_answers_500_with_an_empty_body(classic_host: Devhost) -> None:
    response = httpx.get(f"{classic_host.url}/api/boom")
    assert (response.status_code, response.content) == (500, b"")
    assert "RuntimeError: secret-detail-456" in classic_host.log()


def test_the_response_and_a_queue_output_both_arrive(classic_host: Devhost) -> None:
    marker = f"echo-{uuid.uuid4()}"
    response = httpx.post(f"{classic_host.url}/api/echo", content=marker)
    assert (response.status_code, response.text, response.headers["x-echo"]) == (201, marker, "yes")
    queue = classic_host.queue("out")
    eventually(lambda: marker in texts(queue), what="the echoed message on the output queue")  # encoding none


def test_a_failed_output_write_fails_the_request_with_500(classic_host: Devhost) -> None:
    response = httpx.post(f"{classic_host.url}/api/broken-output", content="x")
    assert (response.status_code, response.content) == (500, b"")


def test_a_body_over_the_request_size_limit_gets_413(classic_host: Devhost) -> None:
    response = httpx.post(f"{classic_host.url}/api/echo", content=b"x" * 2048)
    assert (response.status_code, response.content) == (413, b"")
