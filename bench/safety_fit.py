"""`python -m bench.safety_fit`: fit the detector's cue model on the dev split alone and write its weights as data.

Reads only the dev split of bench/data/safety/ (the held-out test split is never loaded here). Logistic regression
with an L2 penalty, fitted by Newton's method with numpy (deterministic: no random start, no sampling). The penalty
and the decision threshold are chosen by 5-fold cross-validation on dev, three times over, folds drawn by a hash of
the written line so an item's variants stay in its fold: the threshold is the lowest at which the rules and the
model together block at most --max-fp of the benign look-alikes out of fold. Writes shared/safety/injection_model.json.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
from pathlib import Path

import numpy as np
import numpy.typing as npt

from bench.safety_corpus import Item, labelled
from shared.safety.detector import FAMILIES, Detector, load_rules
from shared.safety.model import MODEL_FILE, Cues, load_cues

FOLDS = 5
REPEATS = 3  # cross-validation runs, each with folds drawn by another byte of the hash: a steadier threshold
PENALTIES = (0.3, 1.0, 3.0, 10.0)
Matrix = npt.NDArray[np.float64]


def design(items: list[Item], cues: Cues) -> tuple[Matrix, Matrix, npt.NDArray[np.bool_]]:
    """Binary features of each item's readings, the labels, and whether the rules already catch each item."""
    rules = Detector(load_rules())
    x = np.zeros((len(items), len(cues.features)))
    for row, item in enumerate(items):
        for index in cues.fire(rules.readings(item.text)):
            x[row, index] = 1.0
    y = np.array([item.label == "injection" for item in items], dtype=np.float64)
    caught = np.array([rules.detect(item.text) is not None for item in items])
    return x, y, caught


def fit(x: Matrix, y: Matrix, penalty: float) -> tuple[Matrix, float]:
    """Weights and bias minimising the log loss plus penalty/2 * |w|^2 (the bias is not penalised)."""
    xb = np.hstack([x, np.ones((len(x), 1))])
    w = np.zeros(xb.shape[1])
    ridge = np.full(xb.shape[1], penalty)
    ridge[-1] = 1e-6
    for _ in range(100):
        p = 1 / (1 + np.exp(-(xb @ w)))
        grad = xb.T @ (p - y) + ridge * w
        hess = (xb * (p * (1 - p))[:, None]).T @ xb + np.diag(ridge)
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.max(np.abs(step)) < 1e-10:
            break
    return w[:-1], float(w[-1])


def threshold_for(scores: Matrix, y: Matrix, caught: npt.NDArray[np.bool_], max_fp: float) -> float:
    """The lowest log-odds threshold at which rules-or-model blocks at most max_fp of the benign items."""
    benign = y == 0
    allowed = int(max_fp * benign.sum()) - int((caught & benign).sum())
    ranked = np.sort(scores[benign & ~caught])[::-1]
    if allowed < 0:
        return float("inf")
    if allowed >= len(ranked):
        return float("-inf")
    return float(ranked[allowed]) + 1e-6  # just above the first benign score that must not be blocked


def out_of_fold(x: Matrix, y: Matrix, folds: npt.NDArray[np.int64], penalty: float) -> Matrix:
    """Each item's score by a model fitted without its fold, for each repeat (a column per repeat)."""
    scores = np.zeros(folds.shape)
    for r in range(folds.shape[1]):
        for k in range(FOLDS):
            held = folds[:, r] == k
            w, b = fit(x[~held], y[~held], penalty)
            scores[held, r] = x[held] @ w + b
    return scores


def rates(scores: Matrix, y: Matrix, caught: npt.NDArray[np.bool_], threshold: float) -> tuple[float, float, float]:
    """The model alone's catch rate, and rules-or-model's catch and benign-blocked rates."""
    model = scores >= threshold
    blocked = caught | model
    return float(model[y == 1].mean()), float(blocked[y == 1].mean()), float(blocked[y == 0].mean())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.safety_fit", description=__doc__)
    parser.add_argument("--max-fp", type=float, default=0.01,
                        help="benign share the rules and model together may block out of fold (the target is 2%%; "
                             "the default leaves half of it for phrasing dev has not seen)")
    parser.add_argument("--out", type=Path, default=MODEL_FILE)
    args = parser.parse_args(argv)
    items = [i for i in labelled() if i.split == "dev"]  # the held-out split is never read here
    cues = load_cues(FAMILIES)
    x, y, caught = design(items, cues)
    folds = np.array([[hashlib.sha256(i.origin.encode()).digest()[1 + r] % FOLDS for r in range(REPEATS)]
                      for i in items])
    print(f"dev split: {int(y.sum())} injections, {int((1 - y).sum())} benign, {len(cues.features)} features; "
          f"the rules alone catch {caught[y == 1].mean():.1%} and block {caught[y == 0].mean():.1%}")
    # The rules were tuned on dev and catch all of it, so rules-or-model out of fold says nothing of the model:
    # the penalty is chosen by what the model alone catches out of fold, the stand-in for phrasing no rule knows.
    best: tuple[float, float, float, float, float] | None = None  # (model recall, penalty, threshold, recall, fp)
    for penalty in PENALTIES:
        scores = out_of_fold(x, y, folds, penalty).T.ravel()  # the repeats one after another
        ys, caughts = np.tile(y, REPEATS), np.tile(caught, REPEATS)
        threshold = threshold_for(scores, ys, caughts, args.max_fp)
        alone, recall, fp = rates(scores, ys, caughts, threshold)
        print(f"  penalty {penalty:5.1f}: out of fold the model alone caught {alone:.1%}, rules+model caught "
              f"{recall:.1%}, benign blocked {fp:.1%} (threshold {threshold:.3f})")
        if best is None or alone > best[0]:
            best = (alone, penalty, threshold, recall, fp)
    assert best is not None
    alone, penalty, threshold, recall, fp = best
    weights, bias = fit(x, y, penalty)
    _, fitted_recall, fitted_fp = rates(x @ weights + bias, y, caught, threshold)
    print(f"chosen penalty {penalty}, threshold {threshold:.3f}; refitted on all of dev: caught {fitted_recall:.1%}, "
          f"benign blocked {fitted_fp:.1%} (in-sample)")
    model = {
        "about": "Weights of the cue model (shared/safety/model.py) over the features of injection_cues.toml. "
                 "Written by `python -m bench.safety_fit`; do not edit by hand.",
        "fitted_on": f"dev split of bench/data/safety/ ({int(y.sum())} injections, {int((1 - y).sum())} benign, "
                     "variants included); the held-out test split was not read",
        "date": datetime.date.today().isoformat(),
        "method": f"logistic regression, L2 penalty {penalty} (chosen from {list(PENALTIES)} by {FOLDS}-fold "
                  f"cross-validation on dev, {REPEATS} repeats), Newton's method",
        "threshold_rule": f"lowest log-odds at which rules+model block <= {args.max_fp:.1%} of dev's benign "
                          "items out of fold",
        "cross_validated_dev": {"model_alone_caught": round(alone, 4), "caught": round(recall, 4),
                                "benign_blocked": round(fp, 4)},
        "in_sample_dev": {"caught": round(fitted_recall, 4), "benign_blocked": round(fitted_fp, 4)},
        "threshold": round(threshold, 4),
        "bias": round(bias, 4),
        "features": [{"name": f.name, "family": f.family, "weight": round(float(w), 4)}
                     for f, w in zip(cues.features, weights, strict=True)],
    }
    args.out.write_text(json.dumps(model, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
