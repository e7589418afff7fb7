"""The complexity scorer: its shape, its determinism, and that the shipped weights order requests sensibly."""

from __future__ import annotations

import json

import pytest

from shared.routing.features import features, text_of
from shared.routing.scorer import WEIGHTS_PATH, Score, Weights, default_weights, score_chat

GREETING = [{"role": "user", "content": "hi, thanks for the help yesterday!"}]
DESIGN = [{"role": "user", "content": (
    "Design a multi-region active-active architecture for a payment ledger. Compare CRDTs with a "
    "consensus log, explain the trade-offs step by step and why you would pick one. It must never "
    "double-spend, should keep p99 writes under 50 ms and must survive the loss of a region.")}]


def test_a_score_is_between_0_and_1_and_names_its_features() -> None:
    score = score_chat(DESIGN)
    assert isinstance(score, Score)
    assert 0.0 <= score.value <= 1.0
    assert set(score.features) == set(default_weights().weights)


def test_a_design_question_scores_above_a_greeting() -> None:
    assert score_chat(DESIGN).value > 0.5 > score_chat(GREETING).value


def test_the_same_request_scores_the_same() -> None:
    assert score_chat(DESIGN, tools=2) == score_chat(DESIGN, tools=2)


def test_text_parts_count_as_the_same_text_as_a_string() -> None:
    parts = [{"role": "user", "content": [{"type": "text", "text": DESIGN[0]["content"]},
                                          {"type": "image_url", "image_url": {"url": "https://x/y.png"}}]}]
    assert score_chat(parts) == score_chat(DESIGN)


def test_tools_and_response_format_raise_the_score() -> None:
    plain = score_chat(GREETING).value
    assert score_chat(GREETING, tools=3).value > plain
    assert score_chat(GREETING, response_format=True).value > plain


def test_conversation_depth_counts_user_turns() -> None:
    turns = [{"role": r, "content": "ok"} for r in ["system", "user", "assistant", "user", "assistant", "user"]]
    assert features(turns, tools=0, response_format=False)["depth"] == pytest.approx(2 / 4)


def test_non_latin_share_of_the_last_user_message() -> None:
    values = features([{"role": "user", "content": "Объясни, почему небо голубое"}], tools=0, response_format=False)
    assert values["non_latin"] == pytest.approx(1.0)


@pytest.mark.parametrize("content", [None, 42, [{"type": "input_audio"}], [1, "x"]])
def test_content_without_text_scores_as_empty(content: object) -> None:
    assert text_of(content) == ""
    assert 0.0 <= score_chat([{"role": "user", "content": content}]).value <= 1.0


def test_weights_round_trip_through_json() -> None:
    shipped = json.loads(WEIGHTS_PATH.read_text(encoding="utf-8"))
    assert Weights.from_json(shipped).to_json() == {**shipped, "bias": float(shipped["bias"])}


def test_explicit_weights_replace_the_shipped_ones() -> None:
    always = Weights(weights={}, bias=5.0)
    assert score_chat(GREETING, weights=always).value > 0.99
