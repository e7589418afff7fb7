"""What the overhead bench reads from processes: CPU and RSS of a process tree, one load phase, start-up times."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psutil

from bench.loadgen import MODEL, LoadResult, LoadSpec
from tools.appsettings import ROOT


class BenchError(RuntimeError):
    """A phase could not be measured; the message says which and why."""


def tree(pid: int) -> list[psutil.Process]:
    """The process and its descendants (devhost or LiteLLM may spawn workers)."""
    root = psutil.Process(pid)
    return [root, *root.children(recursive=True)]


def cpu_ms(pid: int) -> float:
    """User + system CPU of the tree so far, including children it has already reaped."""
    total = 0.0
    for proc in tree(pid):
        try:
            t = proc.cpu_times()
        except psutil.NoSuchProcess:
            continue  # a child that ended between listing and reading
        total += t.user + t.system + t.children_user + t.children_system
    return total * 1000


def idle_cpu_ms_per_s(pid: int, seconds: float = 2.0) -> float:
    """CPU the process tree spends with no request in flight (pollers, timers): the floor under `gw cpu`."""
    before = cpu_ms(pid)
    time.sleep(seconds)
    return (cpu_ms(pid) - before) / seconds


def rss_mb(pid: int) -> float:
    total = 0
    for proc in tree(pid):
        try:
            total += proc.memory_info().rss
        except psutil.NoSuchProcess:
            continue
    return total / 2**20


@dataclass(frozen=True)
class Phase:
    """One timed phase: the load generator's result and the CPU ms each watched process spent in it."""

    result: LoadResult
    cpu_ms: dict[str, float]


def run_phase(spec: LoadSpec, watch: dict[str, int], at_start: Callable[[], object] = lambda: None) -> Phase:
    """The load generator in its own process; CPU is read (and `at_start` called) after its warm-up,
    and read again right after its last answer."""
    cmd = [sys.executable, "-m", "bench.loadgen", spec.to_json()]
    with subprocess.Popen(cmd, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) as proc:
        assert proc.stdin is not None and proc.stdout is not None
        if proc.stdout.readline().strip() != "ready":
            proc.kill()
            raise BenchError(f"the load generator did not finish its warm-up against {spec.url}")
        before = {name: cpu_ms(pid) for name, pid in watch.items()}
        at_start()
        proc.stdin.write("go\n")
        proc.stdin.flush()
        line = proc.stdout.readline()
        after = {name: cpu_ms(pid) for name, pid in watch.items()}
    if proc.returncode != 0 or not line:
        raise BenchError(f"the load generator failed against {spec.url} (exit {proc.returncode})")
    return Phase(LoadResult.from_json(line), {name: after[name] - before[name] for name in watch})


def import_time_s(runs: int, env: dict[str, str]) -> tuple[float, float]:
    """Median over fresh interpreters of `import function_app` alone, and of the whole process."""
    code = "import time; t = time.perf_counter(); import function_app; print(time.perf_counter() - t)"
    inner, outer = [], []
    for _ in range(runs):
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env={**os.environ, **env},
                              capture_output=True, text=True, check=False)
        outer.append(time.perf_counter() - started)
        if done.returncode != 0:
            raise BenchError("`import function_app` failed: " + (done.stderr.strip().splitlines() or ["?"])[-1])
        inner.append(float(done.stdout.strip().splitlines()[-1]))
    return statistics.median(inner), statistics.median(outer)


FIRST_QUESTION = [{"role": "user", "content": "Is the harbour office open?"}]


def first_answer(url: str, api_key: str, started: float, gave_up: Callable[[], bool], *, limit_s: float = 120,
                 body: dict[str, Any] | None = None) -> float:
    """Seconds from `started` until a real chat completion (`body`, by default an OpenAI one) is
    answered 200 (polled every 20 ms)."""
    payload = json.dumps(body or {"model": MODEL, "max_tokens": 16, "messages": FIRST_QUESTION}).encode()
    request = urllib.request.Request(url, data=payload, method="POST", headers={  # noqa: S310  loopback
        "authorization": f"Bearer {api_key}", "content-type": "application/json"})
    while time.monotonic() - started < limit_s and not gave_up():
        try:
            with urllib.request.urlopen(request, timeout=limit_s) as resp:  # noqa: S310  loopback
                if resp.status == 200:
                    return time.monotonic() - started
        except (urllib.error.URLError, OSError):
            pass  # not listening or not ready yet
        time.sleep(0.02)
    raise BenchError(f"no answer from {url} within {limit_s:.0f} s of the start")
