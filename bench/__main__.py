"""`python -m bench [resilience|cache|semantic_cache|overhead|hostile|soak|routing|routing_judge|safety|safety_stage]`:
the local stack on free ports, and figures."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from pathlib import Path

from bench import resilience
from shared.core.settings import hash_api_key
from tools.localenv import LocalStack, Ports

BENCH_KEY = "bench-key"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("suite", nargs="?", default="resilience",
                        choices=["resilience", "cache", "semantic_cache", "overhead", "hostile", "soak", "routing",
                                 "routing_judge", "safety", "safety_stage"])
    parser.add_argument("--requests", type=int, default=None, help="requests per scenario (default: each scenario's)")
    args, rest = parser.parse_known_args(argv)
    if args.suite == "cache":
        from bench import cache

        return cache.main(rest + (["--requests", str(args.requests)] if args.requests else []))
    if args.suite == "overhead":
        from bench import overhead

        return overhead.main(rest + (["--requests", str(args.requests)] if args.requests else []))
    if args.suite == "hostile":
        from bench import hostile

        return hostile.main(rest + (["--requests", str(args.requests)] if args.requests else []))
    if args.suite in ("soak", "routing", "routing_judge", "safety", "safety_stage"):
        from bench import routing, routing_judge, safety, safety_stage, soak

        suites = {"soak": soak.main, "routing": routing.main, "routing_judge": routing_judge.main,
                  "safety": safety.main, "safety_stage": safety_stage.main}
        timed = args.requests and args.suite == "safety_stage"  # the others take no --requests
        return suites[args.suite](rest + (["--requests", str(args.requests)] if timed else []))
    if args.suite == "semantic_cache":
        from bench import semantic_cache

        return int(semantic_cache.main(rest) or 0)
    tenants = json.dumps([{"tenant": "bench", "keys": [{"id": "bench", "sha256": hash_api_key(BENCH_KEY)}]}])
    with tempfile.TemporaryDirectory() as tmp, LocalStack(ports=Ports.free(), data_dir=Path(tmp),
                                                         log_to_files=True) as stack:
        stack.start_dependencies()
        sims = {r: stack.sim_url(r) for r in ("primary", "secondary")}
        for listed in resilience.SCENARIOS:
            scenario = listed if not args.requests else resilience.Scenario(
                listed.name, listed.faults, args.requests, listed.concurrency)
            # A fresh app per scenario: breakers and the retry budget start clean, as after a deploy.
            stack.start_app(extra_env={"TENANTS": tenants, "REQUEST_DEADLINE_S": "10"}, name="app")
            outcome = asyncio.run(resilience.run(scenario, stack.app_url, sims, BENCH_KEY))
            stack.stop("app")
            print(f"{scenario.name}: {outcome.summary()}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
