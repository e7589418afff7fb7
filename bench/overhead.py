"""Our gateway against the LiteLLM proxy, side by side on loopback: `python -m bench overhead` (issue 11).

Both call one fixed-latency stub (bench/stub.py) with the same OpenAI chat completion (`max_tokens`
16), driven by a load generator in its own process (bench/loadgen.py). Ours runs as it runs locally
(devhost under tools/localenv, Azurite, the Cosmos emulator) with AI_ENDPOINTS pointing at the stub.
Cosmos requests are counted in a separate pass through a counting proxy (bench/cosmos_counter.py),
so the timed runs go straight to the emulator. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench import litellm_peer
from bench.cosmos_counter import CosmosCounter
from bench.loadgen import MODEL, LoadSpec
from bench.measure import FIRST_QUESTION, BenchError, first_answer, idle_cpu_ms_per_s, import_time_s, rss_mb, run_phase
from bench.overhead_report import LITELLM, OURS, Row, table, targets
from shared.core.safety_policy import SafetyPolicy
from shared.core.settings import TenantConfig, TenantKey, TenantLimits, hash_api_key
from tools.appsettings import ROOT
from tools.localenv import LocalStack, Ports, StackError, free_port, port_open
from tools.telemetry_sink import Sink, appinsights

OUR_ROUTE = "/api/v1/chat/completions"  # docs/openai-compatibility.md
NATIVE_ROUTE = "/api/v1/chat"  # docs/api.md: served by Semantic Kernel, loaded on its first use
SETTLE_S = 2.0  # a quiet machine before each timed start
LITELLM_ROUTE = "/v1/chat/completions"
HUGE = 10**12  # limits that are checked on every request and never refuse one
KEYS = {"plain": "bench-plain-key", "full": "bench-full-key", "shielded": "bench-shielded-key"}
FULL = TenantLimits(daily_tokens=HUGE, monthly_tokens=HUGE, daily_usd=1e9, monthly_usd=1e9, rpm=HUGE, tpm=HUGE,
                    cache_ttl_s=3600)
LIMITS = {
    "plain": TenantLimits(cache_ttl_s=0),  # no limits, and its answers are never cached
    "full": FULL,
    "shielded": FULL,
}
# Issue 21's paths are the gateway's own work: limits, budget, exact cache, and the built-in guard
# (in process, on for every tenant). Prompt Shields is a call to the Content Safety service, which
# the local settings configure and LiteLLM plain does not make: its row is the full path with it.
SAFETY = {
    "plain": SafetyPolicy(prompt_shield="off"),
    "full": SafetyPolicy(prompt_shield="off"),
    "shielded": SafetyPolicy(),  # the default: Prompt Shields on every request
}


@dataclass(frozen=True)
class Variant:
    """One of our rows: a tenant (`plain` or `full`), `vary` prompts (misses) or the `same` one (hits),
    and settings on top of the bench's (for example telemetry switched on)."""

    scenario: str
    tenant: str
    prompts: str = "vary"
    extra_env: dict[str, str] = field(default_factory=dict)
    telemetry: bool = False  # export to a local Application Insights receiver (Cosmos not counted again)


VARIANTS = [
    Variant("plain", "plain"),
    Variant("full (misses)", "full"),
    Variant("exact hits", "full", prompts="same"),
    Variant("full + telemetry", "full", telemetry=True),
    Variant("full + Prompt Shields", "shielded"),
]


@dataclass(frozen=True)
class Plan:
    c1_requests: int
    cn_requests: int
    concurrency: int
    count_requests: int
    latency_ms: float
    import_runs: int
    peers: tuple[str, ...] = ("litellm", "ours")

    def phases(self) -> list[tuple[int, int]]:
        return [(1, self.c1_requests), (self.concurrency, self.cn_requests)]


def app_env(stub_url: str) -> dict[str, str]:
    tenants = [TenantConfig(tenant=f"bench-{name}", keys=[TenantKey(id=name, sha256=hash_api_key(key))],
                            limits=LIMITS[name], safety=SAFETY[name]) for name, key in KEYS.items()]
    endpoint = {"name": "stub", "kind": "openai", "endpoint": f"{stub_url}/v1", "model": MODEL,
                "priority": 0, "api_key_secret": "sim-api-key"}  # LOCAL_SECRETS of the example settings
    return {
        "TENANTS": json.dumps([t.model_dump(exclude_none=True) for t in tenants]),
        "AI_ENDPOINTS": json.dumps([endpoint]),
        "SEMANTIC_CACHE_MODE": "off",  # the exact cache is what is compared with LiteLLM's
        # The hourly job sweep is background work, not a request's: keep it out of the figures.
        "JOBS_SWEEP_SCHEDULE": "0 0 0 1 1 *",
    }


