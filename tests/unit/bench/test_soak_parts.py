"""The soak bench's parts its figures rest on: the growth fit, the requests it sends, devhost's memory snapshots."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import tracemalloc
from pathlib import Path

import pytest

from bench.soak import KINDS, fit, request_for
from tools.appsettings import ROOT
from tools.devhost.__main__ import _watch_memory


def test_the_fit_is_the_least_squares_slope() -> None:
    assert fit([(0, 10.0), (1, 12.0), (2, 14.0)]) == pytest.approx(2.0)
    assert fit([(5, 100.0), (6, 101.0), (7, 99.0), (8, 100.0)]) == pytest.approx(-0.2)
    assert fit([(1, 5.0)]) == 0.0


def test_every_kind_but_the_hit_sends_a_new_prompt() -> None:
    bodies = {kind: [json.dumps(request_for(kind, "run", n)) for n in (1, 2)] for kind in KINDS}
    assert bodies["hit"][0] == bodies["hit"][1]
    assert all(first != second for kind, (first, second) in bodies.items() if kind != "hit")
    assert request_for("native", "run", 1)[0] == "/api/v1/chat"
    assert request_for("embed", "run", 1)[0] == "/api/v1/embeddings"
    assert request_for("abandon", "run", 1)[1]["stream"] is True


# In a process of its own: tracing and counting every live object of a pytest process that has run a
# few hundred tests (a pytest-xdist worker) took 50 s; in devhost's own process it takes a second.
SIGNALLED = """
import os, signal, sys
from tools.appsettings import ROOT
from tools.devhost.__main__ import _watch_memory
_watch_memory(sys.argv[1], trace=True)
kept = [[0.0] * 100]  # a container of 64 or more items, alive across both signals
os.kill(os.getpid(), signal.SIGUSR1)  # starts tracing
os.kill(os.getpid(), signal.SIGUSR1)
print(f"list@{id(kept[0]):x}")
"""


def test_devhost_writes_a_memory_snapshot_on_each_signal_only_when_asked(tmp_path: Path) -> None:
    before = signal.getsignal(signal.SIGUSR1)
    _watch_memory(None, trace=True)
    assert signal.getsignal(signal.SIGUSR1) == before, "no setting, no handler"
    child = subprocess.run([sys.executable, "-c", SIGNALLED, str(tmp_path)], cwd=ROOT, capture_output=True,
                           text=True, timeout=120, check=True)
    first = json.loads((tmp_path / "1.types.json").read_text())
    assert first["types"]["builtins.list"] > 0
    assert first["heap"]["in_use"] > 0  # glibc here; empty where there is no mallinfo2
    assert first["sizes"][child.stdout.strip()] == 100
    assert not (tmp_path / "1.snap").exists() and (tmp_path / "2.snap").exists()
    assert tracemalloc.Snapshot.load(str(tmp_path / "2.snap")).traces is not None
