"""Token accounting (o200k_base, gpt-4o-mini's tokenizer) and answer generation of the simulator."""

from __future__ import annotations

import bpe_openai
import pytest

from tools.simulator.prompt import count_prompt_tokens
from tools.simulator.text import (
    ANSWER_TOKEN_SPREAD,
    FALLBACK_WORDS,
    MIN_ANSWER_TOKENS,
    WORD_RE,
    Answer,
    InputTooLong,
    count_tokens,
    generate_answer,
    stable_hash,
)

# The reference encoder, straight from the package, so the simulator's helpers are checked too.
O200K = bpe_openai.get_encoding("o200k_base")

PROMPTS = [
    [("user", "Summarise the quarterly report: revenue grew 12% in Europe, costs fell.")],
    [("system", "You are terse."), ("user", "What is the capital of France?")],
    [("user", "Straße über naïve café — déjà vu, ünïcödé wörds!")],
    [("user", "a")],
    [("user", "x" * 5 + " y_z 42 " * 30)],
    [("user", "日本語のテキストを要約してください。東京と大阪の天気")],
    [("user", "Привет, мир! Как дела в гаванях и портах?")],
]


def o200k(text: str) -> int:
    return len(O200K.encode(text))


def target_of(messages: list[tuple[str, str]]) -> int:
    prompt = "\n".join(f"{role}\x1f{text}" for role, text in messages)
    return MIN_ANSWER_TOKENS + stable_hash(prompt) % ANSWER_TOKEN_SPREAD


def assert_consistent(answer: Answer) -> None:
    """Usage is the exact o200k count of the content, and the stream pieces rebuild it."""
    assert answer.completion_tokens == o200k(answer.content)
    assert "".join(piece.text for piece in answer.pieces) == answer.content
    assert sum(piece.tokens for piece in answer.pieces) == answer.completion_tokens


def test_tokens_are_o200k_not_words_and_symbols() -> None:
    assert count_tokens("harbour") == o200k("harbour") == 2
    assert count_tokens("don't") == o200k("don't") == 1
    assert count_tokens("Hello there, harbour master") == 5
    assert count_tokens("") == 0


def test_special_token_text_is_counted_as_plain_text() -> None:
    # The API tokenizes "<|endoftext|>" in a message as ordinary characters; it must not raise.
    assert count_tokens("<|endoftext|>") == len(O200K.encode("<|endoftext|>", disallowed_special=()))
    assert count_tokens("<|endoftext|>") > 1


def test_prompt_tokens_add_three_per_message_and_three_for_the_reply() -> None:
    contents = ["Hi", "Hello there, harbour master!", ""]

    messages = [("user", text) for text in contents]
    assert count_prompt_tokens(messages) == sum(o200k(text) + 1 + 3 for text in contents) + 3
    assert count_prompt_tokens([("user", "Hello there, harbour master")]) == 1 + 5 + 3 + 3
    assert count_prompt_tokens([("system", "Be brief."), ("user", "Hi")]) == (1 + 3 + 3) + (1 + 1 + 3) + 3


def test_a_text_too_long_for_the_tokenizer_is_an_input_error() -> None:
    with pytest.raises(InputTooLong):
        count_tokens("a " * 600_000)


@pytest.mark.parametrize("messages", PROMPTS)
def test_answer_is_deterministic_target_long_and_its_usage_is_exact(messages: list[tuple[str, str]]) -> None:
    answer = generate_answer(messages, seed=1, max_tokens=None)

    assert generate_answer(messages, seed=1, max_tokens=None) == answer
    assert_consistent(answer)
    assert answer.completion_tokens == target_of(messages)
    assert MIN_ANSWER_TOKENS <= answer.completion_tokens < MIN_ANSWER_TOKENS + ANSWER_TOKEN_SPREAD
    assert answer.finish_reason == "stop"
    assert answer.content.endswith(".")


@pytest.mark.parametrize("messages", PROMPTS)
def test_answer_words_come_from_the_prompt(messages: list[tuple[str, str]]) -> None:
    prompt_words = {word.lower() for _, text in messages for word in WORD_RE.findall(text)}
    answer = generate_answer(messages, seed=3, max_tokens=None)

    assert {word.lower() for word in WORD_RE.findall(answer.content)} <= prompt_words


