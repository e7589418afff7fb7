"""Azurite and devhost processes serving the sample apps, for the devhost integration tests."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.storage.queue import QueueClient

from tools.appsettings import ROOT
from tools.localenv import LocalStack, Ports, free_port

HERE = Path(__file__).parent
T = TypeVar("T")


@dataclass
class Devhost:
    """One `python -m tools.devhost` process and what a test needs to talk to it."""

    url: str
    proc: subprocess.Popen[bytes]
    app_dir: Path
    log_path: Path
    results: Path
    connection: str
    queues: dict[str, str]

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def queue(self, role: str) -> QueueClient:
        return QueueClient.from_connection_string(self.connection, self.queues.get(role, role))

    def records(self, name: str) -> list[dict[str, Any]]:
        path = self.results / f"{name}.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=20)


def eventually(probe: Callable[[], T | None], timeout: float = 15, what: str = "condition") -> T:
    """Poll until `probe` returns something truthy."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def texts(queue: QueueClient) -> list[str]:
    """Every message text on a queue (peeked, up to 32), [] when the queue does not exist."""
    try:
        return [str(m.content) for m in queue.peek_messages(max_messages=32)]
    except ResourceNotFoundError:
        return []


def start_devhost(app: str, workdir: Path, connection: str, queues: dict[str, str],
                  env: dict[str, str] | None = None) -> Devhost:
    """Copy a sample app, give it a local.settings.json and serve it; returns once /api/health answers."""
    app_dir = workdir / "app"
    shutil.copytree(HERE / app, app_dir)
    results = workdir / "results"
    results.mkdir()
    values = {"FUNCTIONS_WORKER_RUNTIME": "python", "PYTHON_ENABLE_INIT_INDEXING": "1",
              "AzureWebJobsStorage": connection, "RESULTS_DIR": str(results),
              "BadStorage": connection.replace("AccountKey=Eby8", "AccountKey=Xby8"),
              "GREETING": "from-local-settings", "SECRET_TOKEN": "file-secret-value", "TICK_SCHEDULE": "*/1 * * * * *",
              **{f"{role.upper()}_QUEUE": name for role, name in queues.items()}}
    (app_dir / "local.settings.json").write_text(json.dumps({"IsEncrypted": False, "Values": values}))
    port = free_port()
    log_path = workdir / "devhost.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tools.devhost", "--host", "127.0.0.1", "--port", str(port),
             "--script-root", str(app_dir)],
            cwd=ROOT, env={**os.environ, **(env or {})}, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    host = Devhost(f"http://127.0.0.1:{port}", proc, app_dir, log_path, results, connection, queues)

    def healthy() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"devhost exited with {proc.returncode}:\n{host.log()}")
        try:
            return httpx.get(f"{host.url}/api/health", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    eventually(healthy, timeout=30, what="devhost to serve /api/health")
    return host


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Azurite on free ports; yields its connection string."""
    stack = LocalStack(ports=Ports.free(), data_dir=tmp_path_factory.mktemp("azurite"), log_to_files=True)
    try:
        stack.start_azurite()
        yield stack.settings["AzureWebJobsStorage"]
    finally:
        stack.stop()


def _serve(app: str, tag: str, azurite: str, tmp: pytest.TempPathFactory,
           env: dict[str, str] | None = None) -> Iterator[Devhost]:
    queues = {role: f"{role}-{tag}" for role in ("out", "work", "done", "fail", "slow")}
    for role in ("work", "fail", "slow"):  # the host never creates a trigger's queue (infra or producers do)
        with contextlib.suppress(ResourceExistsError):
            QueueClient.from_connection_string(azurite, queues[role]).create_queue()
    host = start_devhost(app, tmp.mktemp(tag), azurite, queues, env)
    yield host
    host.stop()


@pytest.fixture(scope="session")
def streams_host(azurite: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Devhost]:
    """sample_app (HTTP streams, base64 queues), with GREETING and SECRET_TOKEN also in the environment."""
    yield from _serve("sample_app", "b64", azurite, tmp_path_factory,
                      {"GREETING": "from-environment", "SECRET_TOKEN": "env-secret-value"})


@pytest.fixture(scope="session")
def plain_host(azurite: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Devhost]:
    """sample_app again, switched to messageEncoding none through an app setting (as the host allows)."""
    yield from _serve("sample_app", "plain", azurite, tmp_path_factory,
                      {"AzureFunctionsJobHost__extensions__queues__messageEncoding": "none",
                       "AzureWebJobsDisableHomepage": "True"})


@pytest.fixture(scope="session")
def classic_host(azurite: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Devhost]:
    """classic_app (func.HttpRequest/HttpResponse) with a 1 KiB request body limit."""
    yield from _serve("classic_app", "classic", azurite, tmp_path_factory,
                      {"FUNCTIONS_REQUEST_BODY_SIZE_LIMIT": "1024"})
