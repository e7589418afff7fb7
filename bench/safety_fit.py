"""`python -m bench.safety_fit`: fit the detector's model on the dev split alone and write its weights as data.

Reads only the dev split of bench/data/safety/ (the held-out test split is never loaded here). Features of a text
(shared/safety/model.py): the cue features of injection_cues.toml, the counts of its word n-grams (words, neighbour
pairs, sentence openers) that occur in at least --min-lines written dev lines, and whether a rule matched. The rules
were tuned on the dev lines of rounds 1-5, so on those lines "a rule matched" is hindsight: it is left at 0 there and
its weight is learnt from the later rounds alone. Logistic regression with an L2 penalty, fitted by Newton's method
with numpy (deterministic: no random start, no sampling; the Newton step solved in the rows' space, as there are
more features than lines). The penalty and the threshold come from 5-fold cross-validation on dev, three times over,
folds drawn by a hash of the written line so an item's variants stay in its fold: the threshold is the lowest at
which at most --max-fp of dev's benign look-alikes are blocked out of fold, and the penalty the one that then
catches most of the later rounds' attempts out of fold. Writes shared/safety/injection_model.json.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from bench.safety_corpus import Item, labelled
from shared.safety.detector import FAMILIES, Detector, load_rules
from shared.safety.model import MODEL_FILE, Cues, Gram, gram_key, load_cues, units

FOLDS = 5
REPEATS = 3  # cross-validation runs, each with folds drawn by another byte of the hash: a steadier threshold
PENALTIES = (1.0, 3.0, 10.0)
BIAS_PENALTY = 1e-4  # the bias is all but unpenalised (a little keeps the Newton system well conditioned)
RULES_TUNED_ON = frozenset({0})  # rounds whose dev lines the rules were tuned on (0: rounds 1-5)
Matrix = npt.NDArray[np.float64]
Mask = npt.NDArray[np.bool_]


@dataclass
class Dev:
    """The dev split as the fit sees it: each item's cue features and n-gram counts, and the rule column."""
    items: list[Item]
    cue_rows: list[list[int]]
    gram_rows: list[Counter[Gram]]
    y: Matrix
    ruled: Mask  # a rule matched (what the detector adds at run time)
    honest: Mask  # a line the rules were not tuned on: where "a rule matched" says something


def read_dev(items: list[Item], cues: Cues) -> Dev:
    rules = Detector(load_rules())
    cue_rows, gram_rows = [], []
    for item in items:
        fired: set[int] = set()
        found: Counter[Gram] = Counter()
        for unit in units(rules.readings(item.text)):  # one unit for every dev line (all are short)
            unit_fired, unit_grams = cues.grams_of(unit)
            fired.update(unit_fired)
            found.update(unit_grams)
        cue_rows.append(sorted(fired))
        gram_rows.append(found)
    y = np.array([item.label == "injection" for item in items], dtype=np.float64)
    ruled = np.array([rules.detect(item.text) is not None for item in items])
    honest = np.array([item.round not in RULES_TUNED_ON for item in items])
    return Dev(items, cue_rows, gram_rows, y, ruled, honest)


def vocabulary(dev: Dev, rows: npt.NDArray[np.int64], min_lines: int) -> list[Gram]:
    """The n-grams found in at least min_lines written lines among the given rows (variants count with their line)."""
    lines: dict[Gram, set[str]] = {}
    for row in rows:
        for gram in dev.gram_rows[row]:
            lines.setdefault(gram, set()).add(dev.items[row].origin)
    return sorted((g for g, seen in lines.items() if len(seen) >= min_lines), key=gram_key)