def test_stream_pieces_are_single_tokens_unless_a_character_spans_tokens() -> None:
    ascii_answer = generate_answer(PROMPTS[0], seed=0, max_tokens=None)
    assert all(piece.tokens == 1 for piece in ascii_answer.pieces)
    assert [piece.text for piece in ascii_answer.pieces] == [
        O200K.decode([token]) for token in O200K.encode(ascii_answer.content)
    ]

    # Rare CJK characters take several byte-level tokens each; no piece may carry half a character.
    rare = [("user", "龘 鱻 齉 靐 龘龘 鱻鱻")]
    answer = generate_answer(rare, seed=0, max_tokens=None)
    assert_consistent(answer)
    assert any(piece.tokens > 1 for piece in answer.pieces)
    assert all("\ufffd" not in piece.text for piece in answer.pieces)


def test_seed_changes_the_words_but_not_the_length() -> None:
    one = generate_answer(PROMPTS[0], seed=1, max_tokens=None)
    two = generate_answer(PROMPTS[0], seed=2, max_tokens=None)

    assert one.content != two.content
    assert one.completion_tokens == two.completion_tokens


def test_different_prompts_give_different_answers() -> None:
    answers = {generate_answer(messages, seed=0, max_tokens=None).content for messages in PROMPTS}
    assert len(answers) == len(PROMPTS)


def test_max_tokens_keeps_the_first_tokens_and_reports_length() -> None:
    full = generate_answer(PROMPTS[0], seed=0, max_tokens=None)
    capped = generate_answer(PROMPTS[0], seed=0, max_tokens=5)

    assert capped.completion_tokens == o200k(capped.content) == 5
    assert capped.content == O200K.decode(O200K.encode(full.content)[:5])
    assert capped.finish_reason == "length"
    assert full.content.startswith(capped.content)


@pytest.mark.parametrize("messages", PROMPTS)
def test_every_cap_gives_an_exact_count_and_a_start_of_the_answer(messages: list[tuple[str, str]]) -> None:
    full = generate_answer(messages, seed=0, max_tokens=None)

    for cap in range(1, full.completion_tokens):
        capped = generate_answer(messages, seed=0, max_tokens=cap)
        assert_consistent(capped)
        assert capped.finish_reason == "length"
        assert capped.completion_tokens <= cap
        assert full.content.startswith(capped.content)


def test_a_cut_inside_a_character_falls_back_to_a_word_boundary() -> None:
    # 龘 is several tokens: the first one alone is not text, so the cut goes back before the word.
    messages = [("user", "龘")]
    full = generate_answer(messages, seed=0, max_tokens=None)
    first_word_tokens = o200k(full.content.split(" ")[0])
    assert first_word_tokens > 1

    capped = generate_answer(messages, seed=0, max_tokens=1)

    assert capped.content == ""
    assert capped.completion_tokens == 0
    assert capped.pieces == ()
    assert capped.finish_reason == "length"


def test_a_cap_at_or_above_the_natural_length_changes_nothing() -> None:
    full = generate_answer(PROMPTS[1], seed=0, max_tokens=None)

    assert generate_answer(PROMPTS[1], seed=0, max_tokens=full.completion_tokens) == full
    assert generate_answer(PROMPTS[1], seed=0, max_tokens=10_000) == full


def test_a_prompt_without_words_still_gets_an_answer() -> None:
    answer = generate_answer([("user", "?!")], seed=0, max_tokens=None)

    assert answer.completion_tokens == target_of([("user", "?!")])
    assert_consistent(answer)
    assert {word.lower() for word in WORD_RE.findall(answer.content)} <= set(FALLBACK_WORDS)


def test_a_prompt_whose_only_word_is_longer_than_any_answer_uses_the_fallback_words() -> None:
    messages = [("user", "1234567890" * 30)]  # one word of 100 tokens
    answer = generate_answer(messages, seed=0, max_tokens=None)

    assert answer.completion_tokens == target_of(messages)
    assert_consistent(answer)
    assert {word.lower() for word in WORD_RE.findall(answer.content)} <= set(FALLBACK_WORDS)
