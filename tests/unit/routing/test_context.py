"""The realistic set: each request with the context its application sends, its label and output kept,
and the scorer routing it as it routes the bare request."""

from __future__ import annotations

from collections import Counter

import pytest

from bench import routing, routing_context
from shared.core.tokens import counter_for
from shared.routing.scorer import score_chat

BARE = routing.load_set("bare")
REAL = routing.load_set("realistic")


def test_context_changes_the_messages_and_nothing_else() -> None:
    assert [r.id for r in REAL] == [r.id for r in BARE]
    for bare, real in zip(BARE, REAL, strict=True):
        assert (real.complex, real.reason, real.output_tokens, real.tools, real.response_format, real.split) == (
            bare.complex, bare.reason, bare.output_tokens, bare.tools, bare.response_format, bare.split)
        assert real.messages[0]["role"] == "system"
        assert real.messages[-1]["role"] == "user"
        # The bare ask is still there, whole, at the end (inside a retrieval template or alone).
        assert str(bare.messages[-1]["content"]) in str(real.messages[-1]["content"])


def test_the_same_request_always_gets_the_same_context() -> None:
    again = routing.load_set("realistic")
    assert [r.messages for r in again] == [r.messages for r in REAL]


def test_every_category_has_its_applications_and_prompts_vary_in_length() -> None:
    count = counter_for("gpt-4o")
    sizes = [count(str(r.messages[0]["content"])) for r in REAL]
    assert min(sizes) < 200 and max(sizes) > 1_500
    apps = Counter(routing_context.app_for(r.id, r.category).name for r in REAL)
    assert set(apps) == {app.name for apps_ in routing_context.APPS.values() for app in apps_}


def test_support_and_extraction_retrieve_into_the_system_prompt_and_analysis_into_the_ask() -> None:
    support = [r for r in REAL if r.category == "support"]
    assert all("Article KB-" in str(r.messages[0]["content"]) for r in support)
    analysis = [str(r.messages[-1]["content"]) for r in REAL if r.category == "analysis"]
    with_documents = [m for m in analysis if "<documents>" in m or "Context information is below" in m]
    assert 0.25 <= len(with_documents) / len(analysis) <= 0.75  # half retrieve, by the documented rule


def test_a_share_of_single_turn_chats_carries_an_earlier_exchange() -> None:
    grown = [r for b, r in zip(BARE, REAL, strict=True)
             if r.category == "chitchat" and len(b.messages) == 1 and len(r.messages) > 2]
    singles = [b for b in BARE if b.category == "chitchat" and len(b.messages) == 1]
    assert 0.15 <= len(grown) / len(singles) <= 0.5


def test_the_shipped_scorer_routes_a_request_the_same_with_or_without_its_context() -> None:
    # The ask is what is hard: a 2,000-token system prompt or three retrieved articles must not move it.
    agree = [(score_chat(b.messages, tools=b.tools, response_format=b.response_format).value >= 0.5)
             == (score_chat(r.messages, tools=r.tools, response_format=r.response_format).value >= 0.5)
             for b, r in zip(BARE, REAL, strict=True)]
    assert sum(agree) / len(agree) >= 0.97


@pytest.mark.parametrize("which", ["bare", "realistic"])
def test_the_report_prints_the_set_it_is_asked_for(which: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert routing.main(["--set", which]) == 0
    printed = capsys.readouterr().out
    assert f"=== set {which}:" in printed
    assert "=== set " + ({"bare", "realistic"} - {which}).pop() not in printed


def test_the_default_report_prints_the_bare_figure_beside_the_realistic_one(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert routing.main([]) == 0
    printed = capsys.readouterr().out
    assert printed.index("=== set bare:") < printed.index("=== set realistic:")
    assert printed.count("target >= 50%") == 2
