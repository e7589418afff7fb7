"""Fault-injection scenarios against the running app and both simulator regions.

Used by the chaos tests (which assert outcomes) and by `python -m bench resilience` (which prints
p50/p99 latency and success rate per scenario).
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx

BODY = {"messages": [{"role": "user", "content": "Give me the harbour forecast for tomorrow morning"}],
        "max_tokens": 8}


@dataclass(frozen=True)
class Scenario:
    name: str
    faults: dict[str, dict[str, Any]]  # region -> /_sim/faults body
    requests: int = 1000
    concurrency: int = 16


SCENARIOS = [
    Scenario("primary 503 on every call", {"primary": {"status": 503, "rate": 1.0}}),
    Scenario("primary 429 (Retry-After 2 s) on 30% of calls",
             {"primary": {"status": 429, "rate": 0.3, "retry_after_s": 2}}),
    Scenario("both regions down (503)", {"primary": {"status": 503, "rate": 1.0},
                                         "secondary": {"status": 503, "rate": 1.0}}, requests=200),
]


@dataclass
class Outcome:
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    retry_after_missing: int = 0
    problem_json: int = 0
    model_calls: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def requests(self) -> int:
        return sum(self.statuses.values())

    @property
    def success_rate(self) -> float:
        return self.statuses[200] / self.requests if self.requests else 0.0

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(p * len(ordered)))] if ordered else 0.0

    @property
    def calls_per_request(self) -> float:
        return sum(self.model_calls.values()) / self.requests if self.requests else 0.0

    def summary(self) -> str:
        return (f"requests={self.requests} success={self.success_rate:.1%} p50={self.percentile(0.5) * 1000:.0f}ms "
                f"p99={self.percentile(0.99) * 1000:.0f}ms max={max(self.latencies, default=0) * 1000:.0f}ms "
                f"model_calls/request={self.calls_per_request:.2f} calls={self.model_calls} "
                f"statuses={dict(self.statuses)} wall={self.seconds:.1f}s")


async def run(scenario: Scenario, app_url: str, sims: dict[str, str], api_key: str) -> Outcome:
    """Inject the scenario's faults, send its requests, read how many calls reached each region."""
    outcome = Outcome()
    async with httpx.AsyncClient(timeout=120) as control:
        for url in sims.values():
            await control.delete(f"{url}/_sim/faults")
            await control.delete(f"{url}/_sim/stats")
        for region, fault in scenario.faults.items():
            (await control.post(f"{sims[region]}/_sim/faults", json=fault)).raise_for_status()
        try:
            # no-cache, no-store: every request must reach a model endpoint, or nothing is measured.
            headers = {"x-api-key": api_key, "cache-control": "no-cache, no-store"}
            async with httpx.AsyncClient(base_url=f"{app_url}/api", headers=headers,
                                         timeout=120, limits=httpx.Limits(max_connections=scenario.concurrency)) as api:
                queue: asyncio.Queue[int] = asyncio.Queue()
                for i in range(scenario.requests):
                    queue.put_nowait(i)
                started = time.perf_counter()
                await asyncio.gather(*(_worker(api, queue, outcome) for _ in range(scenario.concurrency)))
                outcome.seconds = time.perf_counter() - started
        finally:
            for region, url in sims.items():
                outcome.model_calls[region] = (await control.get(f"{url}/_sim/stats")).json()["requests"]
                await control.delete(f"{url}/_sim/faults")
    return outcome


async def _worker(api: httpx.AsyncClient, queue: asyncio.Queue[int], outcome: Outcome) -> None:
    while not queue.empty():
        queue.get_nowait()
        started = time.perf_counter()
        response = await api.post("/v1/chat", json=BODY)
        outcome.latencies.append(time.perf_counter() - started)
        outcome.statuses[response.status_code] += 1
        if response.status_code != 200:
            outcome.problem_json += response.headers.get("content-type", "").startswith("application/problem+json")
            outcome.retry_after_missing += "retry-after" not in response.headers


def describe(outcomes: dict[str, Outcome]) -> str:
    lines = [f"{name}: {o.summary()}" for name, o in outcomes.items()]
    medians = [statistics.median(o.latencies) for o in outcomes.values() if o.latencies]
    return "\n".join(lines) + (f"\nmedian of medians: {statistics.median(medians) * 1000:.0f}ms" if medians else "")