def warm_emulator(stack: LocalStack, stub_url: str) -> None:
    """One untimed app and one request per tenant before any timed start, so a timed start meets
    Cosmos as a new instance in Azure does: the containers exist (the Bicep creates them there), and
    the local emulator has compiled each shape of filter predicate it is sent (it takes about 0.5 s
    over the budget's first one; the service is always warm)."""
    say("warming the Cosmos emulator with an untimed app")
    with stack.app_on_free_port("warm-up", app_env(stub_url)) as url:
        for key in KEYS.values():
            first_answer(url + OUR_ROUTE, key, time.monotonic(), gave_up=lambda: False)


def say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def start_timed(stack: LocalStack, name: str, env: dict[str, str], key: str, *,
                route: str = OUR_ROUTE, body: dict[str, Any] | None = None) -> tuple[str, int, float]:
    """Start an app and poll `route` with real requests from the moment its process is spawned:
    (URL, pid, seconds until the first answer)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    failure: list[StackError] = []

    def start() -> None:
        try:
            stack.start_app(extra_env=env, name=name, port=port)
        except StackError as exc:
            failure.append(exc)

    thread = threading.Thread(target=start, name=f"start-{name}")
    # The processes of the phase before (LiteLLM, the previous app) may still be exiting: their
    # teardown is not this app's start, so it gets the cores to itself.
    time.sleep(SETTLE_S)
    started = time.monotonic()
    thread.start()
    try:
        first = first_answer(url + route, key, started, gave_up=lambda: bool(failure), body=body)
    finally:
        thread.join()
    if failure:
        raise failure[0]
    return url, stack.procs[name].pid, first


def measure_ours(plan: Plan, stack: LocalStack, stub: tuple[str, int], rows: list[Row],
                 idle: dict[str, float]) -> dict[str, float]:
    """Every variant: timed phases on a fresh app, then Cosmos counted on a second app behind the proxy."""
    stub_url, stub_pid = stub
    base, first = app_env(stub_url), {}
    with Sink(appinsights.handle) as sink:
        for i, variant in enumerate(VARIANTS):
            env = {**base, **variant.extra_env, **(appinsights.app_settings(sink.url) if variant.telemetry else {})}
            name, key = f"app-{i}", KEYS[variant.tenant]
            say(f"ours / {variant.scenario}: starting the app")
            url, pid, first[variant.scenario] = start_timed(stack, name, env, key)
            idle[f"{OURS} {variant.scenario}"] = idle_cpu_ms_per_s(pid)
            mine = [timed_phase(plan, variant, (url, key, pid), {"stub": stub_pid, "cosmos": stack.procs["cosmos"].pid},
                                phase) for phase in plan.phases()]
            stack.stop(name)
            if not variant.telemetry:  # the same requests as its twin without telemetry
                count_cosmos(plan, stack, (i, variant), env, mine)
            rows.extend(mine)
    return first


def first_native(stack: LocalStack, stub_url: str) -> dict[str, float]:
    """A fresh app's first answer on the native chat, which loads Semantic Kernel on first use, and
    the app's RSS right after it."""
    say("ours / native: starting the app")
    body = {"messages": FIRST_QUESTION, "max_tokens": 16}
    _, pid, first = start_timed(stack, "app-native", app_env(stub_url), KEYS["plain"], route=NATIVE_ROUTE, body=body)
    rss = rss_mb(pid)
    stack.stop("app-native")
    return {"first_answer_s": first, "rss_mb": rss}


def timed_phase(plan: Plan, variant: Variant, app: tuple[str, str, int], others: dict[str, int],
                phase: tuple[int, int]) -> Row:
    (url, key, pid), (c, n) = app, phase
    say(f"ours / {variant.scenario}: {n} requests at c={c}")
    measured = run_phase(LoadSpec(url + OUR_ROUTE, key, n, c, variant.prompts), {"gateway": pid, **others})
    return Row.of(OURS, variant.scenario, c, measured, latency_ms=plan.latency_ms, rss=rss_mb(pid))


