"""`python -m bench safety`: the injection detector on the labelled set, the redactor on planted secrets and ordinary
text, whole and split across chunk boundaries, and what both cost per 4,000-character prompt. No app stack."""

from __future__ import annotations

import argparse
import os
import random
import time
from collections import defaultdict
from collections.abc import Callable, Sequence

from bench.safety_corpus import SEED, Item, labelled, ordinary_sentence, planted_documents
from shared.safety.detector import FAMILIES, detect_injection
from shared.safety.redact import KINDS, StreamRedactor, redact

PROMPT_CHARS = 4000


def mark(ok: bool) -> str:
    return "MET" if ok else "NOT MET"


def percentile(values: Sequence[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))]


SPLITS: tuple[tuple[str, Callable[[Item], bool]], ...] = (
    ("dev", lambda i: i.split == "dev"),
    ("dev, round 9", lambda i: i.round == 9),  # written for the model, all dev (bench/data/safety/README.md)
    ("test", lambda i: i.split == "test"),
    ("test, rounds 1-5", lambda i: i.split == "test" and i.round == 0),
    ("test, round 6", lambda i: i.split == "test" and i.round == 6),
    ("test, round 7", lambda i: i.split == "test" and i.round == 7),
    ("test, round 8 (blind)", lambda i: i.round == 8),  # another writer's, scored once (bench/data/safety/README.md)
    ("all", lambda i: True),
)


def detection(items: list[Item], show: str | None, dev_only: bool = False) -> bool:
    """Detection and false-positive rates per split, overall and per family; True when both targets are met."""
    met = True
    for split, chosen_by in SPLITS:
        if dev_only and not split.startswith("dev"):
            continue
        chosen = [i for i in items if chosen_by(i)]
        caught: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        blocked: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        by_model = 0
        for item in chosen:
            found = detect_injection(item.text)
            table = caught if item.label == "injection" else blocked
            table[item.family][0] += found is not None
            table[item.family][1] += 1
            by_model += found is not None and item.label == "injection" and found.rule.startswith("model:")
            if show == split and (found is not None) != (item.label == "injection"):
                print(f"  [{split}] {item.label} {item.family} ({item.note}): {found} :: {item.text[:90]!r}")
        hit, n = (sum(v[k] for v in caught.values()) for k in (0, 1))
        fp, m = (sum(v[k] for v in blocked.values()) for k in (0, 1))
        rate, fpr = hit / n, fp / m
        print(f"detector [{split}]: {hit}/{n} injections caught = {100 * rate:.1f}% ({hit - by_model} with a rule's "
              f"match, {by_model} by the model alone) [target >= 90%: {mark(rate >= 0.9)}], {fp}/{m} benign blocked = "
              f"{100 * fpr:.1f}% [target <= 2%: {mark(fpr <= 0.02)}]")
        for family in FAMILIES:
            c, b = caught[family], blocked[family]
            print(f"    {family:21s} caught {c[0]:3d}/{c[1]:3d} = {100 * c[0] / max(c[1], 1):5.1f}%   "
                  f"benign look-alikes blocked {b[0]:2d}/{b[1]:3d} = {100 * b[0] / max(b[1], 1):4.1f}%")
        if split == "test":  # the verdict is the held-out split's: dev was tuned and fitted on
            met = rate >= 0.9 and fpr <= 0.02
    if dev_only:
        print("detector: held-out split not scored (--dev-only), so no verdict")
    return met and not dev_only


def chunkings(text: str, rng: random.Random, ways: int) -> list[list[str]]:
    """One character at a time, then random cuts of 1 to 64 characters."""
    cuts = [list(text)]
    for _ in range(ways):
        pieces, i = [], 0
        while i < len(text):
            n = rng.randint(1, 64)
            pieces.append(text[i:i + n])
            i += n
        cuts.append(pieces)
    return cuts


def redaction(docs: int, ways: int) -> bool:
    """Recall on planted values whole and split; True when every secret and card is caught both ways."""
    rng = random.Random(SEED)
    whole: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    split: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    mismatches = 0
    for text, values in planted_documents(docs):
        out, _ = redact(text, KINDS)
        streamed = []
        for pieces in chunkings(text, rng, ways):
            stream = StreamRedactor(KINDS)
            streamed.append("".join(stream.feed(p) for p in pieces) + stream.flush())
        mismatches += sum(s != out for s in streamed)
        for value in values:
            key = value.kind if value.kind != "secrets" else f"secrets/{value.name}"
            gone = all(part not in out for part in value.secret)
            whole[key][0] += gone
            whole[key][1] += 1
            for s in streamed:
                split[key][0] += all(part not in s for part in value.secret)
                split[key][1] += 1
    met = mismatches == 0
    print(f"redaction: {docs} documents, each also streamed {ways + 1} ways (1-char chunks and random 1-64); "
          f"streamed output differing from whole-text redaction: {mismatches}")
    for key in sorted(whole):
        w, c = whole[key], split[key]
        must = key.startswith("secrets/") or key == "credit_card"
        ok = w[0] == w[1] and c[0] == c[1]
        met = met and (ok or not must)
        target = f" [target 100%: {mark(ok)}]" if must else ""
        print(f"    {key:36s} whole {w[0]:4d}/{w[1]:4d}   split {c[0]:5d}/{c[1]:5d}{target}")
    return met


