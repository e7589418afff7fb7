"""`python -m bench hostile`: another tenant's latency while one tenant sends bodies built to cost CPU (issue 19).

One app on the local stack (as the tests start one), two tenants. The victim sends chat completions
one at a time (every prompt new, cache off: each reaches the simulator), first alone, then while
the attacker's processes post hostile bodies as fast as the app answers them. Printed per phase:
the victim's p50/p99/max and statuses, and what the attacker got (statuses, bodies a second).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import statistics
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import httpx

from shared.core.safe_json import MAX_NODES
from shared.core.settings import hash_api_key
from tools.localenv import LocalStack, Ports

VICTIM_KEY, ATTACKER_KEY = "bench-victim-key", "bench-attacker-key"
TENANTS = json.dumps([
    {"tenant": "victim", "keys": [{"id": "v", "sha256": hash_api_key(VICTIM_KEY)}], "limits": {"cache_ttl_s": 0}},
    {"tenant": "attacker", "keys": [{"id": "a", "sha256": hash_api_key(ATTACKER_KEY)}]},
])
PATH = "/api/v1/chat/completions"


def empty_arrays(count: int) -> bytes:
    """The issue's body: `messages` holding `count` empty arrays (2 + count JSON values), all refused 400."""
    return b'{"model": "gpt-4o-mini", "messages": [' + b",".join([b"[]"] * count) + b"]}"


def one_string(size: int) -> bytes:
    """As many bytes in a single value (`messages` a string, refused by validation): what the bytes
    alone cost, whatever they hold."""
    return b'{"model": "gpt-4o-mini", "messages": "' + b"x" * (size - 40) + b'"}'


HOSTILE = empty_arrays(250_000)
# name -> body. `at the limit` is the most a body may hold and still be parsed whole (then refused
# by validation): the cost that stays once the early refusal has done its part.
ATTACKS = {"250,000 empty arrays": HOSTILE, "as many bytes in one string": one_string(len(HOSTILE)),
           "at the limit": empty_arrays(MAX_NODES - 2)}


@dataclass(frozen=True)
class Figures:
    latencies_ms: list[float]
    statuses: Counter[int]

    def summary(self) -> str:
        ordered = sorted(self.latencies_ms)
        p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
        return (f"p50 {statistics.median(ordered):.1f} ms, p99 {p99:.1f} ms, max {ordered[-1]:.1f} ms "
                f"over {len(ordered)} requests, statuses {dict(self.statuses)}")


async def victim(url: str, requests: int) -> Figures:
    latencies, statuses = [], Counter[int]()
    async with httpx.AsyncClient(base_url=url, headers={"x-api-key": VICTIM_KEY}, timeout=30) as client:
        for i in range(requests + 5):
            body = {"model": "gpt-4o-mini", "max_tokens": 1,
                    "messages": [{"role": "user", "content": f"Is the harbour office open? ({time.time()} {i})"}]}
            started = time.perf_counter()
            response = await client.post(PATH, json=body)
            if i >= 5:  # the first few open the connection and warm the path
                latencies.append((time.perf_counter() - started) * 1000)
                statuses[response.status_code] += 1
    return Figures(latencies, statuses)


def attacker(url: str, body: bytes, senders: int, stop: multiprocessing.synchronize.Event,
             out: multiprocessing.queues.Queue[tuple[dict[int, int], float]]) -> None:
    """In a process of its own, so its sending costs the victim's client nothing."""

    async def send_until_stopped(client: httpx.AsyncClient, statuses: Counter[int]) -> None:
        while not stop.is_set():
            try:
                response = await client.post(PATH, content=body, headers={"content-type": "application/json"})
            except httpx.HTTPError:  # counted as status 0: no answer (the app dropped or timed out the call)
                statuses[0] += 1
                continue
            statuses[response.status_code] += 1

    async def run() -> None:
        statuses = Counter[int]()
        started = time.perf_counter()
        async with httpx.AsyncClient(base_url=url, headers={"x-api-key": ATTACKER_KEY}, timeout=60) as client:
            await asyncio.gather(*(send_until_stopped(client, statuses) for _ in range(senders)))
        out.put((dict(statuses), time.perf_counter() - started))

    asyncio.run(run())


def under_attack(url: str, body: bytes, senders: int, requests: int) -> tuple[Figures, dict[int, int], float]:
    stop = multiprocessing.Event()
    out: multiprocessing.queues.Queue[tuple[dict[int, int], float]] = multiprocessing.Queue()
    proc = multiprocessing.Process(target=attacker, args=(url, body, senders, stop, out))
    proc.start()
    time.sleep(1.0)  # the attack under way before the first timed request
    try:
        figures = asyncio.run(victim(url, requests))
    finally:
        stop.set()
    statuses, seconds = out.get(timeout=120)
    proc.join(timeout=30)
    return figures, statuses, sum(statuses.values()) / seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench hostile", description=__doc__)
    parser.add_argument("--requests", type=int, default=200, help="victim requests per phase")
    parser.add_argument("--senders", type=int, default=1, help="attacker requests in flight at once")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp, LocalStack(ports=Ports.free(), data_dir=Path(tmp),
                                                         log_to_files=True) as stack:
        stack.start_dependencies()
        stack.start_app(extra_env={"TENANTS": TENANTS, "SEMANTIC_CACHE_MODE": "off"}, name="app")
        print(f"victim alone: {asyncio.run(victim(stack.app_url, args.requests)).summary()}", flush=True)
        for name, body in ATTACKS.items():
            figures, statuses, rate = under_attack(stack.app_url, body, args.senders, args.requests)
            print(f"victim while the attacker posts {name} ({len(body) // 1024} KiB, {args.senders} in flight): "
                  f"{figures.summary()}; attacker got {statuses} ({rate:.1f} bodies/s)", flush=True)
    return 0