def count_cosmos(plan: Plan, stack: LocalStack, indexed: tuple[int, Variant], env: dict[str, str],
                 rows: list[Row]) -> None:
    """The variant's requests again, on an app whose Cosmos endpoint is the counting proxy."""
    (i, variant), key = indexed, KEYS[indexed[1].tenant]
    with CosmosCounter(stack.ports.cosmos) as counter, stack.app_on_free_port(
            f"count-{i}", {**env, "COSMOS_ENDPOINT": counter.endpoint}) as count_url:
        for row in rows:
            n = max(plan.count_requests, 4 * row.concurrency if row.concurrency > 1 else 0)
            say(f"ours / {variant.scenario}: counting Cosmos requests over {n} requests at c={row.concurrency}")
            result = run_phase(LoadSpec(count_url + OUR_ROUTE, key, n, row.concurrency, variant.prompts),
                               {}, at_start=counter.take).result
            row.count(counter.take(), sum(result.statuses.values()))


def measure_litellm(plan: Plan, stub: tuple[str, int], data_dir: Path, rows: list[Row],
                    idle: dict[str, float]) -> str:
    """Both LiteLLM rows, or why there are none (the app's rows run regardless)."""
    stub_url, stub_pid = stub
    try:
        exe = litellm_peer.install(ROOT)
    except (litellm_peer.PeerUnavailable, OSError) as exc:
        return f"LiteLLM skipped: {exc}"
    procs = LocalStack(ports=Ports(), data_dir=data_dir, log_to_files=True)  # only to run LiteLLM
    try:
        for cache, scenario, prompts in ((False, "plain", "vary"), (True, "cache hits", "same")):
            say(f"LiteLLM / {scenario}: starting")
            with litellm_peer.running(procs, exe, stub_url, data_dir, cache=cache) as (url, key, proc):
                idle[f"{LITELLM} {scenario}"] = idle_cpu_ms_per_s(proc.pid)
                for c, n in plan.phases():
                    say(f"LiteLLM / {scenario}: {n} requests at c={c}")
                    phase = run_phase(LoadSpec(url + LITELLM_ROUTE, key, n, c, prompts),
                                      {"gateway": proc.pid, "stub": stub_pid})
                    rows.append(Row.of(LITELLM, scenario, c, phase, latency_ms=plan.latency_ms,
                                          rss=rss_mb(proc.pid)))
    except litellm_peer.PeerUnavailable as exc:
        return f"LiteLLM skipped: {exc}"
    finally:
        procs.stop()
    return f"LiteLLM {litellm_peer.PIN} from {litellm_peer.VENV}, one worker, no database"


def run(plan: Plan) -> dict[str, Any]:
    rows: list[Row] = []
    idle: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp, LocalStack(ports=Ports.free(), data_dir=Path(tmp),
                                                         log_to_files=True) as stack:
        stack.start_azurite()
        stack.start_cosmos()
        stub_port = free_port()
        stub_proc = stack._spawn(
            "stub", ports=(stub_port,), ready=lambda: port_open(stub_port),
            cmd=[sys.executable, "-m", "bench.stub", "--port", str(stub_port), "--latency-ms", str(plan.latency_ms)])
        stub = (f"http://127.0.0.1:{stub_port}", stub_proc.pid)
        if "ours" in plan.peers:
            warm_emulator(stack, stub[0])
        say(f"import function_app: {plan.import_runs} fresh processes")
        import_s, import_process_s = import_time_s(plan.import_runs, {**stack.settings, **app_env(stub[0])})
        litellm_note = ("LiteLLM not run" if "litellm" not in plan.peers
                        else measure_litellm(plan, stub, Path(tmp), rows, idle))
        say(litellm_note)
        first = measure_ours(plan, stack, stub, rows, idle) if "ours" in plan.peers else {}
        native = first_native(stack, stub[0]) if "ours" in plan.peers else {}
    extras = {"native": native, "import_s": import_s, "import_process_s": import_process_s,
              "first_answer_s": max(first.values(), default=None), "first_answer_by_variant_s": first,
              "idle_cpu_ms_per_s": idle}
    return {"plan": asdict(plan), "litellm": litellm_note, "rows": [asdict(r) for r in rows], **extras,
            "targets": [{"what": t.what, "value": t.value, "target": f"{t.op} {t.limit:g}{t.unit}",
                         "verdict": t.verdict} for t in targets(rows, plan.concurrency, extras)],
            "_rows": rows}


