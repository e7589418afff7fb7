"""The LiteLLM proxy as the overhead bench's peer: its own venv under .local/, its config, its process.

LiteLLM is never a dependency of the app: it is installed here, once, into `.local/bench-litellm/`
(pinned), and reused while the pin is unchanged.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import subprocess
import sys
import venv
from collections.abc import Iterator
from pathlib import Path

from tools.localenv import LocalStack, StackError, free_port
from tools.localenv import _http_status as http_status

PIN = "litellm[proxy]==1.106.2"
VENV = Path(".local") / "bench-litellm"
MODEL = "gpt-4o-mini"


class PeerUnavailable(RuntimeError):
    """LiteLLM cannot run here; the message says why in one line."""


def install(root: Path) -> Path:
    """The venv's `litellm` executable, installing the pin first if this venv lacks it."""
    home = root / VENV
    marker = home / f".installed-{PIN.replace('[', '_').replace(']', '_')}"
    exe = home / "bin" / "litellm"
    if marker.exists() and exe.exists():
        return exe
    print(f"installing {PIN} into {home} (once; this may take minutes)...", file=sys.stderr, flush=True)
    if not (home / "bin" / "python").exists():
        venv.EnvBuilder(with_pip=True).create(home)
    cmd = [str(home / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check",
           "--progress-bar", "off", PIN]
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as proc:
        assert proc.stdout is not None
        tail: list[str] = []
        for line in proc.stdout:  # pip's "Collecting ..." lines are the progress
            if line.startswith(("Collecting", "Installing", "Successfully", "ERROR")):
                print(f"  pip: {line.rstrip()}", file=sys.stderr, flush=True)
            tail = [*tail[-4:], line.rstrip()]
    if proc.returncode != 0 or not exe.exists():
        last = next((line for line in reversed(tail) if line.strip()), "no output")
        raise PeerUnavailable(f"pip could not install {PIN} (exit {proc.returncode}): {last}")
    marker.write_text(PIN + "\n")
    return exe


def config(stub_url: str, master_key: str, *, cache: bool) -> dict[str, object]:
    """One model pointing at the stub; the master key LiteLLM insists on; its in-memory cache if asked."""
    settings: dict[str, object] = {"cache": True, "cache_params": {"type": "local"}} if cache else {}
    return {
        "model_list": [{"model_name": MODEL, "litellm_params": {
            "model": f"openai/{MODEL}", "api_base": f"{stub_url}/v1", "api_key": "stub-key"}}],
        "litellm_settings": settings,
        "general_settings": {"master_key": master_key},
    }


@contextlib.contextmanager
def running(procs: LocalStack, exe: Path, stub_url: str, data_dir: Path, *,
            cache: bool) -> Iterator[tuple[str, str, subprocess.Popen[bytes]]]:
    """LiteLLM with one worker and no database: (base URL, master key, process), stopped afterwards."""
    name = "litellm-cache" if cache else "litellm"
    key = f"sk-bench-{secrets.token_hex(16)}"
    path = data_dir / f"{name}.yaml"
    path.write_text(json.dumps(config(stub_url, key, cache=cache), indent=2))  # JSON is YAML
    port = free_port()
    # Offline: the price list ships in the package; without this LiteLLM retries a download at start.
    env = {"LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_LOG": "ERROR"}
    cmd = [str(exe), "--config", str(path), "--host", "127.0.0.1", "--port", str(port), "--num_workers", "1"]
    try:
        proc = procs._spawn(name, ports=(port,), cmd=cmd, env=env, timeout_s=180,
                            ready=lambda: http_status(f"http://127.0.0.1:{port}/health/liveliness") == 200)
    except StackError as exc:
        raise PeerUnavailable(str(exc)) from exc
    try:
        yield f"http://127.0.0.1:{port}", key, proc
    finally:
        procs.stop(name)
