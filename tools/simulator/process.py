"""Runs the simulator as a child process on a free port, for tests, benchmarks and scripts."""

from __future__ import annotations

import http.client
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Self

REPO_ROOT = Path(__file__).resolve().parents[2]


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


class SimulatorProcess:
    """`python -m tools.simulator` exactly as a user starts it; a context manager that waits for it.

    Output goes to a file rather than a pipe, since a pipe nobody reads would block the server.
    """

    def __init__(
        self, *args: str, port: int | None = None, log_path: Path | None = None, startup_timeout_s: float = 15.0
    ) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._args = args
        self._startup_timeout_s = startup_timeout_s
        self._process: subprocess.Popen[bytes] | None = None
        # A log we chose the place of is ours to delete; one the caller placed is theirs to keep.
        self._owns_log = log_path is None
        self.log_path = log_path or Path(tempfile.mkstemp(prefix="simulator-", suffix=".log")[1])

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()
        if self._owns_log and exc_type is None:  # kept when something failed, to read why
            self.log_path.unlink(missing_ok=True)

    @property
    def process(self) -> subprocess.Popen[bytes]:
        if self._process is None:
            raise RuntimeError("the simulator is not started")
        return self._process

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def start(self) -> None:
        with self.log_path.open("wb") as sink:
            # S603 does not apply: the argv is our own interpreter and module, and there is no shell.
            self._process = subprocess.Popen(  # noqa: S603
                [sys.executable, "-m", "tools.simulator", "--port", str(self.port), *self._args],
                cwd=REPO_ROOT,
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + self._startup_timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"simulator exited with {self.process.returncode}:\n{self.log()}")
            if self._answers():
                return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"simulator did not answer within {self._startup_timeout_s} s:\n{self.log()}")

    def stop(self, timeout_s: float = 10.0) -> int:
        """Ask the server to stop (SIGTERM, as Ctrl-C would), killing it only if it will not."""
        if self.process.poll() is not None:
            return self.process.returncode
        self.process.terminate()
        try:
            return self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()

    def _answers(self) -> bool:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=1)
        try:
            connection.request("GET", "/_sim/stats")
            return connection.getresponse().status == 200
        except OSError:
            return False
        finally:
            connection.close()
