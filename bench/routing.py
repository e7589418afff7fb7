"""Model routing on the labelled set, bare and with its applications' context: the scorer's accuracy,
complex requests sent to the small model, cost saved against always using the complex model, by
threshold, and the scorer's own latency.

`python -m bench routing` (or `python -m bench.routing`): offline, no app stack, a few seconds.
Figures are on the fixed test split of bench/data/routing/requests.jsonl unless `--split all`, for the
bare requests and the realistic ones (bench/routing_context.py) unless `--set bare|realistic`, for
every batch unless `--batch NAME` (repeatable; `--batch blind --batch blind2`: the two written without
sight of the scorer).
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import math
import statistics
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from bench.routing_context import CONTEXT, realistic_messages
from shared.core.settings import ModelPrice, Settings
from shared.core.tokens import prompt_tokens
from shared.routing.features import text_of
from shared.routing.scorer import Weights, default_weights, score_chat

DATA = Path(__file__).resolve().parent / "data" / "routing" / "requests.jsonl"
SMALL, LARGE = "gpt-4o-mini", "gpt-4o"
# OpenAI's published list prices (USD per 1M tokens, standard tier), used for a model the default
# MODEL_PRICES does not name; Azure OpenAI's global standard deployments bill the same.
LIST_PRICES = {SMALL: ModelPrice(input_per_1m=0.15, output_per_1m=0.60),
               LARGE: ModelPrice(input_per_1m=2.50, output_per_1m=10.00)}
# The set records how many tools a request offers, not their definitions: each is billed as a
# typical function definition of this many prompt tokens.
TOKENS_PER_TOOL_DEFINITION = 150
TARGET_SAVED = 0.50
TARGET_COMPLEX_TO_SMALL = 0.05
SWEEP = [0.2, 0.3, 0.4, 0.45, 0.5, 0.55, 0.6, 0.7, 0.8]
CONVERSATION_CHARS = 4000
# What-ifs, not the set: the scorer's scores are kept as they are. 6,000 is the mean prompt per request
# that OpenRouter and a16z measured over 100 trillion tokens of 2025 traffic ("State of AI", Dec 2025).
SYSTEM_PROMPT_SCENARIOS = [1000, 3000, 6000]


@dataclass(frozen=True)
class Request:
    """One labelled request of the set."""

    id: str
    category: str
    split: str
    complex: bool
    reason: str
    output_tokens: int
    tools: int
    response_format: bool
    messages: Sequence[Mapping[str, Any]]
    batch: str = "original"  # "fresh": written after the weights were fitted, to test them once


def load(path: Path = DATA) -> list[Request]:
    """The labelled set, in file order."""
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [Request(r["id"], r["category"], r["split"], r["label"] == "complex", r["reason"], r["output_tokens"],
                    r["tools"], r["response_format"], r["messages"], r.get("batch", "original")) for r in rows]


def digest(path: Path = DATA) -> str:
    """A short digest of the set, so weights.json says which version it was fitted on."""
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


def prices() -> tuple[dict[str, ModelPrice], str]:
    """The two tiers' prices: the default MODEL_PRICES where it names them, else the list prices."""
    defaults: dict[str, ModelPrice] = Settings.model_fields["model_prices"].get_default(call_default_factory=True)
    chosen = {model: defaults.get(model, LIST_PRICES[model]) for model in (SMALL, LARGE)}
    source = ", ".join(f"{m} {'MODEL_PRICES default' if m in defaults else 'published list price'} "
                       f"${p.input_per_1m}/${p.output_per_1m} per 1M in/out" for m, p in chosen.items())
    return chosen, source


def prompt_size(request: Request) -> int:
    """The request's prompt tokens as gpt-4o bills them, its tools' definitions included."""
    prompt = prompt_tokens(LARGE, [(str(m.get("role", "")), text_of(m.get("content"))) for m in request.messages])
    return prompt + TOKENS_PER_TOOL_DEFINITION * request.tools


