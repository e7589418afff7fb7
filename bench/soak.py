"""Memory under long mixed traffic: `python -m bench soak [--minutes 30] [--tracemalloc]` (issue 19, point 9).

The local stack as `make run` starts it (Azurite, the Cosmos emulator, both simulator regions, the app
under devhost; free ports, loopback only), one tenant whose limits never refuse, and eight workers
sending, in turn: a plain chat (the OpenAI route, then the native /api/v1/chat), a stream read to
[DONE], a stream abandoned after two chunks, an exact-cache hit (always the same prompt) and an
embedding. The app's RSS is sampled every 30 s; the growth after the warm-up is a least-squares fit,
per minute and per request, and the object types and containers that grew most from the end of the
warm-up to the end are printed (tools/devhost writes them on SIGUSR1 when DEVHOST_MEMORY_DIR is set).
With --tracemalloc the app also traces its allocations from halfway through the warm-up, and the
allocation sites that grew most from its end to the end are printed.
Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import signal
import sys
import tempfile
import threading
import time
import tracemalloc
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench.measure import rss_mb
from shared.core.settings import TenantConfig, TenantKey, TenantLimits, hash_api_key
from tools.localenv import LocalStack, Ports, StackError

KEY = "bench-soak-key"
MODEL = "gpt-4o-mini"
EMBEDDING_MODEL = "embeddings"  # the example settings' embedding_deployment
HUGE = 10**12
CONCURRENCY = 8
SAMPLE_S = 30.0
REQUEST_TIMEOUT_S = 60.0
SNAPSHOT_WAIT_S = 120.0
KINDS = ("chat", "native", "stream", "abandon", "hit", "embed")


@dataclass
class Tally:
    """Requests finished so far, by kind and status (a worker's request counts when its answer ends)."""

    statuses: Counter[str] = field(default_factory=Counter)
    kinds: Counter[str] = field(default_factory=Counter)
    done: int = 0

    def add(self, kind: str, status: int | str) -> None:
        self.statuses[str(status)] += 1
        self.kinds[kind] += 1
        self.done += 1


@dataclass(frozen=True)
class Sample:
    minute: float
    rss_mb: float
    requests: int


def app_env() -> dict[str, str]:
    """`make run`'s settings but one tenant whose limits are checked on every request and never refuse."""
    limits = TenantLimits(daily_tokens=HUGE, monthly_tokens=HUGE, daily_usd=1e9, monthly_usd=1e9,
                          rpm=HUGE, tpm=HUGE, cache_ttl_s=3600)
    tenant = TenantConfig(tenant="soak", keys=[TenantKey(id="soak", sha256=hash_api_key(KEY))], limits=limits)
    return {"TENANTS": json.dumps([tenant.model_dump(exclude_none=True)])}


def request_for(kind: str, run: str, n: int) -> tuple[str, dict[str, object]]:
    """(path, body) of one request of `kind`; every prompt but the hit's is new, so those are misses."""
    prompt = f"Summarise the harbour office's notice about the ferry timetable change (soak {run}-{n})."
    chat = {"model": MODEL, "max_tokens": 16, "messages": [{"role": "user", "content": prompt}]}
    if kind == "native":
        return "/api/v1/chat", {"messages": chat["messages"], "max_tokens": 16}
    if kind in ("stream", "abandon"):
        return "/api/v1/chat/completions", {**chat, "max_tokens": 48, "stream": True}
    if kind == "hit":
        same = [{"role": "user", "content": "What are the harbour office's opening hours?"}]
        return "/api/v1/chat/completions", {**chat, "messages": same}
    if kind == "embed":
        return "/api/v1/embeddings", {"model": EMBEDDING_MODEL, "input": prompt}
    return "/api/v1/chat/completions", chat


async def send(client: httpx.AsyncClient, kind: str, path: str, body: dict[str, object]) -> int | str:
    try:
        if kind not in ("stream", "abandon"):
            resp = await client.post(path, json=body)
            return resp.status_code
        async with client.stream("POST", path, json=body) as resp:
            chunks = 0
            async for line in resp.aiter_lines():
                chunks += line.startswith("data:")
                if kind == "abandon" and chunks >= 2:
                    break  # leaving the block closes the connection mid-stream, as a client that gave up
            return resp.status_code
    except httpx.HTTPError as exc:
        return type(exc).__name__  # no answer: counted by what went wrong, never retried


async def drive(url: str, until: float, tally: Tally, stop: threading.Event, kinds: tuple[str, ...]) -> None:
    run = uuid.uuid4().hex[:8]
    counter = itertools.count()
    headers = {"authorization": f"Bearer {KEY}"}
    limits = httpx.Limits(max_connections=CONCURRENCY * 2)
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=REQUEST_TIMEOUT_S, limits=limits) as client:
        path, body = request_for("hit", run, 0)
        await send(client, "hit", path, body)  # stores the answer every later hit replays

        async def worker(offset: int) -> None:
            for kind in itertools.islice(itertools.cycle(kinds), offset, None):
                if time.monotonic() >= until or stop.is_set():
                    return
                path, body = request_for(kind, run, next(counter))
                tally.add(kind, await send(client, kind, path, body))

        await asyncio.gather(*(worker(i) for i in range(CONCURRENCY)))


