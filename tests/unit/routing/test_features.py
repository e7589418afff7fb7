"""The features the scorer weighs: each responds to what it names and to nothing else."""

from __future__ import annotations

from typing import Any

import pytest

from shared.routing.features import features, text_of


def one(content: Any, **kwargs: Any) -> dict[str, float]:
    return features([{"role": "user", "content": content}], tools=kwargs.get("tools", 0),
                    response_format=kwargs.get("response_format", False))


def test_code_and_prose_differ() -> None:
    code = one("```python\ndef area(r):\n    return 3.14 * r ** 2\n```\nwhy is this_value wrong?")
    prose = one("What a lovely morning it was on the lake, quiet and bright.")
    assert code["code"] >= 0.25  # two fences, def, return, an indent, an underscore: 6 of 24
    assert prose["code"] == 0.0


def test_a_stack_trace_is_seen() -> None:
    trace = one('Traceback (most recent call last):\n  File "a.py", line 3, in <module>\nKeyError: 1')
    assert trace["trace"] > 0.0
    assert one("I traced my family tree back to 1820.")["trace"] == 0.0


def test_reasoning_asks_count_in_english_and_in_other_scripts() -> None:
    assert one("Compare the two designs and explain why, step by step.")["reasoning"] == 1.0
    assert one("请分析这两个方案并比较它们。")["reasoning"] > 0.0
    assert one("What's the capital of France?")["reasoning"] == 0.0


def test_constraints_count_words_and_list_items() -> None:
    listed = one("Write a poem:\n- at most 8 lines\n- no rhymes\n1) about rain")
    assert listed["constraints"] == pytest.approx((1 + 3) / 6)  # "at most" and three list lines
    assert one("Write a poem about rain.")["constraints"] == 0.0


def test_a_pasted_document_lengthens_the_message_but_not_the_ask() -> None:
    document = "The shipment left on 3 March. " * 80
    values = one("Extract the dates.\n\n" + document)
    assert values["last_tokens"] > values["ask_tokens"] + 0.3
    assert values["numbers"] == 0.0  # numbers in the document are not quantities the ask combines


def test_numbers_in_the_ask_count() -> None:
    assert one("We burn $180k a month, have $2.4M, grow 3% and 8%: when do we run out?")["numbers"] == 0.5


def test_only_what_the_user_asks_is_the_task() -> None:
    system = {"role": "system", "content": "Always analyze, compare and justify, step by step."}
    asked = features([system, {"role": "user", "content": "hello"}], tools=0, response_format=False)
    assert asked["reasoning"] == 0.0
    assert asked["tokens"] > asked["last_tokens"]  # the system prompt is still context to read


def test_a_simple_ask_is_read_from_the_last_user_message() -> None:
    assert one("Translate to German: 'good morning'")["simple_ask"] == 1.0
    turns = [{"role": "user", "content": "translate this"}, {"role": "assistant", "content": "ok"},
             {"role": "user", "content": "Now design a sharding scheme for it."}]
    assert features(turns, tools=0, response_format=False)["simple_ask"] == 0.0


def test_conversation_depth_counts_user_turns() -> None:
    turns = [{"role": r, "content": "ok"} for r in ["system", "user", "assistant", "user", "assistant", "user"]]
    assert features(turns, tools=0, response_format=False)["depth"] == pytest.approx(2 / 4)


def test_non_latin_is_the_share_of_non_ascii_characters_of_the_last_message() -> None:
    assert one("Объясни, почему небо голубое")["non_latin"] == pytest.approx(24 / 25)  # the comma is ASCII
    assert one("Où est la bibliothèque, s'il vous plaît ?")["non_latin"] < 0.1


def test_tools_and_response_format_are_read_from_the_request() -> None:
    values = one("hi", tools=5, response_format=True)
    assert values["tools"] == 1.0
    assert values["response_format"] == 1.0
    assert one("hi")["tools"] == one("hi")["response_format"] == 0.0


def test_lengths_grow_with_the_conversation_and_saturate() -> None:
    short, long, huge = one("Hello there."), one("word " * 500), one("word " * 50_000)
    assert short["tokens"] < long["tokens"] < 1.0
    assert huge["tokens"] == 1.0


def test_text_parts_read_as_the_same_text_as_a_string() -> None:
    parts = [{"type": "text", "text": "Compare A and B"}, {"type": "image_url", "image_url": {"url": "https://x/y.png"}}]
    assert one(parts) == one("Compare A and B")


@pytest.mark.parametrize("content", [None, 42, [{"type": "input_audio"}], [1, "x"]])
def test_content_without_text_reads_as_empty(content: object) -> None:
    assert text_of(content) == ""
    assert one(content) == one("")


def test_no_messages_at_all_gives_zero_features() -> None:
    assert set(features([], tools=0, response_format=False).values()) == {0.0}


def test_parts_of_an_ask_after_an_easy_first_one_count() -> None:
    values = one("Extract the dates, then infer which deadline was missed; also say who missed it.")
    assert values["simple_ask"] == 1.0
    assert values["subtasks"] == 1.0  # " then ", "; " and " also "
    assert values["reasoning"] > 0.0  # "infer"
    assert one("Extract the dates.")["subtasks"] == 0.0


APP_PROMPT = ("You are Forge Assistant. Always analyze, compare and justify step by step; you must never guess.\n"
              "```python\ndef example(x: int) -> int:\n    return x * 2\n```\n"
              "If the traceback points to library code, find the first frame in the user's code.\n" * 30)


def test_a_long_system_prompt_moves_no_weighed_feature() -> None:
    ask = [{"role": "user", "content": "How do I reverse a list in Python?"}]
    bare = features(ask, tools=0, response_format=False)
    sent = features([{"role": "system", "content": APP_PROMPT}, *ask], tools=0, response_format=False)
    assert sent["tokens"] > bare["tokens"] + 0.3  # the whole prompt is still reported
    assert {k: v for k, v in sent.items() if k != "tokens"} == {k: v for k, v in bare.items() if k != "tokens"}


@pytest.mark.parametrize("layout", [
    "<documents>\n<document index=\"1\">{docs}</document>\n</documents>\n\n{ask}",
    "Context information is below.\n---------------------\n{docs}\n---------------------\n"
    "Given the context information and not prior knowledge, answer the query.\nQuery: {ask}\nAnswer: ",
])
def test_documents_retrieved_into_the_ask_move_no_weighed_feature(layout: str) -> None:
    ask = "Which region grew fastest?"
    docs = ("Regional sales FY2026 (USD thousands): NA 61,220; EMEA 34,870 (+27%); APAC 12,430; LATAM 4,910. "
            "Analyze the trade-offs and compare scenarios step by step; you must consider the root cause. ") * 10
    bare = one(ask)
    sent = one(layout.format(docs=docs, ask=ask))
    assert sent["tokens"] > bare["tokens"] + 0.3
    assert {k: v for k, v in sent.items() if k != "tokens"} == {k: v for k, v in bare.items() if k != "tokens"}


def test_an_ask_for_a_judgement_counts_however_short() -> None:
    assert one("Should we exit crypto custody now?")["judgement"] > 0.0
    assert one("Is it wrong to lie to a friend?")["judgement"] > 0.0
    assert one("How tall is Mount Everest?")["judgement"] == 0.0
