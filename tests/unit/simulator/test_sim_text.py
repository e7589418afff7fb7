"""Tokenizer, prompt accounting and answer generation of the simulator."""

from __future__ import annotations

import pytest

from tools.simulator.text import (
    ANSWER_TOKEN_SPREAD,
    MIN_ANSWER_TOKENS,
    WORD_RE,
    count_prompt_tokens,
    count_tokens,
    generate_answer,
    tokenize,
)

PROMPTS = [
    [("user", "Summarise the quarterly report: revenue grew 12% in Europe, costs fell.")],
    [("system", "You are terse."), ("user", "What is the capital of France?")],
    [("user", "Straße über naïve café — déjà vu, ünïcödé wörds!")],
    [("user", "a")],
    [("user", "x" * 5 + " y_z 42 " * 30)],
]


def test_tokenizer_splits_words_and_single_symbols() -> None:
    assert tokenize("Hello, world! It's 2024.") == ["Hello", ",", "world", "!", "It", "'", "s", "2024", "."]
    assert count_tokens("  ") == 0


def test_prompt_tokens_add_three_per_message_and_three_for_the_reply() -> None:
    assert count_prompt_tokens(["Hi", "Hello there!"]) == (1 + 3) + (3 + 3) + 3


@pytest.mark.parametrize("messages", PROMPTS)
def test_answer_is_deterministic_and_its_usage_is_exact(messages: list[tuple[str, str]]) -> None:
    answer = generate_answer(messages, seed=1, max_tokens=None)

    assert generate_answer(messages, seed=1, max_tokens=None) == answer
    assert count_tokens(answer.content) == answer.completion_tokens
    # One token per piece is what lets a stream send exactly one token per chunk.
    assert all(len(tokenize(piece)) == 1 for piece in answer.pieces)
    assert MIN_ANSWER_TOKENS <= answer.completion_tokens < MIN_ANSWER_TOKENS + ANSWER_TOKEN_SPREAD
    assert answer.finish_reason == "stop"
    assert answer.content.endswith(".")


@pytest.mark.parametrize("messages", PROMPTS)
def test_answer_words_come_from_the_prompt(messages: list[tuple[str, str]]) -> None:
    prompt_words = {word.lower() for _, text in messages for word in WORD_RE.findall(text)}
    answer = generate_answer(messages, seed=3, max_tokens=None)

    assert {word.lower() for word in WORD_RE.findall(answer.content)} <= prompt_words


def test_seed_changes_the_words_but_not_the_length() -> None:
    one = generate_answer(PROMPTS[0], seed=1, max_tokens=None)
    two = generate_answer(PROMPTS[0], seed=2, max_tokens=None)

    assert one.content != two.content
    assert one.completion_tokens == two.completion_tokens


def test_different_prompts_give_different_answers() -> None:
    answers = {generate_answer(messages, seed=0, max_tokens=None).content for messages in PROMPTS}
    assert len(answers) == len(PROMPTS)


def test_max_tokens_keeps_a_prefix_and_reports_length() -> None:
    full = generate_answer(PROMPTS[0], seed=0, max_tokens=None)
    capped = generate_answer(PROMPTS[0], seed=0, max_tokens=5)

    assert capped.completion_tokens == count_tokens(capped.content) == 5
    assert capped.finish_reason == "length"
    assert full.content.startswith(capped.content)


def test_a_cap_at_or_above_the_natural_length_changes_nothing() -> None:
    full = generate_answer(PROMPTS[1], seed=0, max_tokens=None)

    assert generate_answer(PROMPTS[1], seed=0, max_tokens=full.completion_tokens) == full
    assert generate_answer(PROMPTS[1], seed=0, max_tokens=10_000) == full


def test_a_prompt_without_words_still_gets_an_answer() -> None:
    answer = generate_answer([("user", "?!")], seed=0, max_tokens=None)

    assert answer.completion_tokens >= MIN_ANSWER_TOKENS
    assert count_tokens(answer.content) == answer.completion_tokens