def snapshot(pid: int, folder: Path, n: int) -> Path:
    """Ask the app for its `n`th memory snapshot (tools/devhost) and wait until it is written: the
    live objects by type, `<n>.types.json`, and with tracing a tracemalloc snapshot, `<n>.snap`."""
    target = folder / f"{n}.types.json"
    os.kill(pid, signal.SIGUSR1)
    deadline = time.monotonic() + SNAPSHOT_WAIT_S
    while not target.exists():
        if time.monotonic() > deadline:
            raise StackError(f"the app wrote no memory snapshot within {SNAPSHOT_WAIT_S:.0f} s")
        time.sleep(0.5)
    return target


def sample_until(pid: int, window: tuple[float, float, float], tally: Tally, snaps: Path | None) -> list[Sample]:
    """RSS every SAMPLE_S from `started` until `until`; with `snaps`, two memory snapshots: halfway
    through the warm-up (tracing starts there) and at its end (the one the last is compared with,
    so memory churning through a bounded structure counts the same, traced, in both). Each is taken
    before that moment's RSS sample, so the memory the snapshot itself touched is in every sample fitted."""
    started, until, warm_up = window
    samples: list[Sample] = []
    marks = [warm_up / 2, warm_up] if snaps is not None else []
    while True:
        while snaps is not None and marks and (time.monotonic() - started) / 60 >= marks[0]:
            snapshot(pid, snaps, 3 - len(marks))
            marks.pop(0)
        now = time.monotonic()
        minute = (now - started) / 60
        samples.append(Sample(minute, rss_mb(pid), tally.done))
        print(f"  {minute:5.1f} min  rss {samples[-1].rss_mb:7.1f} MB  requests {tally.done}", flush=True)
        if now >= until:
            return samples
        time.sleep(min(SAMPLE_S / 2 if marks and marks[0] - minute < 0.5 else SAMPLE_S, max(until - now, 0.1)))


def fit(points: list[tuple[float, float]]) -> float:
    """The least-squares slope of y over x (0 with fewer than two points)."""
    if len(points) < 2:
        return 0.0
    mx = sum(x for x, _ in points) / len(points)
    my = sum(y for _, y in points) / len(points)
    var = sum((x - mx) ** 2 for x, _ in points)
    return sum((x - mx) * (y - my) for x, y in points) / var if var else 0.0


def report(samples: list[Sample], tally: Tally, minutes: float, warm_up: float) -> None:
    late = [s for s in samples if s.minute >= warm_up]
    per_minute = fit([(s.minute, s.rss_mb) for s in late])
    per_request = fit([(float(s.requests), s.rss_mb * 2**20) for s in late])
    print(f"\nsoak: {minutes:g} min, {tally.done} requests at c={CONCURRENCY} "
          f"({tally.done / max(samples[-1].minute * 60, 1):.1f}/s)")
    print("by kind: " + ", ".join(f"{k} {v}" for k, v in sorted(tally.kinds.items())))
    print("statuses: " + ", ".join(f"{k}: {v}" for k, v in sorted(tally.statuses.items())))
    print(f"RSS: {samples[0].rss_mb:.1f} MB at start, {late[0].rss_mb if late else float('nan'):.1f} MB at "
          f"{warm_up:g} min, {samples[-1].rss_mb:.1f} MB at the end")
    if len(late) >= 2:
        print(f"growth after {warm_up:g} min (least squares over {len(late)} samples): "
              f"{per_minute:+.3f} MB/min, {per_request:+.1f} bytes/request")
    else:
        print(f"growth: too few samples after {warm_up:g} min for a fit (run longer)")


def type_growth(first: Path, last: Path, warm_up: float, limit: int = 15) -> None:
    """The object types (those the collector tracks) whose live count grew most between the
    snapshots, and the large containers (dict, set, list, deque) whose length grew most."""
    before, after = json.loads(first.read_text()), json.loads(last.read_text())
    grown = sorted(((n - before["types"].get(t, 0), t) for t, n in after["types"].items()), reverse=True)[:limit]
    print(f"\nlive objects by type: top {limit} by growth after {warm_up:g} min")
    for diff, name in grown:
        print(f"  {diff:+9d}  {name} ({after['types'][name]} live)")
    if after.get("heap") and before.get("heap"):
        used, free = (after["heap"][k] - before["heap"][k] for k in ("in_use", "free"))
        print(f"\nglibc malloc (outside Python's small-object allocator): in use {used / 2**20:+.2f} MB "
              f"(now {after['heap']['in_use'] / 2**20:.1f} MB), free in its heap {free / 2**20:+.2f} MB")
    longer = sorted(((n - before["sizes"].get(c, 0), c) for c, n in after["sizes"].items()), reverse=True)[:limit]
    print(f"\ncontainers of 64 or more items: top {limit} by growth (new ones count from 0)")
    for diff, name in longer:
        print(f"  {diff:+9d}  {name} ({after['sizes'][name]} items)")


