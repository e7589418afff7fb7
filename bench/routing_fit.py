"""Re-fit the routing scorer's weights on the labelled set and write shared/routing/weights.json.

`python -m bench.routing_fit [--data FILE] [--out FILE]`: plain L2-regularised logistic regression
(Newton's method, numpy), fitted on the train split, each request twice: bare and as its application
sends it (bench/routing_context.py), so the weights hold for either. The threshold is then chosen on
5-fold out-of-fold scores of the train split (a request's two forms in the same fold), for each form
separately as the highest at which the share of complex requests sent to the small model is at most
5% at 95% confidence (Clopper-Pearson), the lower of the two kept, and folded into the bias so that a
route's threshold of 0.5 is that operating point.
Prints train and test figures; deterministic, so a re-run on the same set writes the same weights.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from bench.routing import DATA, TARGET_COMPLEX_TO_SMALL, Request, digest, load_set, upper_bound
from shared.routing.features import features
from shared.routing.scorer import WEIGHTS_PATH, Weights

# The L2 penalty on the weights (not the bias), chosen as the one of these whose out-of-fold train
# scores have the lowest log-loss: enough to keep a weight from running off on ~600 rows, no more.
L2_GRID = (0.01, 0.03, 0.1, 0.3, 1.0)
FOLDS = 5
ROUTE_THRESHOLD = 0.5  # the threshold routes are configured with by default
# The threshold lets through only as many out-of-fold misses as keep the miss rate's one-sided
# upper confidence bound within the target: ~100 complex training rows cannot show 5% more closely.
CONFIDENCE = 0.95
SETS = ("bare", "realistic")
# Read with the score for the record but weighed zero: the whole prompt's length is mostly the
# application's system prompt and retrieved documents, which say which app sent it, not how hard it is.
UNWEIGHED = ("tokens",)


def matrix(requests: Sequence[Request]) -> tuple[list[str], NDArray[np.float64], NDArray[np.float64]]:
    """Feature names, the feature matrix and the labels (1 = complex)."""
    rows = [features(r.messages, tools=r.tools, response_format=r.response_format) for r in requests]
    names = list(rows[0])
    # An unweighed feature's column is zeros: the L2 penalty then holds its weight at exactly 0.
    x = np.array([[0.0 if n in UNWEIGHED else row[n] for n in names] for row in rows], dtype=np.float64)
    return names, x, np.array([float(r.complex) for r in requests])


def fit(x: NDArray[np.float64], y: NDArray[np.float64], l2: float = 1.0) -> tuple[NDArray[np.float64], float]:
    """Logistic regression by Newton's method: the weights and the bias."""
    design = np.hstack([x, np.ones((len(x), 1))])
    penalty = np.diag([l2] * x.shape[1] + [0.0])
    beta = np.zeros(design.shape[1])
    for _ in range(50):
        p = 1 / (1 + np.exp(-design @ beta))
        gradient = design.T @ (p - y) + penalty @ beta
        hessian = design.T @ (design * (p * (1 - p))[:, None]) + penalty
        step = np.linalg.solve(hessian, gradient)
        beta -= step
        if np.abs(step).max() < 1e-10:
            break
    return beta[:-1], float(beta[-1])


def out_of_fold(x: NDArray[np.float64], y: NDArray[np.float64], folds: NDArray[np.int64],
                l2: float) -> NDArray[np.float64]:
    """Each train row's score from a model fitted without its fold: an honest basis for the threshold."""
    scores = np.zeros(len(y))
    for k in range(FOLDS):
        w, b = fit(x[folds != k], y[folds != k], l2)
        scores[folds == k] = 1 / (1 + np.exp(-(x[folds == k] @ w + b)))
    return scores


def log_loss(scores: NDArray[np.float64], y: NDArray[np.float64]) -> float:
    """Mean negative log-likelihood of the labels under the scores."""
    clipped = np.clip(scores, 1e-12, 1 - 1e-12)
    return float(-np.mean(y * np.log(clipped) + (1 - y) * np.log(1 - clipped)))


def threshold_for(scores: NDArray[np.float64], y: NDArray[np.float64], bound: float,
                  confidence: float = CONFIDENCE) -> float:
    """The highest threshold at which so few complex rows score below it that the rate of such
    misses is at most `bound` with this confidence (one-sided, exact binomial)."""
    complex_scores = np.sort(scores[y == 1])
    allowed = 0  # complex rows that may fall below
    while allowed + 1 < len(complex_scores) and upper_bound(allowed + 1, len(complex_scores), confidence) <= bound:
        allowed += 1
    return float(complex_scores[allowed])  # at this threshold exactly `allowed` rows fall below


