"""Re-fit the routing scorer's weights on the labelled set and write shared/routing/weights.json.

`python -m bench.routing_fit [--data FILE] [--out FILE]`: plain L2-regularised logistic regression
(Newton's method, numpy), fitted on the train split. The threshold is then chosen on 5-fold
out-of-fold scores of the train split, as the highest at which the share of complex requests sent
to the small model is at most 5% at 95% confidence (Clopper-Pearson), and folded into the bias so
that a route's threshold of 0.5 is that operating point.
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

from bench.routing import DATA, TARGET_COMPLEX_TO_SMALL, Request, digest, load, upper_bound
from shared.routing.features import features
from shared.routing.scorer import WEIGHTS_PATH, Weights

L2 = 1.0  # on the weights, not the bias: with 13 features and ~240 rows, keeps any one from running off
FOLDS = 5
ROUTE_THRESHOLD = 0.5  # the threshold routes are configured with by default
# The threshold lets through only as many out-of-fold misses as keep the miss rate's one-sided
# upper confidence bound within the target: ~100 complex training rows cannot show 5% more closely.
CONFIDENCE = 0.95


def matrix(requests: Sequence[Request]) -> tuple[list[str], NDArray[np.float64], NDArray[np.float64]]:
    """Feature names, the feature matrix and the labels (1 = complex)."""
    rows = [features(r.messages, tools=r.tools, response_format=r.response_format) for r in requests]
    names = list(rows[0])
    x = np.array([[row[n] for n in names] for row in rows], dtype=np.float64)
    return names, x, np.array([float(r.complex) for r in requests])


def fit(x: NDArray[np.float64], y: NDArray[np.float64], l2: float = L2) -> tuple[NDArray[np.float64], float]:
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


def out_of_fold(x: NDArray[np.float64], y: NDArray[np.float64]) -> NDArray[np.float64]:
    """Each train row's score from a model fitted without its fold: an honest basis for the threshold."""
    scores = np.zeros(len(y))
    folds = np.arange(len(y)) % FOLDS
    for k in range(FOLDS):
        w, b = fit(x[folds != k], y[folds != k])
        scores[folds == k] = 1 / (1 + np.exp(-(x[folds == k] @ w + b)))
    return scores


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
    requests = load(args.data)
    train = [r for r in requests if r.split == "train"]
    test = [r for r in requests if r.split == "test"]
    names, x_train, y_train = matrix(train)
    _, x_test, y_test = matrix(test)
    w, b = fit(x_train, y_train)
    raw = threshold_for(out_of_fold(x_train, y_train), y_train, TARGET_COMPLEX_TO_SMALL)
    # Moving the bias by -logit(raw) makes a score of 0.5 mean what `raw` meant.
    bias = b - math.log(raw / (1 - raw))
    weights = Weights({n: round(float(v), 4) for n, v in zip(names, w, strict=True)}, round(bias, 4))
    train_scores = np.array([weights.apply(dict(zip(names, row, strict=True))) for row in x_train])
    test_scores = np.array([weights.apply(dict(zip(names, row, strict=True))) for row in x_test])
    train_line = figures(train_scores, y_train, ROUTE_THRESHOLD)
    test_line = figures(test_scores, y_test, ROUTE_THRESHOLD)
    meta = {
        "fitted_on": f"{args.data.name} ({digest(args.data)}): {len(train)} train, {len(test)} test",
        "date": datetime.datetime.now(datetime.UTC).date().isoformat(),
        "method": f"logistic regression, L2 {L2} on weights, Newton; threshold from {FOLDS}-fold out-of-fold "
                  f"train scores (complex->small <= {TARGET_COMPLEX_TO_SMALL:.0%} at {CONFIDENCE:.0%} confidence), "
                  "folded into the bias",
        "threshold": ROUTE_THRESHOLD,
        "raw_threshold": round(raw, 4),
        "train": train_line,
        "test": test_line,
    }
    weights = Weights(weights.weights, weights.bias, meta)
    args.out.write_text(json.dumps(weights.to_json(), indent=2) + "\n", encoding="utf-8")
    print(f"fitted on {meta['fitted_on']}")
    print(f"{'feature':<16} weight")
    for name, value in sorted(weights.weights.items(), key=lambda item: -abs(item[1])):
        print(f"{name:<16} {value:+.3f}")
    print(f"{'bias':<16} {weights.bias:+.3f}  (fitted {b:+.3f}, shifted by the threshold {raw:.3f})")
    print(f"train at {ROUTE_THRESHOLD}: {train_line}")
    print(f"test  at {ROUTE_THRESHOLD}: {test_line}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