def top_growth(first: Path, last: Path, warm_up: float, limit: int = 15) -> None:
    """The allocation sites (file:line, then their call paths) whose live memory grew most between the snapshots."""
    before, after = tracemalloc.Snapshot.load(str(first)), tracemalloc.Snapshot.load(str(last))
    drop = [tracemalloc.Filter(False, tracemalloc.__file__),
            tracemalloc.Filter(False, "<frozen importlib._bootstrap*>")]
    before, after = before.filter_traces(drop), after.filter_traces(drop)
    print(f"\ntracemalloc: top {limit} allocation sites by growth after {warm_up:g} min")
    stats = after.compare_to(before, "lineno")
    for stat in stats[:limit]:
        print(f"  {stat.size_diff / 1024:+9.1f} KiB {stat.count_diff:+8d} blocks  {stat.traceback[0]}")
    print("\ntheir call paths (innermost last), top 5:")
    for stat in after.compare_to(before, "traceback")[:5]:
        print(f"  {stat.size_diff / 1024:+9.1f} KiB {stat.count_diff:+8d} blocks")
        for line in stat.traceback.format(limit=8):
            print("      " + line)


def run(minutes: float, warm_up: float, *, inspect: bool, trace: bool, settings: dict[str, str],
        kinds: tuple[str, ...] = KINDS) -> int:
    with tempfile.TemporaryDirectory() as tmp, LocalStack(ports=Ports.free(), data_dir=Path(tmp),
                                                         log_to_files=True) as stack:
        env = {**app_env(), **settings}
        snaps = Path(tmp) / "snapshots" if inspect else None
        if snaps is not None:
            snaps.mkdir()
            env |= {"DEVHOST_MEMORY_DIR": str(snaps), "DEVHOST_TRACEMALLOC": "1" if trace else ""}
        print("starting the local stack and the app", file=sys.stderr, flush=True)
        stack.start_dependencies()
        app = stack.start_app(extra_env=env)
        tally = Tally()
        started = time.monotonic()
        until = started + minutes * 60
        stop = threading.Event()  # set when the sampling ends early (Ctrl-C), so the workers stop too
        load = threading.Thread(target=lambda: asyncio.run(drive(stack.app_url, until, tally, stop, kinds)),
                                name="soak-load")
        load.start()
        print(f"soak: {minutes:g} min of mixed traffic, RSS of the app (pid {app.pid}) every {SAMPLE_S:g} s",
              flush=True)
        try:
            samples = sample_until(app.pid, (started, until, warm_up), tally, snaps)
        finally:
            stop.set()
            load.join()
        samples.append(Sample((time.monotonic() - started) / 60, rss_mb(app.pid), tally.done))
        report(samples, tally, minutes, warm_up)
        if snaps is not None and (snaps / "2.types.json").exists():
            type_growth(snaps / "2.types.json", snapshot(app.pid, snaps, 3), warm_up)
        if snaps is not None and trace and (snaps / "2.snap").exists():
            top_growth(snaps / "2.snap", snaps / "3.snap", warm_up)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench soak", description=__doc__)
    parser.add_argument("--minutes", type=float, default=30.0, help="how long to send (default 30)")
    parser.add_argument("--inspect", action="store_true",
                        help="print the object types and containers that grew after the warm-up (read inside "
                             "the app, which moves its RSS: use a run without it for the RSS figures)")
    parser.add_argument("--tracemalloc", action="store_true",
                        help="--inspect, and trace the app's allocations: the sites that grew after the warm-up")
    parser.add_argument("--warm-up", type=float, default=5.0,
                        help="minutes left out of the fit, and when tracing starts (default 5)")
    parser.add_argument("--setting", action="append", default=[], metavar="NAME=VALUE",
                        help="an app setting on top of `make run`'s (repeatable), e.g. SEMANTIC_CACHE_MODE=off")
    parser.add_argument("--kinds", default=",".join(KINDS),
                        help=f"the kinds of request to send, comma-separated (default all: {','.join(KINDS)})")
    args = parser.parse_args(argv)
    kinds = tuple(k.strip() for k in args.kinds.split(",") if k.strip())
    if not kinds or any(k not in KINDS for k in kinds):
        parser.error(f"--kinds takes some of {', '.join(KINDS)}")
    if any("=" not in s for s in args.setting):
        parser.error("--setting takes NAME=VALUE")
    if not 0 <= args.warm_up < args.minutes:
        parser.error("--warm-up must be at least 0 and less than --minutes")
    if args.minutes <= 0 or args.minutes > 24 * 60:
        parser.error("--minutes must be more than 0 and at most 1440")
    try:
        return run(args.minutes, args.warm_up, inspect=args.inspect or args.tracemalloc, trace=args.tracemalloc,
                   settings=dict(s.split("=", 1) for s in args.setting), kinds=kinds)
    except StackError as exc:
        print(f"soak bench stopped: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
