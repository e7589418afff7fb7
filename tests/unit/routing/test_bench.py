"""The routing bench and fit: the labelled set's shape, the cost arithmetic, the fit and the threshold."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from bench import routing, routing_fit
from shared.core.settings import ModelPrice
from shared.routing.scorer import Weights

SET = routing.load()
PRICE = {routing.SMALL: ModelPrice(input_per_1m=1.0, output_per_1m=2.0),
         routing.LARGE: ModelPrice(input_per_1m=10.0, output_per_1m=20.0)}


def request(complex_: bool, output_tokens: int = 100, text: str = "hello") -> routing.Request:
    return routing.Request("r", "chitchat", "test", complex_, "why", output_tokens, 0, False,
                           [{"role": "user", "content": text}])


def test_the_set_has_300_labelled_requests_across_every_category() -> None:
    assert len(SET) >= 300
    assert len({r.id for r in SET}) == len(SET)
    categories = Counter(r.category for r in SET)
    assert set(categories) == {"coding", "support", "analysis", "writing", "extraction", "chitchat"}
    for category in categories:
        labels = {r.complex for r in SET if r.category == category}
        assert labels == {True, False}, f"{category} has one label only"
    assert all(r.reason and r.output_tokens > 0 for r in SET)
    assert any(sum(m["role"] == "user" for m in r.messages) > 1 for r in SET)  # multi-turn too


HELD_OUT = {"fresh", "blind", "blind2"}  # batches written after the fit, wholly test (bench/data/routing/README.md)


def test_the_split_is_fixed_in_the_file_and_about_a_quarter_is_test() -> None:
    test = [r for r in SET if r.split == "test"]
    assert {r.split for r in SET} == {"train", "test"}
    assert all(r.split == "test" for r in SET if r.batch in HELD_OUT)
    split_by_rule = [r for r in SET if r.batch not in HELD_OUT]
    assert 0.2 <= sum(r.split == "test" for r in split_by_rule) / len(split_by_rule) <= 0.3
    assert sum(r.complex for r in test) >= 20


def test_cost_is_prompt_and_recorded_output_at_the_price() -> None:
    one = request(False, output_tokens=1_000)
    prompt = 1 + 1 + 3 + 3  # "user", "hello", the message's framing and the reply's priming
    assert routing.cost(one, PRICE[routing.LARGE]) == pytest.approx((prompt * 10.0 + 1_000 * 20.0) / 1e6)


def test_evaluate_counts_complex_sent_small_and_the_saving() -> None:
    requests = [request(True), request(True), request(False), request(False)]
    outcome = routing.evaluate(requests, [0.9, 0.1, 0.2, 0.8], 0.5, PRICE)
    assert outcome.accuracy == 0.5
    assert outcome.complex_to_small == 0.5
    assert outcome.simple_to_large == 0.5
    assert outcome.to_small == 0.5
    # Two of four identical requests at a tenth of the price: 45% saved.
    assert outcome.saved == pytest.approx(0.45)


def test_a_score_at_the_threshold_goes_to_the_complex_model() -> None:
    assert routing.evaluate([request(True)], [0.5], 0.5, PRICE).complex_to_small == 0.0


def test_conversations_for_the_latency_figure_hold_exactly_4000_characters() -> None:
    built = routing.conversations(SET[:40])
    assert {sum(len(m["content"]) for m in messages) for messages in built} == {4000}
    assert [len(m) for m in built] == [len(r.messages) for r in SET[:40]]


def test_prices_default_to_the_published_list_prices_and_say_so() -> None:
    prices, source = routing.prices()
    assert prices[routing.LARGE].output_per_1m > prices[routing.SMALL].output_per_1m
    assert routing.SMALL in source and routing.LARGE in source


def test_the_fit_separates_a_separable_set() -> None:
    rng = np.random.default_rng(0)
    x = rng.random((200, 2))
    y = (x[:, 0] > 0.5).astype(np.float64)  # only the first feature decides
    w, b = routing_fit.fit(x, y, l2=0.01)
    assert w[0] > 5 * abs(w[1])
    assert ((x @ w + b > 0) == (y == 1)).mean() > 0.95


def test_the_upper_bound_is_clopper_pearsons() -> None:
    assert routing.upper_bound(0, 101) == pytest.approx(1 - 0.05 ** (1 / 101), abs=1e-9)  # closed form at 0
    assert routing.upper_bound(3, 10) == pytest.approx(0.6066, abs=1e-4)  # the published table's value
    assert routing.upper_bound(1, 31) > routing.upper_bound(0, 31) > 0.0


def test_the_threshold_lets_through_only_misses_the_bound_allows_with_confidence() -> None:
    scores = np.array([0.1, 0.2, 0.3, 0.4, 0.9, 0.05])
    y = np.array([1, 1, 1, 1, 1, 0], dtype=np.float64)
    assert routing_fit.threshold_for(scores, y, 0.05) == 0.1  # five rows cannot show 5%: none may fall below
    # One miss in five: at 95% the rate may be up to 65.7%; allowed only under a bound that high.
    assert routing_fit.threshold_for(scores, y, 0.66) == 0.2
    assert routing_fit.threshold_for(scores, y, 0.65) == 0.1


def test_the_fit_script_writes_weights_that_meet_its_own_threshold_rule(tmp_path: Path) -> None:
    out = tmp_path / "weights.json"
    assert routing_fit.main(["--out", str(out)]) == 0
    written = Weights.from_json(json.loads(out.read_text(encoding="utf-8")))
    train = [r for r in SET if r.split == "train"]
    scores = routing.scores_of(train, written)
    outcome = routing.evaluate(train, scores, float(written.meta["threshold"]), PRICE)
    assert outcome.complex_to_small <= routing.TARGET_COMPLEX_TO_SMALL
    assert set(written.weights) == set(routing_fit.matrix(train[:1])[0])


def test_the_report_runs_and_marks_both_targets(capsys: pytest.CaptureFixture[str]) -> None:
    assert routing.main([]) == 0
    printed = capsys.readouterr().out
    assert "target <= 5%" in printed and "target >= 50%" in printed
    assert "perfect routing" in printed


def test_the_report_reads_the_batches_asked_for_alone(capsys: pytest.CaptureFixture[str]) -> None:
    blind = [r for r in SET if r.batch in ("blind", "blind2")]
    assert routing.main(["--batch", "blind", "--batch", "blind2", "--set", "bare"]) == 0
    assert f"split test, {len(blind)} requests ({sum(r.complex for r in blind)} complex" in capsys.readouterr().out
    with pytest.raises(SystemExit) as refused:
        routing.main(["--batch", "no-such-batch"])
    assert refused.value.code == 2
    assert "no test request is of batch no-such-batch" in capsys.readouterr().err


def test_the_whole_prompts_length_is_read_but_never_weighed() -> None:
    names, x, y = routing_fit.matrix(SET[:60])
    column = names.index("tokens")
    assert not x[:, column].any()
    w, _ = routing_fit.fit(x, y, l2=0.01)
    assert w[column] == 0.0


def test_out_of_fold_scores_a_row_with_a_model_that_never_saw_its_fold() -> None:
    # Each pair of rows (a request's two forms) has a feature of its own that gives its label away:
    # with the pair in one fold, no model fitted on the other folds can see it.
    pairs = 20
    x = np.vstack([np.eye(pairs), np.eye(pairs)])
    y = np.tile(np.arange(pairs) % 2, 2).astype(np.float64)
    shared = np.tile(np.arange(pairs) % 5, 2)
    assert np.allclose(routing_fit.out_of_fold(x, y, shared, 0.01), 0.5, atol=0.1)  # nothing learnt
    split = np.concatenate([np.arange(pairs) % 5, (np.arange(pairs) + 1) % 5])
    leaked = routing_fit.out_of_fold(x, y, split, 0.01)
    assert ((leaked >= 0.5) == (y == 1)).all()  # the twin in another fold gave every label away


def test_log_loss_is_the_mean_negative_log_likelihood() -> None:
    assert routing_fit.log_loss(np.array([0.5, 0.5]), np.array([1.0, 0.0])) == pytest.approx(np.log(2))
    assert routing_fit.log_loss(np.array([1.0]), np.array([0.0])) < 30  # clipped, not infinite