def cost(request: Request, price: ModelPrice) -> float:
    """USD for this request's prompt (counted as gpt-4o bills it) and its recorded output length."""
    return (prompt_size(request) * price.input_per_1m + request.output_tokens * price.output_per_1m) / 1e6


@dataclass(frozen=True)
class Outcome:
    """Routing at one threshold: what went where, and what it cost."""

    threshold: float
    n: int
    accuracy: float
    complex_to_small: float  # share of complex requests the small model answered
    simple_to_large: float  # share of simple requests the large model answered (money, not quality)
    to_small: float
    saved: float  # against always using the large model

    def row(self) -> str:
        """One line of the sweep table."""
        return (f"{self.threshold:>9.2f} {self.accuracy:>9.1%} {self.complex_to_small:>16.1%} "
                f"{self.simple_to_large:>14.1%} {self.to_small:>9.1%} {self.saved:>11.1%}")


HEADER = (f"{'threshold':>9} {'accuracy':>9} {'complex->small':>16} {'simple->large':>14} {'to small':>9} "
          f"{'cost saved':>11}")


def evaluate(requests: Sequence[Request], scores: Sequence[float], threshold: float,
             price: Mapping[str, ModelPrice]) -> Outcome:
    """Route each request (complex when its score reaches the threshold) and total the outcome."""
    routed = [s >= threshold for s in scores]
    complex_total = sum(r.complex for r in requests) or 1
    simple_total = (len(requests) - sum(r.complex for r in requests)) or 1
    large = [cost(r, price[LARGE]) for r in requests]
    charged = sum(c if big else cost(r, price[SMALL]) for r, c, big in zip(requests, large, routed, strict=True))
    return Outcome(
        threshold, len(requests),
        accuracy=sum(r.complex == big for r, big in zip(requests, routed, strict=True)) / max(1, len(requests)),
        complex_to_small=sum(r.complex and not big for r, big in zip(requests, routed, strict=True)) / complex_total,
        simple_to_large=sum(not r.complex and big for r, big in zip(requests, routed, strict=True)) / simple_total,
        to_small=sum(not big for big in routed) / max(1, len(requests)),
        saved=1 - charged / sum(large) if large else 0.0,
    )


def upper_bound(misses: int, n: int, confidence: float = 0.95) -> float:
    """Clopper-Pearson: the highest miss rate under which seeing `misses` or fewer in `n` still has
    probability at least 1 - confidence."""
    low, high = misses / n, 1.0
    for _ in range(60):  # bisection: P(X <= misses) falls as the rate rises
        rate = (low + high) / 2
        at_most = sum(math.comb(n, k) * rate**k * (1 - rate) ** (n - k) for k in range(misses + 1))
        low, high = (rate, high) if at_most > 1 - confidence else (low, rate)
    return high


def scores_of(requests: Iterable[Request], weights: Weights | None = None) -> list[float]:
    """The scorer's score of each request."""
    return [score_chat(r.messages, tools=r.tools, response_format=r.response_format, weights=weights).value
            for r in requests]


def conversations(requests: Sequence[Request], chars: int = CONVERSATION_CHARS) -> list[list[dict[str, str]]]:
    """Each request's conversation, its turns kept and their texts repeated in turn until the whole
    holds exactly `chars` characters."""
    built = []
    for request in requests:
        turns = [(str(m["role"]), text_of(m.get("content"))) for m in request.messages]
        if not any(text for _, text in turns):
            continue
        grown = [[role, ""] for role, _ in turns]
        left, i = chars, 0
        while left > 0:
            text = turns[i % len(turns)][1][:left]
            grown[i % len(turns)][1] += text
            left -= len(text)
            i += 1
        built.append([{"role": role, "content": text} for role, text in grown])
    return built