def design(dev: Dev, cues: Cues, vocab: list[Gram], mask_rules: bool) -> Matrix:
    """Rows of [cue features | n-gram counts | a rule matched]; mask_rules zeroes the rule column where it is
    hindsight (the lines the rules were tuned on)."""
    index = {g: len(cues.features) + k for k, g in enumerate(vocab)}
    x = np.zeros((len(dev.items), len(cues.features) + len(vocab) + 1))
    for row, (fired, found) in enumerate(zip(dev.cue_rows, dev.gram_rows, strict=True)):
        x[row, fired] = 1.0
        for gram, count in found.items():
            if gram in index:
                x[row, index[gram]] = count
    x[:, -1] = dev.ruled & (dev.honest | (not mask_rules))
    return x


def fit(x: Matrix, y: Matrix, penalty: float) -> tuple[Matrix, float]:
    """Weights and bias minimising the log loss plus penalty/2 * |w|^2. Newton's method, each step solved through
    the Woodbury identity in the space of the rows: (R + X'DX)^-1 = R^-1 - R^-1 X' (D^-1 + X R^-1 X')^-1 X R^-1."""
    xb = np.hstack([x, np.ones((len(x), 1))])
    ridge = np.full(xb.shape[1], penalty)
    ridge[-1] = BIAS_PENALTY
    kernel = (xb / ridge) @ xb.T
    w = np.zeros(xb.shape[1])
    for _ in range(100):
        p = 1 / (1 + np.exp(-(xb @ w)))
        grad = xb.T @ (p - y) + ridge * w
        root = np.sqrt(p * (1 - p))
        scaled = grad / ridge
        inner = np.eye(len(xb)) + root[:, None] * kernel * root[None, :]
        step = scaled - (xb.T @ (root * np.linalg.solve(inner, root * (xb @ scaled)))) / ridge
        w -= step
        if np.max(np.abs(step)) < 1e-9:
            break
    return w[:-1], float(w[-1])


def threshold_for(scores: Matrix, y: Matrix, max_fp: float) -> float:
    """The lowest log-odds threshold at which at most max_fp of the benign items score at or above it."""
    ranked = np.sort(scores[y == 0])[::-1]
    allowed = int(max_fp * len(ranked))
    if allowed >= len(ranked):
        return float("-inf")
    return float(ranked[allowed]) + 1e-6  # just above the first benign score that must not be blocked


def out_of_fold(dev: Dev, cues: Cues, folds: npt.NDArray[np.int64], penalty: float, min_lines: int) -> Matrix:
    """Each item's score by a model fitted without its fold (vocabulary included), a column per repeat; scored with
    the rule column as the detector has it at run time."""
    scores = np.zeros(folds.shape)
    for r in range(folds.shape[1]):
        for k in range(FOLDS):
            held = folds[:, r] == k
            vocab = vocabulary(dev, np.flatnonzero(~held), min_lines)
            w, b = fit(design(dev, cues, vocab, mask_rules=True)[~held], dev.y[~held], penalty)
            scores[held, r] = design(dev, cues, vocab, mask_rules=False)[held] @ w + b
    return scores


