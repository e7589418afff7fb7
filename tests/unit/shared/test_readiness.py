"""Readiness is served from the last probe: many calls, at most one probe per period."""

from __future__ import annotations

import asyncio

from shared.readiness import Readiness, verdict, with_breakers


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def settle() -> None:
    """Let the background refresh task run to its end (no timer involved)."""
    for _ in range(10):
        await asyncio.sleep(0)


class CountingProbe:
    def __init__(self) -> None:
        self.calls = 0
        self.release = asyncio.Event()
        self.release.set()

    async def __call__(self) -> dict[str, str]:
        self.calls += 1
        await self.release.wait()
        return {"cosmos": "ok", "model:a": "ok", "probe": str(self.calls)}


async def test_many_concurrent_calls_cause_one_probe_per_period() -> None:
    probe, clock = CountingProbe(), Clock()
    readiness = Readiness(probe, period_s=5, clock=clock)
    results = await asyncio.gather(*(readiness.checks() for _ in range(50)))
    assert probe.calls == 1 and all(r["probe"] == "1" for r in results)
    clock.now += 4.9
    assert (await readiness.checks())["probe"] == "1" and probe.calls == 1


async def test_a_stale_result_is_served_while_one_refresh_runs_in_the_background() -> None:
    probe, clock = CountingProbe(), Clock()
    readiness = Readiness(probe, period_s=5, clock=clock)
    await readiness.checks()
    clock.now += 5
    probe.release.clear()  # the refresh hangs: callers must not wait for it, nor start another
    served = []
    for _ in range(20):
        served.append(await readiness.checks())
        await settle()  # the refresh task starts, and hangs
    assert probe.calls == 2 and all(r["probe"] == "1" for r in served)
    probe.release.set()
    await settle()
    assert (await readiness.checks())["probe"] == "2" and probe.calls == 2


async def test_a_failing_probe_is_not_ready_and_retried_after_the_period() -> None:
    clock = Clock()
    calls = 0

    async def broken() -> dict[str, str]:
        nonlocal calls
        calls += 1
        raise RuntimeError("secret connection string in the text")

    readiness = Readiness(broken, period_s=5, clock=clock)
    checks = await readiness.checks()
    assert checks == {"readiness": "failed"} and verdict(checks) == ["readiness"]
    clock.now += 5
    await readiness.checks()
    await settle()
    assert calls == 2


def test_breakers_are_live_and_an_open_one_marks_its_model() -> None:
    checks = with_breakers({"cosmos": "ok", "model:a": "ok", "model:b": "ok"}, {"a": "open", "b": "half_open"})
    assert checks["model:a"] == "circuit_open" and checks["breaker:a"] == "open"
    assert checks["model:b"] == "ok" and verdict(checks) == []


def test_ready_needs_cosmos_and_one_model() -> None:
    assert verdict({"cosmos": "unavailable", "model:a": "ok"}) == ["cosmos"]
    assert verdict({"cosmos": "ok", "model:a": "unreachable", "model:b": "circuit_open"}) == ["model:a", "model:b"]
    assert verdict({"cosmos": "ok", "key_vault": "not_configured", "model:a": "unreachable", "model:b": "ok"}) == []
