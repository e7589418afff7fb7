"""Starts and stops the local stack: Azurite, the Cosmos emulator, two simulator regions, the local
Content Safety and Language server (tools/contentsafety), the app.

`make run` runs `python -m tools.localenv run` (__main__.py); the test suite uses `LocalStack` on free ports.
Every process is started in its own process group, so stopping the stack stops its children too.
The settings are validated before anything starts (tools/appsettings.py).
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path

from tools.appsettings import EXAMPLE_SETTINGS, LOCAL_SETTINGS, ROOT, effective, file_values

NODE_BIN = ROOT / "node_modules" / ".bin"
STOP_GRACE_S = 8.0  # devhost's own grace period is 5 s; everything else stops at once
# The app's job functions, switched off as the Functions host switches one off (AzureWebJobs.<name>.Disabled),
# for an extra app that shares the stack's queue but not its tenants.
NO_JOBS = {f"AzureWebJobs.{name}.Disabled": "true" for name in ("jobs_worker", "jobs_poison", "jobs_sweep")}


@dataclass(frozen=True)
class Ports:
    """The local addresses of docs/settings.md ("Local run"); tests replace them with free ports."""

    app: int = 7071
    blob: int = 10000
    queue: int = 10001
    table: int = 10002
    cosmos: int = 8081
    sim_primary: int = 7101
    sim_secondary: int = 7102
    safety: int = 7103  # tools/contentsafety: Azure AI Content Safety and Language

    @classmethod
    def free(cls) -> Ports:
        taken: set[int] = set()
        return cls(**{f.name: free_port(taken) for f in fields(cls)})


_PICK = random.SystemRandom()
_BELOW_EPHEMERAL = 12_000  # how far below the kernel's ephemeral range free ports are looked for
_share = (0, 1)  # (index, count): this process picks only from its own part of that range


def share_ports(index: int, count: int) -> None:
    """Pick free ports only from part `index` of `count` equal parts of the range: parallel test
    processes (pytest-xdist workers) then never pick the same port in the moment between one
    finding it free and its server binding it."""
    if not 0 <= index < count:
        raise ValueError(f"port share {index} of {count} does not exist")
    global _share  # noqa: PLW0603  one setting per process, made before any stack starts
    _share = (index, count)


def port_range() -> tuple[int, int]:
    """[low, high) of the ports free_port picks from in this process."""
    high = _ephemeral_low()
    low = max(1024, high - _BELOW_EPHEMERAL)
    index, count = _share
    width = (high - low) // count
    return low + index * width, low + (index + 1) * width


def free_port(taken: set[int] | None = None) -> int:
    """A port nothing listens on now, below the kernel's ephemeral range: a port from that range
    (what binding port 0 returns) can be taken by any outgoing connection before the server that
    was meant to get it binds it, and a whole test session then fails to start. `taken` holds the
    ports already handed out for one stack, and gets this one."""
    low, high = port_range()
    for _ in range(200):
        port = _PICK.randrange(low, high)
        if (taken is None or port not in taken) and _bindable(port):
            if taken is not None:
                taken.add(port)
            return port
    raise StackError("no free local port below the ephemeral range: stop some local servers and retry")


@functools.cache
def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default; other systems pick from above it too


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def ensure_local_settings() -> Path:
    """local.settings.json is git-ignored; create it from the example when missing."""
    if not LOCAL_SETTINGS.exists():
        shutil.copyfile(EXAMPLE_SETTINGS, LOCAL_SETTINGS)
        print(f"created {LOCAL_SETTINGS.name} from {EXAMPLE_SETTINGS.name}", file=sys.stderr)
    return LOCAL_SETTINGS


class StackError(RuntimeError):
    """The stack cannot start; the message is one line saying why and what to do."""


def settings_for(ports: Ports, source: Path = EXAMPLE_SETTINGS) -> dict[str, str]:
    """The app settings of `source` with every default local address moved to `ports`."""
    values = file_values(source)
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
    # Variables that win over the settings file: `make run` passes its own environment, as Core
    # Tools would see it; tests pass nothing, so the file (moved to free ports) is all there is.
    environ: Mapping[str, str] = field(default_factory=dict)
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def settings(self) -> dict[str, str]:
        return effective(settings_for(self.ports, self.settings_source), self.environ)

    @property
    def app_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.app}"

    def sim_url(self, region: str) -> str:
        port = self.ports.sim_primary if region == "primary" else self.ports.sim_secondary
        return f"http://127.0.0.1:{port}"

    def start_dependencies(self) -> None:
        """Azurite, Cosmos emulator, both simulator regions and the safety server, each ready before this returns."""
        self.start_azurite()
        self.start_cosmos()
        self.start_simulators()
        self.start_safety()

    def start_safety(self) -> None:
        """The local Content Safety and Language server, with the key LOCAL_SECRETS holds for it."""
        port = self.ports.safety
        secrets = json.loads(self.settings.get("LOCAL_SECRETS") or "{}")
        key = secrets.get(self.settings.get("CONTENT_SAFETY_KEY_SECRET", ""), "local-safety-key")
        self._spawn("contentsafety", ports=(port,),
                    cmd=[sys.executable, "-m", "tools.contentsafety", "--host", "127.0.0.1", "--port", str(port),
                         "--key", key],
                    ready=functools.partial(_answers_200, f"http://127.0.0.1:{port}/_cs/stats"))

    def start_azurite(self) -> None:
        p = self.ports
        # --disableTelemetry: Azurite otherwise posts telemetry and, offline, waits on it for
        # seconds when it is told to stop.
        self._spawn(
            "azurite", ports=(p.blob, p.queue, p.table), cmd=
            [str(NODE_BIN / "azurite"), "--silent", "--skipApiVersionCheck", "--loose", "--disableTelemetry",
             "--blobHost", "127.0.0.1", "--blobPort", str(p.blob),
             "--queueHost", "127.0.0.1", "--queuePort", str(p.queue),
             "--tableHost", "127.0.0.1", "--tablePort", str(p.table),
             "--location", str(self.data_dir / "azurite")],
            ready=lambda: port_open(p.queue) and port_open(p.blob),
        )
        self.create_job_queues(self.settings["JOBS_QUEUE"])

    def create_job_queues(self, queue: str) -> None:
        """A jobs queue and its poison queue. The host listens on a trigger queue only once it exists
        and never creates it (in Azure the Bicep does); a producer may drop a job before anyone
        called the API. An app given a queue of its own takes no other app's jobs."""
        from azure.core.exceptions import ResourceExistsError
        from azure.storage.queue import QueueServiceClient

        service = QueueServiceClient.from_connection_string(self.settings["AzureWebJobsStorage"])
        for name in (queue, f"{queue}-poison"):
            with contextlib.suppress(ResourceExistsError):
                service.create_queue(name)

    def start_cosmos(self) -> None:
        p = self.ports
        self._spawn(
            "cosmos", ports=(p.cosmos,),
            # Our launcher, not the package CLI: it keeps connections alive, as Cosmos DB does.
            cmd=["node", str(ROOT / "tools" / "emulators" / "cosmos.js"), "--host", "127.0.0.1",
                 "--port", str(p.cosmos)],
            ready=lambda: _http_status(f"http://127.0.0.1:{p.cosmos}/") is not None,
        )

    def start_simulators(self) -> None:
        for region in ("primary", "secondary"):
            url = self.sim_url(region)
            port = url.rsplit(":", 1)[1]
            self._spawn(
                f"sim-{region}", ports=(int(port),),
                cmd=[sys.executable, "-m", "tools.simulator", "--host", "127.0.0.1", "--port", port,
                     "--region", region, "--deployments", ",".join(self._deployments_at(url))],
                ready=functools.partial(_answers_200, f"{url}/_sim/stats"),
            )

    def _deployments_at(self, url: str) -> list[str]:
        """The Azure deployments AI_ENDPOINTS sends to `url`: the simulator there serves these and
        answers any other with Azure's 404 DeploymentNotFound, as a real resource does."""
        endpoints = json.loads(self.settings.get("AI_ENDPOINTS") or "[]")
        return sorted({name for e in endpoints if str(e.get("endpoint", "")).rstrip("/") == url
                       for name in (e.get("deployment"), e.get("embedding_deployment")) if name})

    @contextlib.contextmanager
    def app_on_free_port(self, name: str, extra_env: dict[str, str], *, jobs: bool = False) -> Iterator[str]:
        """Another app process with its own settings, on a free port, stopped afterwards: its URL.
        Without `jobs` its queue and timer triggers are off (NO_JOBS): it never takes a job message
        meant for another app of the stack, whose tenants it may not know."""
        port = free_port()
        self.start_app(extra_env={**extra_env, **({} if jobs else NO_JOBS)}, name=name, port=port)
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            self.stop(name)

    def start_app(self, extra_env: dict[str, str] | None = None, *, name: str = "app",
                  port: int | None = None, use_func: bool = False,
                  console: bool = False) -> subprocess.Popen[bytes]:
        """The app on `port` (default ports.app): `func start` if asked and on PATH, else devhost.

        Settings go in as environment variables, which win over local.settings.json in both.
        """
        port = port or self.ports.app
        func = shutil.which("func") if use_func else None
        env = {**self.settings, **(extra_env or {})}
        if func:
            cmd = [func, "start", "--port", str(port)]
            env = {**env, **python_worker_env(sys.executable, env)}
        else:
            cmd = [sys.executable, "-m", "tools.devhost", "--host", "127.0.0.1", "--port", str(port)]
        return self._spawn(
            name, ports=(port,), cmd=cmd, env=env, console=console,
            ready=lambda: _http_status(f"http://127.0.0.1:{port}/api/health") == 200,
            timeout_s=90,
        )

    def stop(self, name: str | None = None, *, grace_s: float = STOP_GRACE_S) -> None:
        """Stop one process (or all): SIGTERM to every group at once, SIGKILL to those still
        running after `grace_s`, so stopping takes as long as the slowest process, not the sum."""
        names = [name] if name else list(reversed(self.procs))
        procs = [p for p in (self.procs.pop(n, None) for n in names) if p is not None and p.poll() is None]
        for proc in procs:
            _signal_group(proc, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        for proc in procs:
            try:
                proc.wait(timeout=max(deadline - time.monotonic(), 0.01))
            except subprocess.TimeoutExpired:
                _signal_group(proc, signal.SIGKILL)
                proc.wait()

    def __enter__(self) -> LocalStack:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _spawn(self, name: str, *, ports: tuple[int, ...], cmd: list[str], ready: Callable[[], bool],
               env: dict[str, str] | None = None, timeout_s: float = 60,
               console: bool = False) -> subprocess.Popen[bytes]:
        # Without this, a process that dies on a clash would look ready: its port answers, but
        # another program (often a `make run` in another terminal) is answering.
        busy = [port for port in ports if port_open(port)]
        if busy:
            self.stop()
            raise StackError(f"{name} cannot start: port {', '.join(map(str, busy))} is already in use "
                             "(is another `make run` running? stop it, or the program on that port)")
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
        where = f"see {self.data_dir / 'logs' / (name + '.log')}" if out else "see its output above"
        while not ready():
            if proc.poll() is not None:
                self.stop()
                raise StackError(f"{name} exited with code {proc.returncode} during start; {where}")
            if time.monotonic() > deadline:
                self.stop()
                raise StackError(f"{name} did not become ready within {timeout_s:.0f} s; {where}")
            time.sleep(0.2)
        return proc


def python_worker_env(python: str, environ: Mapping[str, str]) -> dict[str, str]:
    """Core Tools starts the Python worker with `languageWorkers:python:defaultExecutablePath` when
    set, else the first python3 on PATH: point both at the project's interpreter (the .venv), unless
    `environ` already chose one."""
    chosen = {
        "languageWorkers:python:defaultExecutablePath": python,  # what Core Tools reads
        "languageWorkers__python__defaultExecutablePath": python,  # the host's configuration key
        "VIRTUAL_ENV": str(Path(python).parent.parent),
    }
    env = {key: value for key, value in chosen.items() if key not in environ}
    env["PATH"] = os.pathsep.join([str(Path(python).parent), environ.get("PATH", os.environ.get("PATH", ""))])
    return env


def _signal_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


def port_open(port: int) -> bool:
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