def latency_us(samples: Sequence[Sequence[Mapping[str, Any]]], rounds: int = 5) -> tuple[float, float, float]:
    """One score_chat call per conversation, in microseconds: p50 and p99 of every call, and p99 of
    each conversation's median call. On a shared machine a call preempted by another process lands
    in the first p99; the median per conversation leaves that out."""
    score_chat(samples[0])  # the first call loads the weights and the tokenizer
    per_conversation: list[list[float]] = [[] for _ in samples]
    gc.disable()  # as timeit does: a collection triggered by the bench itself is not the scorer's
    try:
        for _ in range(rounds):
            for messages, timings in zip(samples, per_conversation, strict=True):
                start = time.perf_counter_ns()
                score_chat(messages, tools=1)
                timings.append((time.perf_counter_ns() - start) / 1000)
    finally:
        gc.enable()
    every = statistics.quantiles([t for timings in per_conversation for t in timings], n=100)
    medians = statistics.quantiles([statistics.median(timings) for timings in per_conversation], n=100)
    return every[49], every[98], medians[98]


def explain(requests: Sequence[Request], scores: Sequence[float], threshold: float,
            price: Mapping[str, ModelPrice]) -> None:
    """What bounds the saving: the labels routed perfectly, the complex requests' share of the cost,
    and how a shared system prompt (as production assistants send) moves both."""
    perfect = evaluate(requests, [float(r.complex) for r in requests], 0.5, price)
    share = sum(cost(r, price[LARGE]) for r in requests if r.complex) / sum(cost(r, price[LARGE]) for r in requests)
    print(f"\nwhat bounds the saving: complex requests are {sum(r.complex for r in requests) / len(requests):.0%} "
          f"of requests but {share:.0%} of the always-{LARGE} cost (their answers are long);")
    print(f"  perfect routing (every label followed) would save {perfect.saved:.1%}")
    for extra in SYSTEM_PROMPT_SCENARIOS:
        padded = [replace(r, messages=[{"role": "system", "content": "x " * extra}, *r.messages]) for r in requests]
        print(f"  with a {extra:,}-token system prompt on every request: perfect "
              f"{evaluate(padded, [float(r.complex) for r in requests], 0.5, price).saved:.1%}, "
              f"this scorer {evaluate(padded, scores, threshold, price).saved:.1%}")


def mark(met: bool) -> str:
    """How a target reads in the report."""
    return "MET" if met else "NOT MET"


def load_set(name: str, path: Path = DATA) -> list[Request]:
    """The bare set as written, or the realistic one: each request with its application's context."""
    bare = load(path)
    if name == "bare":
        return bare
    return [replace(r, messages=realistic_messages(r.id, r.category, r.messages)) for r in bare]


def report(name: str, requests: Sequence[Request], weights: Weights, threshold: float, split: str) -> None:
    """The figures of one set: headline with the targets marked, by category, what bounds the saving, a sweep."""
    price, source = prices()
    scores = scores_of(requests, weights)
    complex_count = sum(r.complex for r in requests)
    prompt = statistics.median(prompt_size(r) for r in requests)
    print(f"\n=== set {name}: split {split}, {len(requests)} requests ({complex_count} complex, "
          f"{len(requests) - complex_count} simple); median prompt {prompt:,.0f} tokens ===")
    print(f"prices: {source}")
    print(f"tiers: simple -> {SMALL}, complex -> {LARGE}; usage: prompt tokens counted, output tokens as recorded\n")
    at = evaluate(requests, scores, threshold, price)
    print(f"at the configured threshold {threshold}:")
    print(f"  accuracy                        {at.accuracy:.1%}")
    missed = round(at.complex_to_small * complex_count)
    print(f"  complex requests -> small model {at.complex_to_small:.1%}  (target <= {TARGET_COMPLEX_TO_SMALL:.0%}: "
          f"{mark(at.complex_to_small <= TARGET_COMPLEX_TO_SMALL)}; {missed} of {complex_count}, "
          f"95% upper bound {upper_bound(missed, complex_count):.1%})")
    print(f"  simple requests -> large model  {at.simple_to_large:.1%}")
    print(f"  requests to the small model     {at.to_small:.1%}")
    print(f"  cost saved vs always {LARGE}    {at.saved:.1%}  (target >= {TARGET_SAVED:.0%}: "
          f"{mark(at.saved >= TARGET_SAVED)})")
    for batch in sorted({r.batch for r in requests}) if len({r.batch for r in requests}) > 1 else []:
        pairs = [(r, s) for r, s in zip(requests, scores, strict=True) if r.batch == batch]
        part = evaluate([r for r, _ in pairs], [s for _, s in pairs], threshold, price)
        print(f"  of which {batch:<9} n={part.n:<3} accuracy {part.accuracy:>6.1%}  complex->small "
              f"{part.complex_to_small:>6.1%}  simple->large {part.simple_to_large:>6.1%}  saved {part.saved:>6.1%}")
    print("\nby category:")
    for category in sorted({r.category for r in requests}):
        pairs = [(r, s) for r, s in zip(requests, scores, strict=True) if r.category == category]
        part = evaluate([r for r, _ in pairs], [s for _, s in pairs], threshold, price)
        print(f"  {category:<11} n={part.n:<3} accuracy {part.accuracy:>6.1%}  complex->small "
              f"{part.complex_to_small:>6.1%}  to small {part.to_small:>6.1%}  saved {part.saved:>6.1%}")
    explain(requests, scores, threshold, price)
    for r, s in [(r, s) for r, s in zip(requests, scores, strict=True) if r.complex and s < threshold]:
        print(f"  complex sent to small: {r.id} ({s:.2f}): {r.reason}")
    print("\nsweep:")
    print("  " + HEADER)
    for t in sorted({*SWEEP, threshold}):
        print("  " + evaluate(requests, scores, t, price).row())


