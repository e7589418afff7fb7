"""Starts and stops the local stack: Azurite, the Cosmos emulator, two simulator regions, the app.

`make run` runs `python -m tools.localenv run`; the test suite uses `LocalStack` on free ports.
Every process is started in its own process group, so stopping the stack stops its children too.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, fields
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NODE_BIN = ROOT / "node_modules" / ".bin"
EXAMPLE_SETTINGS = ROOT / "local.settings.example.json"
LOCAL_SETTINGS = ROOT / "local.settings.json"


@dataclass(frozen=True)
class Ports:
    """The local addresses of DESIGN.md ("Local run"); tests replace them with free ports."""

    app: int = 7071
    blob: int = 10000
    queue: int = 10001
    table: int = 10002
    cosmos: int = 8081
    sim_primary: int = 7101
    sim_secondary: int = 7102

    @classmethod
    def free(cls) -> Ports:
        return cls(**{f.name: free_port() for f in fields(cls)})


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def ensure_local_settings() -> Path:
    """local.settings.json is git-ignored; create it from the example when missing."""
    if not LOCAL_SETTINGS.exists():
        shutil.copyfile(EXAMPLE_SETTINGS, LOCAL_SETTINGS)
        print(f"created {LOCAL_SETTINGS.name} from {EXAMPLE_SETTINGS.name}", file=sys.stderr)
    return LOCAL_SETTINGS


def settings_for(ports: Ports, source: Path = EXAMPLE_SETTINGS) -> dict[str, str]:
    """The app settings of `source` with every default local address moved to `ports`."""
    values: dict[str, str] = json.loads(source.read_text())["Values"]
    default = Ports()
    moves = {
        f"127.0.0.1:{getattr(default, f.name)}": f"127.0.0.1:{getattr(ports, f.name)}"
        for f in fields(Ports)
    }
    moved = {}
    for key, value in values.items():
        text = value
        for old, new in moves.items():
            text = text.replace(old, new)
        moved[key] = text
    return moved


@dataclass
class LocalStack:
    """The emulators, simulators and (optionally) the app, each a child process."""

    ports: Ports = field(default_factory=Ports)
    data_dir: Path = ROOT / ".local"
    settings_source: Path = EXAMPLE_SETTINGS
    log_to_files: bool = False
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def settings(self) -> dict[str, str]:
        return settings_for(self.ports, self.settings_source)

    @property
    def app_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.app}"

    def sim_url(self, region: str) -> str:
        port = self.ports.sim_primary if region == "primary" else self.ports.sim_secondary
        return f"http://127.0.0.1:{port}"

    def start_dependencies(self) -> None:
        """Azurite, Cosmos emulator and both simulator regions, each ready before this returns."""
        self.start_azurite()
        self.start_cosmos()
        self.start_simulators()

    def start_azurite(self) -> None:
        p = self.ports
        self._spawn(
            "azurite",
            [str(NODE_BIN / "azurite"), "--silent", "--skipApiVersionCheck", "--loose",
             "--blobHost", "127.0.0.1", "--blobPort", str(p.blob),
             "--queueHost", "127.0.0.1", "--queuePort", str(p.queue),
             "--tableHost", "127.0.0.1", "--tablePort", str(p.table),
             "--location", str(self.data_dir / "azurite")],
            ready=lambda: _tcp_open(p.queue) and _tcp_open(p.blob),
        )
        self._create_job_queues()

    def _create_job_queues(self) -> None:
        """The host listens on a trigger queue only once it exists and never creates it (in Azure
        the Bicep does); a producer may drop a job before anyone called the API."""
        from azure.core.exceptions import ResourceExistsError
        from azure.storage.queue import QueueServiceClient

        settings = self.settings
        service = QueueServiceClient.from_connection_string(settings["AzureWebJobsStorage"])
        for name in (settings["JOBS_QUEUE"], f"{settings['JOBS_QUEUE']}-poison"):
            with contextlib.suppress(ResourceExistsError):
                service.create_queue(name)

    def start_cosmos(self) -> None:
        p = self.ports
        self._spawn(
            "cosmos",
            [str(NODE_BIN / "cosmosdb-server"), "--no-ssl", "--host", "127.0.0.1", "--port", str(p.cosmos)],
            ready=lambda: _http_status(f"http://127.0.0.1:{p.cosmos}/") is not None,
        )

    def start_simulators(self) -> None:
        for region in ("primary", "secondary"):
            url = self.sim_url(region)
            self._spawn(
                f"sim-{region}",
                [sys.executable, "-m", "tools.simulator", "--host", "127.0.0.1",
                 "--port", url.rsplit(":", 1)[1], "--region", region],
                ready=functools.partial(_answers_200, f"{url}/_sim/stats"),
            )

    def start_app(self, extra_env: dict[str, str] | None = None, *, name: str = "app",
                  port: int | None = None, use_func: bool = False,
                  console: bool = False) -> subprocess.Popen[bytes]:
        """The app on `port` (default ports.app): `func start` if asked and on PATH, else devhost.

        Settings go in as environment variables, which win over local.settings.json in both.
        """
        port = port or self.ports.app
        func = shutil.which("func") if use_func else None
        if func:
            cmd = [func, "start", "--port", str(port)]
        else:
            cmd = [sys.executable, "-m", "tools.devhost", "--host", "127.0.0.1", "--port", str(port)]
        return self._spawn(
            name, cmd, env={**self.settings, **(extra_env or {})}, console=console,
            ready=lambda: _http_status(f"http://127.0.0.1:{port}/api/health") == 200,
            timeout_s=90,
        )

    def stop(self, name: str | None = None) -> None:
        """Stop one process (or all, newest first): SIGTERM to its group, SIGKILL after 10 s."""
        names = [name] if name else list(reversed(self.procs))
        for n in names:
            proc = self.procs.pop(n, None)
            if proc is None or proc.poll() is not None:
                continue
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()

    def __enter__(self) -> LocalStack:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _spawn(self, name: str, cmd: list[str], *, ready: Callable[[], bool],
               env: dict[str, str] | None = None, timeout_s: float = 60,
               console: bool = False) -> subprocess.Popen[bytes]:
        out: int | object = None
        if self.log_to_files and not console:
            (self.data_dir / "logs").mkdir(parents=True, exist_ok=True)
            out = open(self.data_dir / "logs" / f"{name}.log", "ab")  # noqa: SIM115  closed with the process
        self.data_dir.mkdir(parents=True, exist_ok=True)
        proc = subprocess.Popen(  # noqa: S603  fixed argv of our own tools
            cmd, cwd=ROOT, env={**os.environ, **(env or {})}, start_new_session=True,
            stdout=out, stderr=subprocess.STDOUT if out else None,  # type: ignore[arg-type]
        )
        self.procs[name] = proc
        deadline = time.monotonic() + timeout_s
        while not ready():
            if proc.poll() is not None:
                self.stop()
                raise RuntimeError(f"{name} exited with code {proc.returncode} during start; see its log")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{name} did not become ready within {timeout_s:.0f} s")
            time.sleep(0.2)
        return proc


def _tcp_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _answers_200(url: str) -> bool:
    return _http_status(url) == 200


def _http_status(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310  loopback only
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except (OSError, ValueError):
        return None


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


@contextlib.contextmanager
def _interrupts_stop(stack: LocalStack) -> Iterator[None]:
    # Installed explicitly: a process started with SIGINT ignored (as a background job is) would
    # otherwise never see Ctrl-C, and SIGTERM from a supervisor must stop the stack too.
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    except KeyboardInterrupt:
        pass
    finally:
        # Stop first: the terminal (or a pipe) may already be gone, and a failed print must not
        # leave the emulators running.
        stack.stop()
        with contextlib.suppress(OSError):
            print("\nthe local stack has stopped", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.localenv", description=__doc__)
    parser.add_argument("command", choices=["run", "deps"],
                        help="run: the whole stack and the app; deps: emulators and simulators only")
    args = parser.parse_args(argv)
    settings_file = ensure_local_settings()
    stack = LocalStack(settings_source=settings_file, log_to_files=True)
    with _interrupts_stop(stack):
        stack.start_dependencies()
        print(f"Azurite    127.0.0.1:{stack.ports.blob}-{stack.ports.table}", file=sys.stderr)
        print(f"Cosmos     http://127.0.0.1:{stack.ports.cosmos}", file=sys.stderr)
        print(f"simulators {stack.sim_url('primary')} (primary), {stack.sim_url('secondary')} (secondary)",
              file=sys.stderr)
        print(f"logs       {stack.data_dir / 'logs'}", file=sys.stderr)
        if args.command == "run":
            app = stack.start_app(use_func=True, console=True)
            print(f"app        {stack.app_url}/api  (Ctrl-C stops everything)", file=sys.stderr)
            app.wait()
            print(f"the app exited with code {app.returncode}", file=sys.stderr)
            return app.returncode or 1
        print("dependencies up (Ctrl-C stops them)", file=sys.stderr)
        while True:
            time.sleep(3600)
    return 0


if __name__ == "__main__":
    sys.exit(main())