def print_report(figures: dict[str, Any]) -> None:
    plan = figures["plan"]
    print(f"overhead: stub latency {plan['latency_ms']:g} ms, max_tokens 16; {figures['litellm']}")
    print("(timings measured on this machine while whatever else runs on it was running)\n")
    print(table(figures["_rows"]))
    print("\nCosmos requests per API request, by operation (counting pass):")
    for r in figures["_rows"]:
        if r.cosmos_by_operation:
            ops = ", ".join(f"{k} {v:g}" for k, v in r.cosmos_by_operation.items())
            print(f"  {r.scenario:<16} c={r.concurrency:<3} {ops}")
    print(f"\nimport function_app: {figures['import_s']:.2f} s (median of {plan['import_runs']}; whole process "
          f"{figures['import_process_s']:.2f} s)")
    print("first answer after start: " + ", ".join(
        f"{k} {v:.2f} s" for k, v in figures["first_answer_by_variant_s"].items()))
    if figures["native"]:
        print(f"first native answer after start (/api/v1/chat, Semantic Kernel loaded on first use): "
              f"{figures['native']['first_answer_s']:.2f} s; RSS right after it "
              f"{figures['native']['rss_mb']:.1f} MB")
    print("idle CPU before load (ms per second): " + ", ".join(
        f"{k} {v:.1f}" for k, v in figures["idle_cpu_ms_per_s"].items()))
    print("\ntargets (issue 11):")
    for t in targets(figures["_rows"], plan["concurrency"], figures):
        print("  " + t.line())
    print("\ntelemetry (issue 12): " + added_cost(figures["_rows"], "full + telemetry"))
    print("Prompt Shields (issue 23): " + added_cost(figures["_rows"], "full + Prompt Shields"))


def added_cost(rows: list[Row], scenario: str) -> str:
    """CPU per request of the full path with one more feature on against the same path without."""
    parts = []
    for off in (r for r in rows if r.peer == OURS and r.scenario == "full (misses)"):
        on = next((r for r in rows if r.peer == OURS and r.scenario == scenario
                   and r.concurrency == off.concurrency), None)
        if on is not None and off.gateway_cpu_ms:
            a, b = off.gateway_cpu_ms, on.gateway_cpu_ms
            parts.append(f"c={off.concurrency} {a:.2f} -> {b:.2f} ms CPU/request ({b - a:+.2f} ms, {b / a:.2f}x)")
    return "; ".join(parts) or "n/a"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench overhead", description=__doc__)
    parser.add_argument("--c1-requests", type=int, default=None, help="requests at c=1 (default 300)")
    parser.add_argument("--requests", type=int, default=None, help="requests at the high concurrency (default 2000)")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--count-requests", type=int, default=None, help="requests of the Cosmos counting pass")
    parser.add_argument("--latency-ms", type=float, default=50.0, help="the stub's fixed latency")
    parser.add_argument("--quick", action="store_true", help="50 / 300 requests, 3 import runs: a smoke run")
    parser.add_argument("--peers", default="litellm,ours", help="comma-separated: litellm, ours (default both)")
    parser.add_argument("--json", type=Path, default=None, help="also write every figure to this file")
    args = parser.parse_args(argv)
    quick = args.quick
    plan = Plan(args.c1_requests or (50 if quick else 300), args.requests or (300 if quick else 2000),
                args.concurrency, args.count_requests or (20 if quick else 100), args.latency_ms, 3 if quick else 5,
                tuple(p.strip() for p in args.peers.split(",") if p.strip()))
    try:
        figures = run(plan)
    except (StackError, BenchError) as exc:
        print(f"overhead bench stopped: {exc}", file=sys.stderr)
        return 1
    print_report(figures)
    if args.json:
        args.json.write_text(json.dumps({k: v for k, v in figures.items() if k != "_rows"}, indent=2) + "\n")
        print(f"\nfigures written to {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
