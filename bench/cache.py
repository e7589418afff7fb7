"""Exact-cache hits against misses through the real request path, and the Cosmos requests each
API request costs on the hot path. `python -m bench cache`.

The gateway runs in process against the Cosmos emulator and the simulator (no HTTP in front, so
the figures are the request path's own); a counting transport under the Cosmos SDK counts what
each request sends to Cosmos.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

# The package exports AioHttpTransport through a lazy __getattr__, which mypy sees as Any; the module defining
# it is typed.
from azure.core.pipeline.transport._aiohttp import AioHttpTransport

from shared.composition import build_container
from shared.core.models import ChatMessage
from shared.core.settings import TenantLimits, load_settings
from shared.core.values import SamplingParams
from shared.identity.auth import Principal
from shared.pipeline.gateway import CallContext, ChatCall
from tests.conftest import environment
from tools.localenv import LocalStack, Ports

LIMITS = TenantLimits(daily_tokens=10_000_000, monthly_tokens=100_000_000, rpm=100_000, tpm=100_000_000)


class CountingTransport(AioHttpTransport):
    """The SDK's own transport, counting each request by operation."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.requests: Counter[str] = Counter()

    async def send(self, request: Any, **kwargs: Any) -> Any:
        parts = request.url.split("?")[0].rstrip("/").split("/")
        resource = next((p for p in reversed(parts) if p in ("docs", "colls", "dbs", "pkranges")), "account")
        self.requests[f"{request.method} {resource}"] += 1
        return await super().send(request, **kwargs)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))]


async def measure(settings_env: dict[str, str], requests: int) -> dict[str, Any]:
    with environment(settings_env):
        settings = load_settings()
    transport = CountingTransport()
    container = await build_container(settings, cosmos_transport=transport)
    principal = Principal(f"bench-{uuid.uuid4().hex[:8]}", "k", limits=LIMITS)
    prompts = [f"Summarise the ferry timetable change number {i} for the harbour office." for i in range(requests)]
    calls = [ChatCall(None, (ChatMessage(role="user", content=p),), SamplingParams(max_tokens=200)) for p in prompts]
    # Warm-up: the first call opens connections and creates the window documents.
    await container.gateway.complete(CallContext(principal, "warm"), calls[0])
    results: dict[str, Any] = {}
    for phase in ("miss", "hit"):
        transport.requests.clear()
        latencies, cached = [], 0
        for call in calls[1:]:
            started = time.perf_counter()
            answer = await container.gateway.complete(CallContext(principal, phase), call)
            latencies.append(time.perf_counter() - started)
            cached += answer.cached
        n = len(latencies)
        results[phase] = {
            "requests": n, "served_from_cache": cached,
            "p50_ms": round(percentile(latencies, 0.5) * 1000, 1),
            "p99_ms": round(percentile(latencies, 0.99) * 1000, 1),
            "cosmos_requests_per_api_request": round(sum(transport.requests.values()) / n, 2),
            "cosmos_by_operation": {k: round(v / n, 2) for k, v in sorted(transport.requests.items())},
        }
    await container.close()
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench cache", description=__doc__)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp, LocalStack(ports=Ports.free(), data_dir=Path(tmp),
                                                         log_to_files=True) as stack:
        stack.start_dependencies()
        for mode in ("off", "scan"):
            env = {**stack.settings, "SEMANTIC_CACHE_MODE": mode}
            results = asyncio.run(measure(env, args.requests))
            print(f"semantic cache {mode}: " + json.dumps(results, indent=2), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
