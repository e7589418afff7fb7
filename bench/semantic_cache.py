"""Semantic cache calibration: by threshold, the hit rate on paraphrases and the false-hit rate on
non-paraphrases of bench/data/paraphrases.jsonl, with and without the veto.

`python -m bench.semantic_cache` starts the Cosmos emulator and the simulators on free ports, embeds
every prompt through the Embedder over HTTP (the simulator's bag-of-words embeddings), prints the
table, then replays every pair through the SemanticCache itself at the default threshold (store a,
look up b, one tenant per pair) to show the real path gives the same figures.
`--from-env` embeds with the AI_ENDPOINTS of local.settings.json and the environment instead, to recalibrate for a real
embedding model (no replay: that would write to the environment's Cosmos).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from shared.composition import build_container
from shared.core.models import ChatMessage, Usage
from shared.core.settings import Settings, load_settings
from shared.core.values import Completion
from shared.state.cosmos import CosmosState
from shared.state.semantic_cache import SemanticCache, SemanticCacheSettings, vector_index
from shared.state.semantic_veto import veto
from shared.upstream.embeddings import Embedder, EndpointEmbedder, cosine, embedding_endpoints
from tools.appsettings import LOCAL_SETTINGS, effective, environment, file_values
from tools.localenv import LocalStack, Ports

DATA = Path(__file__).resolve().parent / "data" / "paraphrases.jsonl"
TABLE = [0.50, 0.60, 0.70, 0.75, 0.80, 0.85, 0.90, 0.95, 0.99]
TARGET_FALSE_HITS = 0.01


@dataclass(frozen=True)
class Scored:
    a: str
    b: str
    paraphrase: bool
    similarity: float
    veto: str | None


def load(path: Path) -> list[tuple[str, str, bool]]:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [(r["a"], r["b"], bool(r["paraphrase"])) for r in rows]


def rates(scored: list[Scored], threshold: float, *, with_veto: bool) -> tuple[float, float]:
    """(hit rate on paraphrases, false-hit rate on non-paraphrases) at `threshold`."""
    def hit(s: Scored) -> bool:
        return s.similarity >= threshold and (not with_veto or s.veto is None)
    para = [s for s in scored if s.paraphrase]
    other = [s for s in scored if not s.paraphrase]
    return sum(map(hit, para)) / len(para), sum(map(hit, other)) / len(other)


def best_thresholds(scored: list[Scored]) -> tuple[float, float, float]:
    """(most hits, lowest and highest threshold giving them) among thresholds in 0.01 steps whose
    false-hit rate, veto on, is under the target."""
    allowed = [t / 100 for t in range(-100, 101) if rates(scored, t / 100, with_veto=True)[1] < TARGET_FALSE_HITS]
    best = max((rates(scored, t, with_veto=True)[0] for t in allowed), default=0.0)
    at_best = [t for t in allowed if rates(scored, t, with_veto=True)[0] == best] or [1.0]
    return best, min(at_best), max(at_best)


async def embed_all(embedder: Embedder, texts: list[str], batch: int = 64) -> dict[str, list[float]]:
    vectors: dict[str, list[float]] = {}
    for start in range(0, len(texts), batch):
        chunk = texts[start:start + batch]
        vectors.update(zip(chunk, await embedder.embed(chunk), strict=True))
    return vectors


def print_table(scored: list[Scored], default: float) -> None:
    n_para = sum(s.paraphrase for s in scored)
    print(f"{len(scored)} pairs: {n_para} paraphrases, {len(scored) - n_para} non-paraphrases")
    print(f"{'threshold':>9} | {'similarity only':^23} | {'similarity + veto':^23}")
    print(f"{'':>9} | {'hits':>10} {'false hits':>12} | {'hits':>10} {'false hits':>12}")
    for threshold in sorted({*TABLE, default}):
        raw_hit, raw_false = rates(scored, threshold, with_veto=False)
        hit, false = rates(scored, threshold, with_veto=True)
        mark = "  <- default" if threshold == default else ""
        print(f"{threshold:>9.2f} | {raw_hit:>10.1%} {raw_false:>12.1%} | {hit:>10.1%} {false:>12.1%}{mark}")
    above = [s for s in scored if s.similarity >= default]
    for label, group in (("paraphrases", [s for s in above if s.paraphrase]),
                         ("non-paraphrases", [s for s in above if not s.paraphrase])):
        reasons = Counter(s.veto or "passed" for s in group)
        print(f"at {default:.2f}, {label} above the threshold: {dict(reasons)}")
    hit, false = rates(scored, default, with_veto=True)
    print(f"DEFAULT threshold {default:.2f}: hit rate on paraphrases {hit:.1%}, "
          f"false-hit rate on non-paraphrases {false:.1%}")
    best, low, high = best_thresholds(scored)
    print(f"most hits with false hits under {TARGET_FALSE_HITS:.0%} (veto on): {best:.1%}, "
          f"at thresholds {low:.2f} to {high:.2f}")


async def replay(scored: list[Scored], state: CosmosState, embedder: Embedder,
                 settings: SemanticCacheSettings) -> None:
    """Every pair through the real cache on the emulator: store a, look up b, in a fresh tenant."""
    cache = SemanticCache(state, embedder, vector_index(settings), settings)
    answer = Completion("cached answer", "stop", "bench-model", Usage(prompt_tokens=5, completion_tokens=2,
                                                                      total_tokens=7), "primary")
    run = uuid.uuid4().hex[:8]
    hits: Counter[bool] = Counter()
    latencies: list[float] = []
    for i, s in enumerate(scored):
        tenant = f"bench-{run}-{i}"
        now = time.time()
        await cache.store(tenant, "bench-model", [ChatMessage(role="user", content=s.a)], answer, ttl_s=600, now=now)
        started = time.perf_counter()
        got = await cache.lookup(tenant, "bench-model", [ChatMessage(role="user", content=s.b)], now=now)
        latencies.append(time.perf_counter() - started)
        hits[s.paraphrase] += got is not None
    n_para = sum(s.paraphrase for s in scored)
    print(f"replay through SemanticCache (mode {settings.mode}, emulator): hit rate on paraphrases "
          f"{hits[True] / n_para:.1%}, false-hit rate {hits[False] / (len(scored) - n_para):.1%}, "
          f"lookup p50 {statistics.median(latencies) * 1000:.1f} ms")


async def run(pairs: list[tuple[str, str, bool]], settings: Settings, *, with_replay: bool) -> None:
    container = await build_container(settings)
    try:
        endpoints = embedding_endpoints(container.groups.endpoints(), timeout_s=30)
        embedder = EndpointEmbedder(endpoints)
        vectors = await embed_all(embedder, sorted({t for a, b, _ in pairs for t in (a, b)}))
        scored = [Scored(a, b, p, cosine(vectors[a], vectors[b]), veto(a, b)) for a, b, p in pairs]
        default = SemanticCacheSettings().threshold
        print(f"embeddings: {len(next(iter(vectors.values())))} dimensions from {endpoints[0].name}")
        print_table(scored, default)
        if with_replay:
            await replay(scored, container.cosmos, embedder, SemanticCacheSettings(mode="scan"))
    finally:
        await container.close()  # with the endpoints' wires, which the embeddings went over


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.semantic_cache", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DATA, help="JSON lines {a, b, paraphrase}")
    parser.add_argument("--from-env", action="store_true",
                        help="embed with the AI_ENDPOINTS of local.settings.json (the environment wins)")
    args = parser.parse_args(argv)
    pairs = load(args.data)
    if args.from_env:
        # As the app sees its settings locally: local.settings.json, the environment winning.
        values = effective(file_values(LOCAL_SETTINGS), os.environ) if LOCAL_SETTINGS.exists() else {}
        with environment(values):
            settings = load_settings()
        asyncio.run(run(pairs, settings, with_replay=False))
        return 0
    with tempfile.TemporaryDirectory() as tmp, LocalStack(ports=Ports.free(), data_dir=Path(tmp),
                                                         log_to_files=True) as stack:
        stack.start_cosmos()
        stack.start_simulators()
        os.environ.update(stack.settings)
        asyncio.run(run(pairs, load_settings(), with_replay=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