def figures(scores: NDArray[np.float64], y: NDArray[np.float64], threshold: float) -> str:
    """Accuracy and complex-to-small share at a threshold."""
    routed = scores >= threshold
    accuracy = float((routed == (y == 1)).mean())
    missed = float((~routed & (y == 1)).sum() / max(1, (y == 1).sum()))
    return f"accuracy {accuracy:.1%}, complex->small {missed:.1%} (n={len(y)}, complex {int(y.sum())})"


def main(argv: list[str] | None = None) -> int:
    """Fit, report, write weights.json."""
    parser = argparse.ArgumentParser(prog="python -m bench.routing_fit", description=__doc__)
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--out", type=Path, default=WEIGHTS_PATH)
    args = parser.parse_args(argv)
    forms = {name: load_set(name, args.data) for name in SETS}
    train = {name: [r for r in rows if r.split == "train"] for name, rows in forms.items()}
    test = {name: [r for r in rows if r.split == "test"] for name, rows in forms.items()}
    names, _, _ = matrix(train["bare"][:1])
    x_train = np.vstack([matrix(train[name])[1] for name in SETS])
    y_train = np.concatenate([matrix(train[name])[2] for name in SETS])
    # A request's two forms share a fold: its bare twin must not vouch for it out of fold.
    folds = np.tile(np.arange(len(train["bare"])) % FOLDS, len(SETS))
    candidates = {l2: out_of_fold(x_train, y_train, folds, l2) for l2 in L2_GRID}
    l2 = min(L2_GRID, key=lambda c: log_loss(candidates[c], y_train))
    w, b = fit(x_train, y_train, l2)
    oof = candidates[l2].reshape(len(SETS), -1)
    per_set = y_train.reshape(len(SETS), -1)
    raw = min(threshold_for(oof[k], per_set[k], TARGET_COMPLEX_TO_SMALL) for k in range(len(SETS)))
    # Moving the bias by -logit(raw) makes a score of 0.5 mean what `raw` meant.
    bias = b - math.log(raw / (1 - raw))
    weights = Weights({n: round(float(v), 4) + 0.0 for n, v in zip(names, w, strict=True)}, round(bias, 4))
    lines = {}
    for split, rows in (("train", train), ("test", test)):
        for name in SETS:
            _, x, y = matrix(rows[name])
            scores = np.array([weights.apply(dict(zip(names, row, strict=True))) for row in x])
            lines[f"{split} {name}"] = figures(scores, y, ROUTE_THRESHOLD)
    meta = {
        "fitted_on": f"{args.data.name} ({digest(args.data)}): {len(train['bare'])} train, {len(test['bare'])} test, "
                     "each bare and with its application's context",
        "date": datetime.datetime.now(datetime.UTC).date().isoformat(),
        "method": f"logistic regression, L2 {l2} on weights (lowest out-of-fold log-loss of {list(L2_GRID)}), "
                  f"Newton; threshold from {FOLDS}-fold out-of-fold train scores (complex->small <= "
                  f"{TARGET_COMPLEX_TO_SMALL:.0%} at {CONFIDENCE:.0%} confidence), "
                  "the lower of the bare and realistic forms' thresholds, folded into the bias; "
                  f"{', '.join(UNWEIGHED)} weighed zero",
        "threshold": ROUTE_THRESHOLD,
        "raw_threshold": round(raw, 4),
        "train": lines["train bare"],
        "test": lines["test bare"],
        "train_realistic": lines["train realistic"],
        "test_realistic": lines["test realistic"],
    }
    weights = Weights(weights.weights, weights.bias, meta)
    args.out.write_text(json.dumps(weights.to_json(), indent=2) + "\n", encoding="utf-8")
    print(f"fitted on {meta['fitted_on']}")
    print("L2 by out-of-fold log-loss: " + ", ".join(f"{c} {log_loss(candidates[c], y_train):.4f}" for c in L2_GRID)
          + f"; chosen {l2}")
    print(f"{'feature':<16} weight")
    for name, value in sorted(weights.weights.items(), key=lambda item: -abs(item[1])):
        print(f"{name:<16} {value:+.3f}")
    print(f"{'bias':<16} {weights.bias:+.3f}  (fitted {b:+.3f}, shifted by the threshold {raw:.3f})")
    for key, line in lines.items():
        print(f"{key:<15} at {ROUTE_THRESHOLD}: {line}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