def main(argv: list[str] | None = None) -> int:
    """Print the routing report: the bare set and the realistic one, each with its targets marked."""
    parser = argparse.ArgumentParser(prog="python -m bench routing", description=__doc__)
    parser.add_argument("--split", choices=["test", "train", "all"], default="test")
    parser.add_argument("--set", choices=["bare", "realistic", "both"], default="both", dest="which",
                        help="the requests as written, with their applications' context, or both (default)")
    parser.add_argument("--batch", action="append", default=None,
                        help="only the requests of this batch, repeatable (e.g. blind and blind2, written "
                             "without sight of the scorer; default: every batch)")
    parser.add_argument("--threshold", type=float, default=None,
                        help="the route's threshold (default: the one weights.json was tuned for)")
    args = parser.parse_args(argv)
    weights = default_weights()
    threshold = args.threshold if args.threshold is not None else float(weights.meta.get("threshold", 0.5))
    print(f"set: {DATA.relative_to(DATA.parents[2])} ({digest()}), {len(load())} requests, and the same "
          f"with their applications' context ({CONTEXT.relative_to(DATA.parents[2])}/)")
    print(f"weights: fitted on {weights.meta.get('fitted_on')}, {weights.meta.get('date')}")
    for name in (["bare", "realistic"] if args.which == "both" else [args.which]):
        requests = [r for r in load_set(name) if args.split in ("all", r.split)
                    and (args.batch is None or r.batch in args.batch)]
        if not requests:
            parser.error(f"no {args.split} request is of batch {' or '.join(args.batch or [])}")
        report(name, requests, weights, threshold, args.split)
    bare, real = load(), load_set("realistic")
    p50, p99, p99_median = latency_us(conversations(bare))
    print(f"\nscorer latency per {CONVERSATION_CHARS:,}-character conversation ({len(bare)} bare conversations "
          f"grown to size x 5 calls): p50 {p50:.0f} us, p99 {p99:.0f} us; p99 of the per-conversation median "
          f"{p99_median:.0f} us (target < 1000 us: {mark(p99_median < 1000)})")
    p50, p99, p99_median = latency_us([r.messages for r in real])
    longest = max(sum(len(text_of(m.get("content"))) for m in r.messages) for r in real)
    print(f"  the realistic requests as they are (up to {longest:,} characters): p50 {p50:.0f} us, "
          f"p99 {p99:.0f} us; p99 of the per-conversation median {p99_median:.0f} us")
    return 0


if __name__ == "__main__":
    sys.exit(main())
