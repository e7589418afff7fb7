"""The second opinion's prompt and the reading of its verdict (shared/routing/second_opinion.py)."""

from __future__ import annotations

import pytest

from shared.routing.second_opinion import CONVERSATION_CHARS, INSTRUCTION, judge_prompt, verdict


def test_the_judge_reads_the_conversation_without_the_apps_context() -> None:
    prompt = judge_prompt([
        {"role": "system", "content": "You are Acme's assistant. SECRET-SYSTEM-PROMPT"},
        {"role": "user", "content": "<documents>RETRIEVED-PASSAGE</documents>\nWhat is our refund window?"},
        {"role": "assistant", "content": "30 days."},
        {"role": "user", "content": [{"type": "text", "text": "And for opened items?"}]},
    ])

    assert prompt[0] == ("system", INSTRUCTION)
    role, text = prompt[1]
    assert role == "user" and len(prompt) == 2
    assert "User: What is our refund window?\n\nAssistant: 30 days.\n\nUser: And for opened items?" in text
    assert "SECRET-SYSTEM-PROMPT" not in text and "RETRIEVED-PASSAGE" not in text


def test_a_long_conversation_is_read_from_its_end() -> None:
    text = judge_prompt([{"role": "user", "content": "x" * 50_000 + " the last ask"}])[1][1]

    assert "the last ask" in text and len(text) < CONVERSATION_CHARS + 100


@pytest.mark.parametrize(("answer", "tier"), [
    ("simple", "simple"), ("Complex.", "complex"), (" **COMPLEX**", "complex"), ('"simple"', "simple"),
    ("Simple because", "simple"),
    ("", None), ("I think complex", None), ("simplest", None), ("medium", None),
])
def test_the_verdict_is_the_first_word_or_nothing(answer: str, tier: str | None) -> None:
    assert verdict(answer) == tier
