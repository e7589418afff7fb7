"""The load generator of `python -m bench overhead`, in its own process: `python -m bench.loadgen SPEC_JSON`.

An aiohttp client with keep-alive connections (one per concurrent worker) sends OpenAI chat
completions. It warms up (opens every connection; with `same`, stores the answer a hit needs), prints
`ready`, waits for a line on stdin (the caller snapshots CPU counters then), runs the timed requests
and prints one JSON line: latencies in ms, statuses, wall time.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
import uuid
from collections import Counter
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import aiohttp

MODEL = "gpt-4o-mini"


@dataclass(frozen=True)
class LoadSpec:
    """What to send: `prompts` is `vary` (every request a new prompt: misses) or `same` (hits)."""

    url: str
    api_key: str
    requests: int
    concurrency: int
    prompts: str = "vary"
    max_tokens: int = 16

    def to_json(self) -> str:
        return json.dumps(asdict(self))


@dataclass(frozen=True)
class LoadResult:
    latencies_ms: list[float]
    statuses: dict[str, int]
    wall_s: float
    cache_hits: int  # answers the gateway says came from its cache

    @classmethod
    def from_json(cls, text: str) -> LoadResult:
        return cls(**json.loads(text))


def cache_hit(headers: Mapping[str, str]) -> bool:
    """Ours says `x-cache: HIT`; LiteLLM names the cache key only on an answer it took from its cache."""
    return headers.get("x-cache", "").upper() == "HIT" or "x-litellm-cache-key" in headers


def body(spec: LoadSpec, run: str, i: int) -> bytes:
    suffix = "" if spec.prompts == "same" else f" (request {run}-{i})"
    prompt = f"Summarise the harbour office's notice about the ferry timetable change{suffix}."
    return json.dumps({"model": MODEL, "max_tokens": spec.max_tokens,
                       "messages": [{"role": "user", "content": prompt}]}).encode()


async def send(session: aiohttp.ClientSession, spec: LoadSpec, payload: bytes) -> tuple[int, float, bool]:
    started = time.perf_counter()
    hit = False
    try:
        async with session.post(spec.url, data=payload) as resp:
            await resp.read()
            status, hit = resp.status, cache_hit(resp.headers)
    except (aiohttp.ClientError, TimeoutError):
        status = 0  # no answer at all: counted, never retried
    return status, (time.perf_counter() - started) * 1000, hit


async def run_phase(session: aiohttp.ClientSession, spec: LoadSpec, payloads: list[bytes]) -> LoadResult:
    queue = iter(payloads)
    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    hits = 0

    async def worker() -> None:
        nonlocal hits
        for payload in queue:  # one shared iterator: each payload is sent once
            status, ms, hit = await send(session, spec, payload)
            statuses[str(status)] += 1
            if status == 200:
                latencies.append(ms)
                hits += hit

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(spec.concurrency)))
    return LoadResult(latencies, dict(statuses), time.perf_counter() - started, hits)


async def main_async(spec: LoadSpec) -> LoadResult:
    run = uuid.uuid4().hex[:10]  # misses stay misses across runs against the same cache
    headers = {"authorization": f"Bearer {spec.api_key}", "content-type": "application/json"}
    connector = aiohttp.TCPConnector(limit=spec.concurrency, keepalive_timeout=60)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=connector, headers=headers, timeout=timeout) as session:
        warm = [body(spec, run, -1 - i) for i in range(spec.concurrency)]
        if spec.prompts == "same":
            await run_phase(session, LoadSpec(**{**asdict(spec), "concurrency": 1}), warm[:1])
        await run_phase(session, spec, warm)
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        return await run_phase(session, spec, [body(spec, run, i) for i in range(spec.requests)])


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    fields: dict[str, Any] = json.loads(args[0])
    result = asyncio.run(main_async(LoadSpec(**fields)))
    print(json.dumps(asdict(result)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
