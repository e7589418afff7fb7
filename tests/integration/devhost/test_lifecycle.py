"""Start-up output and a clean stop on SIGTERM."""

from __future__ import annotations

import re
import signal
import threading

import httpx
import pytest

from tests.integration.devhost.conftest import Devhost, eventually, start_devhost


def test_startup_lists_every_function_with_its_route_or_queue(classic_host: Devhost) -> None:
    log = classic_host.log()
    assert f"echo: [POST] {classic_host.url}/api/echo" in log
    assert f"order_line: [GET] {classic_host.url}/api/orders/{{order_id:guid}}/lines/{{line:int?}}" in log
    assert "HTTP model: classic" in log


def test_sigterm_lets_an_in_flight_request_finish_then_exits_cleanly(
        azurite: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    host = start_devhost("classic_app", tmp_path_factory.mktemp("stop"), azurite, {"out": "out-stop"})
    answers: list[httpx.Response] = []
    request = threading.Thread(target=lambda: answers.append(httpx.get(f"{host.url}/api/slow", timeout=10)))
    request.start()
    eventually(lambda: re.search(r"Executing 'Functions\.slow'", host.log()), what="the slow request to start")
    host.proc.send_signal(signal.SIGTERM)
    request.join(10)
    assert host.proc.wait(timeout=15) == 0
    assert [(a.status_code, a.text) for a in answers] == [(200, "finished")]
    assert "Host stopped." in host.log()


def test_a_bad_app_setting_stops_the_start_with_a_clear_message(
        azurite: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    with pytest.raises(AssertionError, match=r"'echo' function is in error: '%OUT_QUEUE%' does not resolve"):
        start_devhost("classic_app", tmp_path_factory.mktemp("bad"), azurite, {})