def rates(scores: Matrix, y: Matrix, threshold: float) -> tuple[float, float]:
    """The catch rate and the benign-blocked rate at a threshold."""
    blocked = scores >= threshold
    return float(blocked[y == 1].mean()), float(blocked[y == 0].mean())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.safety_fit", description=__doc__)
    parser.add_argument("--max-fp", type=float, default=0.01,
                        help="benign share blocked out of fold (the target is 2%%; the default leaves half of it for "
                             "phrasing dev has not seen)")
    parser.add_argument("--min-lines", type=int, default=2, help="written dev lines an n-gram must occur in")
    parser.add_argument("--penalty", type=float, action="append",
                        help=f"the penalties to try (default {list(PENALTIES)}); repeat the flag for several")
    parser.add_argument("--out", type=Path, default=MODEL_FILE)
    args = parser.parse_args(argv)
    penalties = tuple(args.penalty or PENALTIES)
    items = [i for i in labelled() if i.split == "dev"]  # the held-out split is never read here
    cues = load_cues(FAMILIES)
    dev = read_dev(items, cues)
    y = dev.y
    folds = np.array([[hashlib.sha256(i.origin.encode()).digest()[1 + r] % FOLDS for r in range(REPEATS)]
                      for i in items])
    later = dev.honest & (y == 1)
    print(f"dev split: {int(y.sum())} injections, {int((1 - y).sum())} benign; the rules alone catch "
          f"{dev.ruled[y == 1].mean():.1%} and block {dev.ruled[y == 0].mean():.1%} (of the rounds they were not "
          f"tuned on: {dev.ruled[later].mean():.1%} and {dev.ruled[dev.honest & (y == 0)].mean():.1%})")
    best: tuple[float, float, float, float, float] | None = None  # (later recall, penalty, threshold, recall, fp)
    for penalty in penalties:
        scores = out_of_fold(dev, cues, folds, penalty, args.min_lines)
        pooled, ys = scores.T.ravel(), np.tile(y, REPEATS)  # the repeats one after another
        threshold = threshold_for(pooled, ys, args.max_fp)
        recall, fp = rates(pooled, ys, threshold)
        later_recall = float((scores[later] >= threshold).mean())
        print(f"  penalty {penalty:5.1f}: out of fold caught {recall:.1%} (rounds the rules were not tuned on: "
              f"{later_recall:.1%}), benign blocked {fp:.1%} (threshold {threshold:.3f})")
        if best is None or later_recall > best[0]:
            best = (later_recall, penalty, threshold, recall, fp)
    assert best is not None
    later_recall, penalty, threshold, recall, fp = best
    vocab = vocabulary(dev, np.arange(len(items)), args.min_lines)
    weights, bias = fit(design(dev, cues, vocab, mask_rules=True), y, penalty)
    fitted_recall, fitted_fp = rates(design(dev, cues, vocab, mask_rules=False) @ weights + bias, y, threshold)
    print(f"chosen penalty {penalty}, threshold {threshold:.3f}, {len(vocab)} n-grams; refitted on all of dev: caught "
          f"{fitted_recall:.1%}, benign blocked {fitted_fp:.1%} (in-sample)")
    n_cues = len(cues.features)
    model = {
        "about": "Weights of the detector's model (shared/safety/model.py): the features of injection_cues.toml, "
                 "word n-grams and a rule's match. Written by `python -m bench.safety_fit`; do not edit by hand.",
        "fitted_on": f"dev split of bench/data/safety/ ({int(y.sum())} injections, {int((1 - y).sum())} benign, "
                     "variants included); the held-out test split was not read",
        "date": datetime.date.today().isoformat(),
        "method": f"logistic regression, L2 penalty {penalty} (chosen from {list(penalties)} by {FOLDS}-fold "
                  f"cross-validation on dev, {REPEATS} repeats), Newton's method; n-grams of >= {args.min_lines} "
                  f"written dev lines; the rule weight learnt from rounds the rules were not tuned on",
        "threshold_rule": f"lowest log-odds at which <= {args.max_fp:.1%} of dev's benign items are blocked out of "
                          "fold",
        "cross_validated_dev": {"caught": round(recall, 4), "caught_later_rounds": round(later_recall, 4),
                                "benign_blocked": round(fp, 4)},
        "in_sample_dev": {"caught": round(fitted_recall, 4), "benign_blocked": round(fitted_fp, 4)},
        "penalty": penalty,
        "threshold": round(threshold, 4),
        "bias": round(bias, 4),
        "rule_weight": round(float(weights[-1]), 4),
        "features": [{"name": f.name, "family": f.family, "weight": round(float(w), 4)}
                     for f, w in zip(cues.features, weights[:n_cues], strict=True)],
        "grams": {gram_key(g): round(float(w), 4) for g, w in zip(vocab, weights[n_cues:-1], strict=True)
                  if round(float(w), 4) != 0},
    }
    args.out.write_text(json.dumps(model, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
