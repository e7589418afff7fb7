"""The complexity scorer: its shape, its arithmetic, its determinism and the shipped weights."""

from __future__ import annotations

import json
import math

from shared.routing.features import features
from shared.routing.scorer import WEIGHTS_PATH, Score, Weights, default_weights, score_chat

GREETING = [{"role": "user", "content": "hi, thanks for the help yesterday!"}]
DESIGN = [{"role": "user", "content": (
    "Design a multi-region active-active architecture for a payment ledger. Compare CRDTs with a "
    "consensus log, explain the trade-offs step by step and why you would pick one. It must never "
    "double-spend, should keep p99 writes under 50 ms and must survive the loss of a region.")}]


def test_a_score_is_between_0_and_1_and_carries_the_features_it_weighed() -> None:
    score = score_chat(DESIGN)
    assert isinstance(score, Score)
    assert 0.0 <= score.value <= 1.0
    assert score.features == features(DESIGN, tools=0, response_format=False)


def test_the_shipped_weights_name_every_feature_and_no_other() -> None:
    # A feature added without a re-fit (or a weight left for a feature removed) fails here.
    assert set(default_weights().weights) == set(score_chat(GREETING).features)


def test_the_shipped_weights_route_a_design_question_complex_and_a_greeting_simple() -> None:
    threshold = float(default_weights().meta["threshold"])
    assert score_chat(DESIGN).value >= threshold > score_chat(GREETING).value


def test_the_shipped_weights_say_what_they_were_fitted_on() -> None:
    meta = json.loads(WEIGHTS_PATH.read_text(encoding="utf-8"))["meta"]
    assert {"fitted_on", "date", "threshold", "train", "test"} <= set(meta)
    assert "requests.jsonl" in meta["fitted_on"]


def test_the_same_request_scores_the_same() -> None:
    assert score_chat(DESIGN, tools=2, response_format=True) == score_chat(DESIGN, tools=2, response_format=True)


def test_the_score_is_the_logistic_of_the_weighted_sum() -> None:
    weights = Weights({"tools": 2.0, "response_format": -1.0}, bias=-0.5)
    value = score_chat(GREETING, tools=3, response_format=True, weights=weights).value
    assert math.isclose(value, 1 / (1 + math.exp(-(-0.5 + 2.0 * 1.0 - 1.0 * 1.0))))


def test_a_very_negative_sum_scores_near_0_without_overflow() -> None:
    assert score_chat(GREETING, weights=Weights({}, bias=-2000.0)).value == 0.0
    assert score_chat(GREETING, weights=Weights({}, bias=2000.0)).value == 1.0


def test_a_weight_for_a_feature_the_request_lacks_counts_for_nothing() -> None:
    with_unknown = Weights({"no_such_feature": 50.0}, bias=0.0)
    assert score_chat(GREETING, weights=with_unknown).value == 0.5


def test_weights_round_trip_through_json() -> None:
    shipped = json.loads(WEIGHTS_PATH.read_text(encoding="utf-8"))
    assert Weights.from_json(shipped).to_json() == {**shipped, "bias": float(shipped["bias"])}
