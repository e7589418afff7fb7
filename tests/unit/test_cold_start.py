"""Cold start: the function index imports no SDK, and the background load of the SDKs is safe to race."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
# What the index must not wait for: each costs 0.1-1.5 s at import (docs/deploy.md).
HEAVY = ("semantic_kernel", "openai", "bpe_openai", "azure.cosmos", "azure.identity", "azure.keyvault",
         "azure.storage", "numpy", "aiohttp")


def _run(code: str) -> dict[str, Any]:
    """Run `code` in a fresh interpreter at the repo root; it prints one JSON object last."""
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=600,
                         check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def _heavy(modules: list[str]) -> list[str]:
    return sorted(m for m in modules if any(m == h or m.startswith(h + ".") for h in HEAVY))


def test_importing_the_function_app_loads_no_sdk_and_starts_the_loader() -> None:
    # The loader is replaced by a recorder before function_app imports it, so what sys.modules
    # holds afterwards is what the index itself imported.
    result = _run("""
import json, sys
import shared.container as container
calls = []
container.start_loading = lambda: calls.append(1)
import function_app
print(json.dumps({"modules": sorted(sys.modules), "calls": len(calls),
                  "functions": [f.get_function_name() for f in function_app.app.get_functions()]}))
""")
    assert _heavy(result["modules"]) == []
    assert result["calls"] == 1
    # Indexed as before: HTTP (streams), queue and timer functions alike.
    assert {"chat", "openai_chat_completions", "jobs_worker", "jobs_sweep"} <= set(result["functions"])


@pytest.mark.parametrize("foreground", ["service_modules", "sdks_first"])
def test_the_background_load_can_race_a_foreground_import(foreground: str) -> None:
    # Per-module import locks make this safe unless the two threads deadlock on a cycle; Python
    # then raises _DeadlockError in one of them, which this would surface.
    imports = ("import shared.composition, shared.pipeline.openai_path, shared.jobs.service"
               if foreground == "service_modules"
               else "import semantic_kernel.connectors.ai.open_ai, openai, azure.cosmos.aio, shared.upstream.kernel")
    result = _run(f"""
import json, sys
import function_app
from shared.container import start_loading
{imports}
start_loading().result(timeout=300)
print(json.dumps({{"modules": sorted(sys.modules)}}))
""")
    loaded = _heavy(result["modules"])
    for name in ("azure.cosmos", "azure.storage"):
        assert name in loaded
    assert "shared.composition" in result["modules"]


def test_the_service_modules_need_no_semantic_kernel_and_no_openai_sdk() -> None:
    # The OpenAI-compatible path is served without them; the native paths load them on first use
    # (shared/upstream/engine.LazyEngine). Key Vault and the identity SDK load only where they are configured.
    result = _run("""
import json, sys
import function_app
from shared.container import start_loading
start_loading().result(timeout=300)
import gc
print(json.dumps({"modules": sorted(sys.modules), "gc": gc.isenabled(), "frozen": gc.get_freeze_count()}))
""")
    loaded = _heavy(result["modules"])
    assert [m for m in loaded if m.split(".")[0] in ("semantic_kernel", "openai")] == []
    # The collector is off for the start only: back on, with what the start made frozen.
    assert result["gc"] is True and result["frozen"] > 10_000
    assert [m for m in loaded if m.startswith(("azure.identity", "azure.keyvault"))] == []


def test_application_insights_loads_no_openai_sdk_and_keeps_the_azure_sdk_spans() -> None:
    # The distro's `azure_sdk` switch would import the Azure AI Projects instrumentor, and with it
    # the openai SDK (0.75 s of CPU): shared/observability/telemetry.py sets the Azure SDK's tracing itself.
    result = _run("""
import json, os, sys
os.environ["APPLICATIONINSIGHTS_CONNECTION_STRING"] = (
    "InstrumentationKey=00000000-0000-0000-0000-000000000000;IngestionEndpoint=http://127.0.0.1:9/")
os.environ["TELEMETRY_LIVE_METRICS"] = "false"
import logging
import function_app
from azure.core.settings import settings
print(json.dumps({"modules": sorted(sys.modules), "tracing": settings.tracing_implementation().__name__,
                  "httpx2_level": logging.getLogger("httpx2").getEffectiveLevel()}))
""")
    assert [m for m in result["modules"] if m.split(".")[0] == "openai" or m.startswith("azure.ai.")] == []
    assert result["tracing"] == "OpenTelemetrySpan"
    assert result["httpx2_level"] >= 30  # no INFO record per model call
