"""What the semantic cache sees of a native chat: never an error, and keyed on its sampling parameters."""

from __future__ import annotations

from shared.core.models import ChatMessage
from shared.core.values import SamplingParams
from shared.pipeline.gateway import ChatCall, _chat_key
from shared.state.cache import chat_view


def key(content: str, temperature: float = 0.7) -> dict[str, object]:
    return _chat_key(ChatCall(None, (ChatMessage(role="user", content=content),),
                              SamplingParams(max_tokens=50, temperature=temperature)))


def test_a_message_that_strips_to_nothing_is_seen_not_refused() -> None:
    # Schemathesis found it: "\n" is a valid message, its key holds it stripped, and the view must
    # not validate it again (that was a 500 before the lookup even started).
    view = chat_view(key("\n"))
    assert view is not None and view.messages[0].content == ""


def test_other_sampling_parameters_are_another_semantic_scope() -> None:
    cold, warm = chat_view(key("hello", 0.0)), chat_view(key("hello", 1.5))
    assert cold is not None and warm is not None
    assert cold.scope != warm.scope, "another temperature never shares a semantic answer"
    assert chat_view(key("hello", 0.0)) == cold


def test_a_multi_turn_chat_has_no_semantic_view_so_nothing_is_reserved_for_an_embedding() -> None:
    turns = (ChatMessage(role="user", content="hi"), ChatMessage(role="assistant", content="hello"),
             ChatMessage(role="user", content="and then?"))
    assert chat_view(_chat_key(ChatCall(None, turns, SamplingParams(max_tokens=50)))) is None