def false_redactions(n: int) -> bool:
    rng = random.Random(SEED + 1)
    hits: dict[str, int] = defaultdict(int)
    flagged = []
    for _ in range(n):
        sentence = ordinary_sentence(rng)
        out, counts = redact(sentence, KINDS)
        if counts:
            flagged.append(f"{sentence!r} -> {out!r}")
            for kind, c in counts.items():
                hits[kind] += c
    rate = len(flagged) / n
    print(f"false redactions on ordinary text (order numbers, dates, versions, ids; every kind on): "
          f"{len(flagged)}/{n} sentences = {100 * rate:.2f}% [target <= 1%: {mark(rate <= 0.01)}] {dict(hits)}")
    for line in flagged[:5]:
        print(f"    e.g. {line}")
    return rate <= 0.01


def prompts(items: list[Item], count: int) -> list[str]:
    """Prompts of PROMPT_CHARS characters: dev benign items that pass the detector alone and ordinary sentences,
    shuffled (dev only, so the count of them flagged says nothing of the held-out split)."""
    rng = random.Random(SEED + 2)
    benign = [i.text for i in items if i.label == "benign" and i.split == "dev" and detect_injection(i.text) is None]
    out = []
    for _ in range(count):
        parts: list[str] = []
        while sum(map(len, parts)) < PROMPT_CHARS:
            parts.append(rng.choice(benign) if rng.random() < 0.6 else ordinary_sentence(rng))
        out.append(" ".join(parts)[:PROMPT_CHARS])
    return out


def timed(fn: Callable[[str], object], texts: list[str]) -> tuple[float, float]:
    for text in texts[:20]:
        fn(text)
    spent = []
    for text in texts:
        start = time.perf_counter()
        fn(text)
        spent.append((time.perf_counter() - start) * 1000)
    return percentile(spent, 0.5), percentile(spent, 0.99)


def costs(items: list[Item], count: int) -> bool:
    texts = prompts(items, count)
    dp50, dp99 = timed(detect_injection, texts)
    rp50, rp99 = timed(lambda t: redact(t, KINDS), texts)
    sp50, sp99 = timed(lambda t: redact(t, ("secrets",)), texts)
    print(f"timings: {count} prompts of {PROMPT_CHARS} characters (benign look-alikes and ordinary sentences: dense in "
          f"trigger words, a harder case than prose), one thread, load average {os.getloadavg()[0]:.1f} on "
          f"{os.cpu_count()} CPUs")
    print(f"detector per {PROMPT_CHARS}-char prompt: p50 {dp50:.3f} ms, p99 {dp99:.3f} ms "
          f"[target < 1 ms: {mark(dp50 < 1)}]")
    flagged = sum(detect_injection(t) is not None for t in texts)
    print(f"    of those prompts (look-alikes that pass one by one, put together), blocked as a whole: "
          f"{flagged}/{count}")
    print(f"redact per {PROMPT_CHARS}-char text: every kind p50 {rp50:.3f} ms, p99 {rp99:.3f} ms; "
          f"secrets only (the default) p50 {sp50:.3f} ms, p99 {sp99:.3f} ms")
    added = dp50 + rp50
    print(f"built-in layers added p50 (detector + every-kind redaction): {added:.3f} ms "
          f"[target <= 2 ms: {mark(added <= 2)}]")
    per_chunk: list[float] = []
    held: list[int] = []
    for text in texts:
        stream = StreamRedactor(KINDS)
        emitted = 0
        for i in range(0, len(text), 4):  # about one token of text per streamed chunk
            start = time.perf_counter()
            emitted += len(stream.feed(text[i:i + 4]))
            per_chunk.append((time.perf_counter() - start) * 1000)
            held.append(i + 4 - emitted)
        stream.flush()
    print(f"StreamRedactor added delay per 4-char chunk (every kind): p50 {percentile(per_chunk, 0.5):.4f} ms, "
          f"p99 {percentile(per_chunk, 0.99):.4f} ms; text held back p50 {percentile(held, 0.5):.0f} chars, "
          f"max {max(held)} chars (window {StreamRedactor(KINDS)._hold})")
    return dp50 < 1 and added <= 2


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench safety", description=__doc__)
    parser.add_argument("--show", choices=[name for name, _ in SPLITS],
                        help="print that split's misses and false positives (tune on dev; read test only to report)")
    parser.add_argument("--dev-only", action="store_true",
                        help="the detector's figures on the dev split alone: tune with this, the held-out split unseen")
    parser.add_argument("--docs", type=int, default=400, help="documents with planted values")
    parser.add_argument("--ways", type=int, default=5, help="random chunkings per document (plus 1-char chunks)")
    parser.add_argument("--prompts", type=int, default=300, help=f"{PROMPT_CHARS}-char prompts timed")
    args = parser.parse_args(argv)
    items = labelled()
    print(f"labelled set: {sum(i.label == 'injection' for i in items)} injections, "
          f"{sum(i.label == 'benign' for i in items)} benign look-alikes "
          f"(dev {sum(i.split == 'dev' for i in items)}, held-out test {sum(i.split == 'test' for i in items)})")
    results = [detection(items, args.show, args.dev_only), redaction(args.docs, args.ways), false_redactions(1000),
               costs(items, args.prompts)]
    print("all targets met" if all(results) else "some targets NOT met")
    return 0
