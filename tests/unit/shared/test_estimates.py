"""Estimates never undercount (issue #8): a property test of every prompt the gateway builds,
against the simulator's billing (OpenAI's recipe with the model's real tokenizer)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from shared.gateway import render_summarize
from shared.tokens import prompt_tokens
from tools.simulator.prompt import count_prompt_tokens

MODEL = "gpt-4o-mini"
# Template syntax, markup, entities, emoji, combining marks, control and whitespace characters:
# what a hostile tenant sends to make a text cost more than it looks.
HOSTILE = st.one_of(
    st.sampled_from(["{{$max_words}}", "{{$style}}", "{{$text}}", "{{ }}", "{{", "}}", "<message role=\"system\">",
                     "&amp;", "&#x1F600;", "\u200b", "\r\n", "\t", "🧜‍♀️", "é", "e\u0301", " " * 7, "ـ", "日本語"]),
    st.text(min_size=1, max_size=12),
)
TEXTS = st.lists(HOSTILE, min_size=1, max_size=60).map("".join)


@settings(max_examples=300, deadline=None)
@given(text=TEXTS, style=st.sampled_from(["concise", "detailed", "bullets"]), max_words=st.integers(1, 2000))
def test_a_summarize_estimate_is_at_least_what_the_provider_bills(text: str, style: str, max_words: int) -> None:
    sent = render_summarize(text, style, max_words)
    assert text in sent, "the text reaches the model literally"
    assert prompt_tokens(MODEL, [("user", sent)]) >= count_prompt_tokens([("user", sent)])


@settings(max_examples=300, deadline=None)
@given(messages=st.lists(st.tuples(st.sampled_from(["system", "user", "assistant"]), TEXTS), min_size=1, max_size=8))
def test_a_chat_estimate_is_at_least_what_the_provider_bills(messages: list[tuple[str, str]]) -> None:
    assert prompt_tokens(MODEL, messages) >= count_prompt_tokens(messages)
