"""The precision guard: prompts whose embeddings are close but that ask different things."""

from __future__ import annotations

import pytest

from shared.state.semantic_veto import veto
from tools.simulator.embeddings import cosine, embed


@pytest.mark.parametrize(("a", "b", "reason"), [
    ("What is the capital of France?", "What is the capital of Spain?", "terms"),
    ("How do I reset my password?", "How do I reset my username?", "terms"),
    ("How do I install Python 3.11 on Ubuntu?", "How do I install Python 3.12 on Ubuntu?", "numbers"),
    ("List 5 tips for better sleep.", "List 10 tips for better sleep.", "numbers"),
    ("Why does my test pass locally?", "Why doesn't my test pass locally?", "negation"),
    ("Which features are included in the free plan?", "Which features are not included in the free plan?",
     "negation"),
    ("Convert 100 Celsius to Fahrenheit.", "Convert 100 Fahrenheit to Celsius.", "direction"),
    ("Is Python faster than Java?", "Is Java faster than Python?", "direction"),
    ("How do I read a file line by line in C++?", "How do I read a file line by line in C#?", "terms"),
    ("Who is the CEO of Microsoft?", "Who was the CEO of Microsoft?", "terms"),
])
def test_near_duplicates_that_ask_something_else_are_vetoed(a: str, b: str, reason: str) -> None:
    assert veto(a, b) == reason


def test_the_veto_is_what_stops_france_from_answering_spain() -> None:
    a, b = "What is the capital of France?", "What is the capital of Spain?"
    assert cosine(embed(a, 256), embed(b, 256)) > 0.8  # the embedding alone would serve Paris for Madrid
    assert veto(a, b) == "terms"


@pytest.mark.parametrize(("a", "b"), [
    ("How do I reset my password?", "How can I reset my password?"),
    ("Summarize the following meeting notes.", "Please summarize the following meeting notes."),
    ("How do I convert a string to an integer in Python?", "In Python, how do I convert a string to an integer?"),
    ("What is the difference between a list and a tuple in Python?",
     "What's the difference between Python lists and tuples?"),
    ("What does SQL JOIN do?", "What does a JOIN do in SQL?"),
    ("Where is my order?", "Where\u2019s my order?"),
])
def test_paraphrases_that_only_rephrase_the_question_pass(a: str, b: str) -> None:
    assert veto(a, b) is None and veto(b, a) is None
