"""`make run`'s start: environment variables win over local.settings.json, and a port clash is
reported instead of addresses printed as if the dependencies had started."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import httpx
import pytest

from tests.conftest import DEV_KEY
from tools.localenv import LocalStack, Ports, StackError, free_port


def test_an_environment_variable_wins_over_local_settings(stack: LocalStack, tmp_path: Path) -> None:
    # What `AI_ENDPOINTS=... make run` does: the process environment overlays the settings file.
    endpoints = json.dumps([{"name": "mine", "kind": "azure_openai", "endpoint": stack.sim_url("primary"),
                             "deployment": "chat", "model": "my-model", "priority": 0,
                             "api_key_secret": "sim-api-key"}])
    prices = json.dumps({"my-model": {"input_per_1m": 0, "output_per_1m": 0}})
    local = LocalStack(ports=stack.ports, data_dir=tmp_path, environ={"AI_ENDPOINTS": endpoints,
                                                                      "MODEL_PRICES": prices})
    port = free_port()
    local.start_app(port=port)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}/api/v1", headers={"x-api-key": DEV_KEY},
                          timeout=30) as client:
            body = {"messages": [{"role": "user", "content": "Hello!"}], "max_tokens": 5}
            assert client.post("/chat/completions", json={**body, "model": "my-model"}).status_code == 200
            # The file's endpoints are gone: the environment replaced AI_ENDPOINTS, not merged it.
            assert client.post("/chat/completions", json={**body, "model": "gpt-4o-mini"}).status_code == 404
    finally:
        local.stop()


def test_a_second_stack_on_the_same_ports_says_the_port_is_in_use(stack: LocalStack, tmp_path: Path) -> None:
    second = LocalStack(ports=stack.ports, data_dir=tmp_path)
    try:
        with pytest.raises(StackError) as err:
            second.start_dependencies()
    finally:
        second.stop()  # should the check ever be missing, leave nothing running
    ports = f"{stack.ports.blob}, {stack.ports.queue}, {stack.ports.table}"
    assert str(err.value) == (f"azurite cannot start: port {ports} "
                              "is already in use (is another `make run` running? stop it, or the program on that port)")


def test_stopping_the_stack_needs_no_sigkill(tmp_path: Path) -> None:
    # Ctrl-C must be quick: every process leaves on SIGTERM within the grace period (Azurite with
    # telemetry on waited for the network and was killed 10 s later).
    local = LocalStack(ports=Ports.free(), data_dir=tmp_path, log_to_files=True)
    try:
        local.start_dependencies()
        procs = dict(local.procs)
    finally:
        local.stop()
    assert {name: proc.returncode for name, proc in procs.items() if proc.returncode == -signal.SIGKILL} == {}
